import ArgumentParser
import AtomicFiles
import Pipelines

/// The `nimetrics` command: one subcommand per file in this folder.
@main
struct Nimetrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nimetrics",
        abstract: "DTI and resting-state fMRI metrics for the visits of a clinical trial.",
        discussion: """
            Reads NIfTI diffusion and BOLD images, computes tensor metrics and connectivity \
            summaries per region, and links them to participants, visits and clinical scores.
            """,
        version: NimetricsVersion.string,
        subcommands: [InfoCommand.self, DTICommand.self, FMRICommand.self, RunCommand.self, VisitsCommand.self, ReportCommand.self, DemoCommand.self, WarpCommand.self]
    )

    /// SIGINT and SIGTERM remove the process's temporary files, then exit with 130 or 143.
    static func main() {
        AtomicFile.removeTemporariesOnInterrupt()
        main(nil)
    }
}

import ArgumentParser
import FileSystem
import Foundation
import Pipelines
import Reports
import Trial

/// `nimetrics report`: the HTML reports of an output folder, rebuilt from its outputs alone.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "(Re)build the HTML reports of an output folder from its outputs alone.",
        discussion: """
            Writes, from the maps, tables and sidecars already in OUTPUT_DIR: every visit's \
            OUTPUT/sub-XX/ses-YY/sub-XX_ses-YY_report.html, each participant's OUTPUT/sub-XX.html, \
            and, when OUTPUT/group/ holds the group tables, the trial report \
            OUTPUT/group/report.html. Nothing is recomputed: the reports show what the tables say. \
            Each file is self-contained (figures inline, no script, nothing from the network).
            """
    )

    @Argument(help: "The output folder of `nimetrics run`.")
    var output: String

    @OptionGroup var reports: ReportOptions

    func run() throws {
        try runReportingFailure {
            guard FileSystem.kind(of: output) == .folder else {
                throw ValidationError("\(output): not a folder")
            }
            let written = try ReportCommand.writeAll(output: output, metrics: reports.metrics, visits: nil, trial: true)
            for file in written { print(file) }
        }
    }

    /// Writes the visit reports (of `visits`, or every visit folder), the participant pages
    /// and, when `trial` and the group tables exist, the trial report; warns for each report
    /// that could not be written. Returns the files written.
    /// The generator line of every report.
    static let generator = "nimetrics \(NimetricsVersion.string)"

    static func writeAll(output: String, metrics: [String]?, visits: [VisitFolder]?, trial: Bool) throws -> [String] {
        let (files, failures) = ReportWriter.writeVisitReports(output: output, visits: visits, generator: generator)
        for failure in failures { printWarning(failure) }
        guard trial, FileManager.default.fileExists(atPath: output + "/group/visits.tsv") else { return files }
        // Under the group lock: a group stage swapping the tables in does not race the report.
        let lock = try TrialRunner.lockGroupStage(output: output)
        defer { lock.release() }
        return files + [try TrialReport.write(output: output, metrics: metrics, generator: generator)]
    }
}

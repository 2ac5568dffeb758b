import ArgumentParser
import FileSystem
import Foundation
import Phantoms

/// `nimetrics demo`: writes a small synthetic BIDS trial with known truth.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Write a small synthetic BIDS dataset of the trial, with its ground truth.",
        discussion: """
            Participants seen at baseline and months 1, 3 and 6, each visit with a DWI series \
            (5 b=0 + 30 directions at b=1000, Rician noise) and a resting-state BOLD run with \
            fMRIPrep-style confounds, on one 3 mm grid with a shared atlas. Planted changes \
            (FA of lesioned tracts, EDSS, SDMT, within-DMN connectivity) are listed in the \
            dataset's README and ground_truth/changes.tsv. The same seed writes the same bytes.

            --layout derivatives writes the same trial as a raw BIDS dataset with fMRIPrep-style \
            (derivatives/fmriprep) and QSIPrep-style (derivatives/qsiprep) derivatives, plus second \
            runs, flagged non-steady-state volumes, a multi-shell visit and a missed visit; the \
            README and ground_truth/visits.tsv and runs.tsv say where.
            """
    )

    @Option(name: .long, help: "The folder to write the dataset into.")
    var out: String

    @Option(name: .long, help: "Seed of every random draw.")
    var seed: UInt64 = 2026

    @Option(name: .long, help: "Number of participants (1 to 99).")
    var participants: Int = 5

    @Option(name: .long, help: "bids: one BIDS tree, confounds beside the BOLD; derivatives: raw BIDS plus fMRIPrep- and QSIPrep-style derivatives.")
    var layout: DemoTrial.Layout = .bids

    @Flag(name: .long, help: "Write into a folder that already holds files (files of the same names are replaced; nothing is deleted).")
    var force = false

    func validate() throws {
        guard (1...99).contains(participants) else {
            throw ValidationError("--participants must be between 1 and 99.")
        }
    }

    func run() throws {
        try runReportingFailure {
            try FileSystem.checkFolderCanBeCreated(out)
            if FileSystem.kind(of: out) == .folder {
                let contents = try FileSystem.entries(of: out)
                if !contents.isEmpty && !force {
                    throw ValidationError("\(out): the folder is not empty (use --force to write into it anyway)")
                }
            }
            let start = Date()
            try DemoTrial.generate(at: out, seed: seed, participants: participants, layout: layout)
            let seconds = Date().timeIntervalSince(start)
            let shape = layout == .bids ? "" : ", layout \(layout.rawValue)"
            print("Wrote the demo trial (\(participants) participants x \(DemoTrial.sessions.count) visits, seed \(seed)\(shape)) to \(out) in \(String(format: "%.1f", seconds)) s")
            print("Planted changes: \(out)/README and \(out)/ground_truth/changes.tsv")
            if layout == .derivatives {
                print("Visits and runs: \(out)/ground_truth/visits.tsv and \(out)/ground_truth/runs.tsv")
            }
        }
    }
}

extension DemoTrial.Layout: ExpressibleByArgument {}

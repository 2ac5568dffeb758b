import ArgumentParser
import Foundation
import Tabular
import Trial

/// `nimetrics visits`: the visits `run` would process, with their input files, so that a
/// workflow engine (workflow/Snakefile, Scripts/slurm-submit) builds its job graph from
/// nimetrics' own discovery instead of parsing the dataset a second time.
struct VisitsCommand: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case tsv, json
    }

    static let configuration = CommandConfiguration(
        commandName: "visits",
        abstract: "List the visits `nimetrics run` would process, with their input files.",
        discussion: """
            Discovery exactly as `run` does it, with the same selection options. Nothing is \
            read but the folder listings and the small text tables (and, when the BOLD runs \
            come in several spaces, the first atlas's header, to choose the space as `run` does).

            tsv: one row per input file: participant_id, session_id (n/a without sessions), \
            modality (dwi or func), role (dwi, bval, bvec, bold, confounds, ...), path. \
            A visit's units are processed and recorded on their own (one record per modality).

            json: {"dataset", "derivatives", "clinical_tables", "visits": [{"participant", \
            "session", "participant_id", "session_id", "folder", "units": [{"modality", \
            "record", "inputs": [{"role", "path"}]}]}]}; "folder" and "record" are relative \
            to the output folder, "record" the file `run` writes last for that unit.
            """
    )

    @Argument(help: "BIDS dataset folder (raw, or a derivatives dataset) or manifest TSV.")
    var input: String

    @OptionGroup(title: "Selection") var selection: DatasetSelectionOptions

    @Option(parsing: .upToNextOption,
            help: "The atlases `run` is given (path patterns): the first one's grid chooses the BOLD space when several are found and --space is not given.")
    var atlas: [String] = []

    @Option(name: .customLong("func-atlas"), parsing: .upToNextOption, help: "As --atlas, for `run`'s --func-atlas (takes precedence).")
    var funcAtlas: [String] = []

    @Option(help: "The output folder `run` will write to, left out of the default derivative datasets.")
    var output: String?

    @Option(help: "tsv or json.")
    var format: Format = .tsv

    func run() throws {
        try runReportingFailure {
            var dataset = try Dataset.discover(input, options: selection.discoveryOptions(output: output))
            for warning in dataset.warnings { printWarning(warning) }
            let firstAtlas = (funcAtlas.isEmpty ? atlas : funcAtlas).first
            try DatasetSelectionOptions.chooseSpace(&dataset, atlas: try firstAtlas.map { try PathPattern($0) })
            let text = format == .tsv ? Self.table(dataset).text : Self.json(dataset).rendered(pretty: true) + "\n"
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// One row per input file of every unit of every visit, in the dataset's visit order.
    static func table(_ dataset: Dataset) -> TSVTable {
        var table = TSVTable(columns: ["participant_id", "session_id", "modality", "role", "path"])
        for visit in dataset.visits {
            for unit in visit.units {
                for file in unit.inputFiles {
                    table.append([visit.participantID, visit.sessionID ?? "n/a", unit.modality?.rawValue ?? "n/a", file.role, file.path])
                }
            }
        }
        return table
    }

    static func json(_ dataset: Dataset) -> JSONValue {
        let visits: [JSONValue] = dataset.visits.map { visit in
            let units: [JSONValue] = visit.units.map { unit in
                .object([
                    ("modality", .string(unit.modality?.rawValue ?? "n/a")),
                    ("record", .string(unit.recordPath)),
                    ("inputs", .array(unit.inputFiles.map { .object([("role", .string($0.role)), ("path", .string($0.path))]) })),
                ])
            }
            return .object([
                ("participant", .string(visit.participant)),
                ("session", visit.session.map(JSONValue.string) ?? .null),
                ("participant_id", .string(visit.participantID)),
                ("session_id", visit.sessionID.map(JSONValue.string) ?? .null),
                ("folder", .string(visit.relativeFolder)),
                ("units", .array(units)),
            ])
        }
        return .object([
            ("dataset", .string(dataset.path)),
            ("derivatives", .array(dataset.derivativeRoots.map(JSONValue.string))),
            ("clinical_tables", .array(clinicalTables(dataset).map(JSONValue.string))),
            ("visits", .array(visits)),
        ])
    }

    /// The tables the group level reads besides the visits' outputs: participants.tsv and
    /// each participant's sessions.tsv (BIDS), or the manifest itself.
    static func clinicalTables(_ dataset: Dataset) -> [String] {
        switch dataset.source {
        case .manifest(let file):
            return [file]
        case .bids(let root):
            let participants = Set(dataset.visits.map(\.participant))
            let candidates = [root + "/participants.tsv"]
                + participants.sorted(by: BIDSLabel.naturalLess).map { "\(root)/sub-\($0)/sub-\($0)_sessions.tsv" }
            return candidates.filter { FileManager.default.fileExists(atPath: $0) }
        }
    }
}

import Foundation

/// A problem found by the cohort layer, naming the file (or label) and what is wrong.
///
/// `description` is one line, `<file>: <problem>`, so the command-line tool can print it as is.
public enum TrialError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A participant or session label that is not a BIDS label (letters and digits only).
    case invalidLabel(kind: String, label: String)
    /// A `--participant-label` / `--session-label` that names nothing in the dataset.
    case labelNotFound(kind: String, label: String, dataset: String)
    /// A table lacks a column it must have (e.g. `sessions.tsv` without `session_id`).
    case missingColumn(file: String, column: String)
    /// A malformed table or row.
    case badTable(file: String, reason: String)
    /// A manifest path that resolves outside the manifest's folder.
    case pathEscapes(file: String, line: Int, column: String, path: String)
    /// A path built for an output would leave the output folder.
    case outputEscapes(path: String, root: String)
    /// The output folder is, lies inside, or holds an input dataset (see ``OutputGuard``).
    case outputOverlapsInput(output: String, input: String, placement: OutputPlacement)
    /// A folder or file below the output folder is a symbolic link; it is refused, not followed.
    case outputSymlink(link: String, target: String, root: String)
    /// The input is neither a folder (BIDS) nor a manifest TSV file.
    case notADataset(path: String, reason: String)
    /// After filtering, nothing is left to process.
    case noVisits(dataset: String)
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// A per-visit record (`_visit.json`, `_metrics.tsv`) is malformed.
    case badRecord(file: String, reason: String)
    /// An SQLite call failed; `function` names the C function.
    case sqlite(path: String, function: String, message: String)
    /// A per-visit path pattern that cannot be used.
    case badPattern(pattern: String, reason: String)
    /// The group stage met visits of one modality processed with different parameters.
    case mixedParameters(output: String, modality: String, details: String)

    public var description: String {
        switch self {
        case .invalidLabel(let kind, let label):
            return "\(kind) label '\(label)': not a BIDS label (letters and digits only, optionally after '\(kind == "participant" ? "sub-" : "ses-")')"
        case .labelNotFound(let kind, let label, let dataset):
            return "\(dataset): no \(kind) '\(label)' in the dataset"
        case .missingColumn(let file, let column):
            return "\(file): missing required column '\(column)'"
        case .badTable(let file, let reason):
            return "\(file): \(reason)"
        case .pathEscapes(let file, let line, let column, let path):
            return "\(file): line \(line), column '\(column)': path '\(path)' resolves outside the manifest's folder"
        case .outputEscapes(let path, let root):
            return "\(path): would be written outside the output folder \(root)"
        case .outputOverlapsInput(let output, let input, let placement):
            let rule = "outputs never go into an input: choose a folder outside every input, or one below an input's derivatives/ folder"
            switch placement {
            case .sameAsInput: return "\(output): the output folder is the input dataset \(input); \(rule)"
            case .insideInput: return "\(output): the output folder lies inside the input dataset \(input); \(rule)"
            case .derivativesFolder:
                return "\(output): the output folder is the derivatives/ folder of the input dataset \(input), which holds other pipelines' outputs; use a folder below it, such as derivatives/nimetrics"
            case .containsInput: return "\(output): the output folder holds the input dataset \(input); \(rule)"
            }
        case .outputSymlink(let link, let target, let root):
            return "\(link): a symbolic link (to \(target)) inside the output folder \(root); nimetrics does not write through links: replace it with a folder or choose another output folder"
        case .notADataset(let path, let reason):
            return "\(path): \(reason)"
        case .noVisits(let dataset):
            return "\(dataset): no visits to process (check the dataset layout and the label filters)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .badRecord(let file, let reason):
            return "\(file): \(reason)"
        case .sqlite(let path, let function, let message):
            return "\(path): SQLite \(function) failed: \(message)"
        case .badPattern(let pattern, let reason):
            return "path pattern '\(pattern)': \(reason)"
        case .mixedParameters(let output, let modality, let details):
            return "\(output): the \(modality) metrics of the visits were computed with different parameters: \(details); rerun those visits with the same options, or give --allow-mixed-parameters to combine them (each metric then carries its parameters_id)"
        }
    }
}

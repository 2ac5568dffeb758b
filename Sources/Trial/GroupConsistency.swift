import Foundation
import Tabular

/// The processing parameters a visit's modality was computed with, as its record stores them.
public struct ParameterSet: Sendable, Equatable {
    /// The first 8 hex digits of the SHA-256 of the parameters' compact JSON (keys sorted,
    /// as the record reads back): the same parameters (nimetrics version included) give the
    /// same id, and a change of any of them a different one.
    public var id: String
    public var json: JSONValue

    init(_ json: JSONValue) {
        self.json = json
        id = String(SHA256.hex(of: Array(json.rendered(pretty: false).utf8)).prefix(8))
    }

    /// Every leaf of the parameters as `path = value` (`parameters.fitMethod`, `files.dwi_atlas`).
    var leaves: [String: String] {
        var out: [String: String] = [:]
        func walk(_ value: JSONValue, _ path: String) {
            switch value {
            case .object(let members): for (key, member) in members { walk(member, path.isEmpty ? key : path + "." + key) }
            case .array(let items) where items.contains(where: { if case .object = $0 { return true }; return false }):
                for (k, item) in items.enumerated() { walk(item, path + "[\(k)]") }
            default: out[path] = value.rendered(pretty: false)
            }
        }
        walk(json, "")
        return out
    }

    /// The keys whose values differ between two parameter sets (present in one only included).
    func differingKeys(from other: ParameterSet) -> [String] {
        let a = leaves, b = other.leaves
        return Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
    }
}

/// Whether the visits of a group table were all processed alike.
enum GroupConsistency {
    /// Checks that every ok modality of the visits was processed with one parameter set per
    /// modality.
    ///
    /// Metrics computed with different parameters (a 6P and a 36P denoising, a WLS and an
    /// OLS fit, another nimetrics version) are not comparable, so the group stage refuses to
    /// put them in one table unless asked to (`--allow-mixed-parameters`, which adds the
    /// parameters' id to the metrics tables).
    /// - Throws: ``TrialError/mixedParameters(output:modality:details:)`` listing, for each set
    ///   other than the most common one (ties: the first met), its id, its visits and the
    ///   parameter keys in which it differs.
    static func check(_ visits: [GroupVisit], output: String) throws {
        for modality in Modality.allCases {
            var order: [String] = []
            var sets: [String: (set: ParameterSet, visits: [String])] = [:]
            for visit in visits {
                guard visit.status(of: modality) == .ok, let set = visit.parameters[modality] else { continue }
                if sets[set.id] == nil { order.append(set.id); sets[set.id] = (set, []) }
                sets[set.id]!.visits.append(visit.visit.filePrefix)
            }
            guard order.count > 1 else { continue }
            let reference = order.max { sets[$0]!.visits.count < sets[$1]!.visits.count || (sets[$0]!.visits.count == sets[$1]!.visits.count && order.firstIndex(of: $0)! > order.firstIndex(of: $1)!) }!
            let base = sets[reference]!
            let others = order.filter { $0 != reference }.map { id -> String in
                let entry = sets[id]!
                let listed = entry.visits.prefix(5).joined(separator: ", ") + (entry.visits.count > 5 ? " and \(entry.visits.count - 5) more" : "")
                return "\(listed) (parameters \(id)) differ in \(entry.set.differingKeys(from: base.set).joined(separator: ", "))"
            }
            throw TrialError.mixedParameters(
                output: output, modality: modality.rawValue,
                details: "\(base.visits.count) visits have parameters \(reference); " + others.joined(separator: "; "))
        }
    }
}

/// Outcome measures versus quality-control numbers.
public enum MetricKind: String, Sendable {
    /// A measure of the brain the trial may ask about (FA, MD, connectivity, ALFF...).
    case outcome
    /// A number that describes the data or its processing, not the brain: voxel counts,
    /// coverage, motion, censoring, tSNR, volumes kept, the fraction of impossible tensors.
    case qc

    /// The QC metrics the pipelines write, by exact name.
    public static let qcMetrics: Set<String> = [
        "n_voxels", "negative_eigenvalue_fraction",                                   // DTI
        "tsnr_mean", "fd_mean", "volumes_censored", "censored_fraction", "volumes_kept", "coverage",  // fMRI
    ]

    /// The kind of a metric, from its name alone: one of ``qcMetrics`` is QC, everything
    /// else (`fa_mean`, `md_p95`, `conn_within_mean`, `global_efficiency`, `alff`, `falff`,
    /// `strength`...) an outcome. The one function every table and the statistics use, so
    /// they cannot disagree.
    public static func of(metric: String) -> MetricKind {
        qcMetrics.contains(metric) ? .qc : .outcome
    }
}

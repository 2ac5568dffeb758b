import Foundation

/// A label atlas as a pipeline reads it: the label image and its label table.
public struct AtlasFile: Sendable, Equatable {
    /// The label image on the data's grid (or resampled to it when asked).
    public var path: String
    /// The label table (`index`, `name`[, `network`]); nil: the `.tsv` beside the image, if any.
    public var tablePath: String?
    /// The template space the atlas is given in (`run --atlas-space`); nil: its file name's
    /// ``spaceInName``, if any.
    public var space: String?

    public init(path: String, tablePath: String? = nil, space: String? = nil) {
        self.path = path
        self.tablePath = tablePath
        self.space = space
    }

    /// The `seg-` name of the outputs it gives (``OutputNaming/atlasName(_:)``).
    public var name: String { OutputNaming.atlasName(path) }

    /// The space the atlas is in: ``space``, else the file name's `tpl-` or `space-` entity
    /// (TemplateFlow's `tpl-MNI152NLin2009cAsym_res-01_atlas-X_dseg.nii.gz`, XCP-D's
    /// `space-MNI152NLin2009cAsym_seg-X_dseg.nii.gz`); nil when neither says.
    public var templateSpace: String? { space ?? Self.spaceInName(path) }

    /// The `tpl-` (first) or `space-` entity of a file name.
    public static func spaceInName(_ path: String) -> String? {
        let parts = URL(fileURLWithPath: path).lastPathComponent.split(separator: "_")
        for key in ["tpl-", "space-"] {
            if let part = parts.first(where: { $0.hasPrefix(key) }), part.count > key.count { return String(part.dropFirst(key.count)) }
        }
        return nil
    }
}

/// A visit's metrics from several atlases, each value once.
///
/// An atlas changes only what is measured in its regions. The values measured over the brain
/// mask, the lesion mask or the whole run do not depend on it, and are kept once, with
/// ``VisitMetric/atlas`` nil, rather than repeated under each atlas's name:
///
/// - DWI: every atlas region's summaries depend on the atlas; `whole_brain` (the fitted
///   voxels of the brain mask), `lesion` and `normal_appearing_tissue` (the lesion mask and
///   its complement within the brain) and `negative_eigenvalue_fraction` (over every fitted
///   voxel) do not. Each atlas's summary table still holds the `whole_brain` and lesion rows,
///   so that it is complete on its own.
/// - fMRI: the regional time series come from the atlas, so does everything computed from
///   them: each region's values, the network summaries, and the whole-brain `conn_mean`,
///   `conn_within_mean`, `conn_between_mean`, `global_efficiency` (over the atlas's edges),
///   `alff_mean` and `falff_mean` (means over its regions). Those that do not
///   (``functionalAtlasIndependentMetrics``) are the whole-brain tSNR (over every brain-mask
///   voxel) and the motion and censoring counts (from the confounds alone).
public enum AtlasCombination {
    /// The whole-brain functional metrics that no atlas changes.
    public static let functionalAtlasIndependentMetrics: Set<String> = [
        "tsnr_mean", "fd_mean", "volumes_censored", "censored_fraction", "volumes_kept",
    ]

    /// Whether a functional metric depends on the atlas it was computed with.
    public static func functionalDependsOnAtlas(_ metric: VisitMetric) -> Bool {
        !(metric.region == wholeBrainRegion && functionalAtlasIndependentMetrics.contains(metric.metric))
    }

    /// The metrics of one scan measured with each of several atlases, as one list: with one
    /// atlas, its metrics as they are; with several, every atlas's metrics that depend on it,
    /// tagged with its name, and the others once, from the first atlas, untagged. Order: the
    /// first atlas's metrics, then each further atlas's.
    /// - Parameters:
    ///   - atlases: each atlas's `seg-` name and metrics.
    ///   - dependsOnAtlas: whether a metric changes with the atlas.
    public static func combine(_ atlases: [(name: String, metrics: [VisitMetric])],
                               dependsOnAtlas: (VisitMetric) -> Bool) -> [VisitMetric] {
        guard atlases.count > 1 else { return atlases.first?.metrics ?? [] }
        return atlases.enumerated().flatMap { k, atlas in
            atlas.metrics.compactMap { metric -> VisitMetric? in
                guard dependsOnAtlas(metric) else { return k == 0 ? metric : nil }
                var tagged = metric
                tagged.atlas = atlas.name
                return tagged
            }
        }
    }
}

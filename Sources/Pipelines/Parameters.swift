import Diffusion
import Foundation
import Functional

/// Every value that changes what the tensor pipeline computes, apart from the files it reads.
///
/// This is the one definition of the diffusion parameters: the command line's option groups
/// build it, the pipeline reads it, the sidecar reports it and a batch's re-run fingerprint
/// is its JSON encoding (``ProcessingParameters/fingerprint(_:)``), so a field added here is
/// in all four at once.
public struct DiffusionParameters: Sendable, Equatable, Codable {
    public var method: TensorFitMethod = .wls
    /// WLS re-weighting passes (MRtrix's `-iter`).
    public var iterations = 1
    /// The largest b-value fitted (s/mm^2), compared with the b-values as written; nil
    /// (the default): automatic. b=0 volumes are always fitted.
    ///
    /// Automatic: a single-shell series is fitted whole, at any b-value (as MRtrix3's
    /// `dwi2tensor` and DIPY do); a multi-shell series is fitted to its volumes with
    /// b <= 1500 (DTI is a low-b model), or to its lowest shell when that shell is above
    /// 1500 (``GradientTable/selecting(maximumB:)``). Given: exactly the volumes with
    /// b <= this, and a series with none is an error.
    ///
    /// In the fingerprint's JSON, nil is the absence of the `maximum_b` key.
    public var maximumB: Double?
    /// b-values at or below this count as b=0 (DIPY's and MRtrix3's default is 50).
    public var b0Threshold = 50.0
    public var vectorFrame: VectorFrame = .fsl
    /// Run the gradient orientation check: the coherence of the fitted V1 field over every
    /// fitted voxel, with the table as given and with each voxel axis negated, all scored
    /// from the one tensor fit (no extra fits).
    public var orientationCheck = true
    /// Resample the atlas to the DWI grid by nearest neighbour when the grids differ.
    public var resampleAtlas = false
    /// gzip level of the maps (libdeflate, 1 fastest to 12 smallest). Level 1 by default:
    /// the low bits of float maps are mostly noise, which higher levels spend time on for
    /// little gain (docs/benchmarks.md).
    public var compressionLevel = 1
    /// Keep fitted voxels with a physically impossible tensor (a negative eigenvalue, FA
    /// above 1) in the regional summaries. Off by default: such voxels are left out of every
    /// summary and counted in the QC (``isImpossibleTensor(eigenvalues:)``), so a regional
    /// mean is never pulled by impossible values; the maps hold them either way.
    public var keepNegativeEigenvalues = false

    public init() {}
}

/// A frequency band in Hz.
public struct FrequencyBand: Sendable, Equatable, Codable {
    /// The lower edge, in Hz.
    public var low: Double
    /// The upper edge, in Hz.
    public var high: Double

    public init(low: Double, high: Double) { (self.low, self.high) = (low, high) }
}

/// Every value that changes what the resting-state pipeline computes, apart from the files
/// it reads. The one definition of these parameters, as ``DiffusionParameters`` is for DWI.
public struct FunctionalParameters: Sendable, Equatable, Codable {
    /// Confound model; nil: 6P when the run has a confounds table, none when it has not.
    public var strategy: ConfoundStrategy?
    /// Band-pass edges in Hz; nil: no filter on that side.
    public var highPass: Double? = 0.01
    public var lowPass: Double? = 0.08
    /// Censor volumes whose framewise_displacement exceeds this (mm); nil: no censoring.
    public var fdThreshold: Double?
    /// Non-steady-state volumes dropped at the start of the run: by default those fMRIPrep
    /// flags in its confounds (``DummyScans/automatic``).
    public var dummyScans = DummyScans.automatic
    /// Seconds; nil: the BOLD sidecar's RepetitionTime, else the NIfTI header.
    public var repetitionTime: Double?
    public var partialCorrelation = false
    /// The band of ALFF (Zang et al. 2007) and the numerator of fALFF (Zou et al. 2008).
    public var amplitudeBand = FrequencyBand(low: 0.01, high: 0.08)
    /// Regions with a smaller fraction of their voxels inside the brain mask are reported
    /// as n/a (XCP-D's default coverage threshold).
    public var minimumCoverage = 0.5
    /// Also write voxelwise ALFF and fALFF maps. This reads the whole run into memory (the
    /// streaming region extraction does not need to), so it is off by default.
    public var amplitudeMaps = false
    /// Resample the atlas to the BOLD grid by nearest neighbour when the grids differ.
    public var resampleAtlas = false

    public init() {}

    /// The confound model applied to a run with or without a confounds table.
    public func effectiveStrategy(hasConfounds: Bool) -> ConfoundStrategy {
        strategy ?? (hasConfounds ? .sixP : .none)
    }
}

/// How many volumes at the start of a BOLD run are dropped as not yet at steady state.
public enum DummyScans: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The volumes fMRIPrep flags with its `non_steady_state_outlier*` confound columns, as
    /// nilearn's `load_confounds` and XCP-D drop them; none without a confounds table.
    case automatic
    /// This many, whatever the confounds say.
    case count(Int)

    /// Parses `auto` or a non-negative integer.
    public init?(parsing text: String) {
        if text == "auto" { self = .automatic; return }
        guard let count = Int(text), count >= 0 else { return nil }
        self = .count(count)
    }

    public var description: String {
        switch self {
        case .automatic: "auto"
        case .count(let count): String(count)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let count = try? container.decode(Int.self) { self = .count(count); return }
        guard let value = DummyScans(parsing: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected auto or a count")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .automatic: try container.encode("auto")
        case .count(let count): try container.encode(count)
        }
    }
}

/// The JSON form of parameter values, as the re-run fingerprint and the visit record hold it.
public enum ProcessingParameters {
    /// Canonical JSON of `value`: snake_case keys in sorted order, no whitespace. Equal
    /// values give equal text, and any field added to a parameter type enters it.
    public static func fingerprint(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(value)
        return String(decoding: data, as: UTF8.self)
    }
}

extension VectorFrame: Codable {}

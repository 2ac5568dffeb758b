import Diffusion
import Foundation
import Functional
import Pipelines
import Tabular

/// The parameters of the per-visit pipelines that a batch applies to every visit.
public struct VisitParameters: Sendable {
    /// Label atlas for the DWI grid and for the BOLD grid (often the same file).
    public var dwiAtlas: String?
    public var funcAtlas: String?
    public var resampleAtlas = false
    public var fitMethod: TensorFitMethod = .wls
    public var iterations = 1
    public var maximumB = 1500.0
    public var vectorFrame: VectorFrame = .fsl
    public var strategy: ConfoundStrategy = .sixP
    public var highPass: Double? = 0.01
    public var lowPass: Double? = 0.08
    public var fdThreshold: Double?
    public var dummyScans = 0
    public var partialCorrelation = false
    public var minimumCoverage = 0.5

    public init() {}
}

/// Runs the DTI and fMRI pipelines on one visit: the real ``VisitProcessor`` of
/// `nimetrics run`. Diffusion outputs go to `<visit>/dwi/`, functional ones to `<visit>/func/`.
///
/// A visit without a DWI series (or without a BOLD run) is processed for what it has, with
/// a warning; a visit with neither, or whose files are missing or unreadable, fails.
public struct PipelineVisitProcessor: VisitProcessor {
    public let parameters: VisitParameters
    public let parametersFingerprint: String

    /// - Throws: when an atlas cannot be read (its SHA-256 enters the fingerprint, so a
    ///   changed atlas redoes every visit).
    public init(parameters: VisitParameters) throws {
        self.parameters = parameters
        func atlasFingerprint(_ path: String?) throws -> JSONValue {
            guard let path else { return .null }
            return .object([("path", .string(path)), ("sha256", .string(try SHA256.hex(ofFile: path)))])
        }
        let fingerprint = JSONValue.object([
            ("dwi_atlas", try atlasFingerprint(parameters.dwiAtlas)),
            ("func_atlas", try atlasFingerprint(parameters.funcAtlas)),
            ("resample_atlas", .bool(parameters.resampleAtlas)),
            ("fit", .string(parameters.fitMethod.rawValue)),
            ("iterations", .int(parameters.iterations)),
            ("max_b", .number(parameters.maximumB)),
            ("vector_frame", .string(parameters.vectorFrame.rawValue)),
            ("strategy", .string(parameters.strategy.description)),
            ("high_pass", .finite(parameters.highPass)),
            ("low_pass", .finite(parameters.lowPass)),
            ("fd_threshold", .finite(parameters.fdThreshold)),
            ("dummy_scans", .int(parameters.dummyScans)),
            ("partial_correlation", .bool(parameters.partialCorrelation)),
            ("min_coverage", .number(parameters.minimumCoverage)),
            ("nimetrics_version", .string(NimetricsVersion.string)),
        ])
        parametersFingerprint = fingerprint.rendered(pretty: false)
    }

    public func process(visit: VisitInput, outputFolder: String, threads: Int) throws -> VisitResult {
        var metrics: [MetricRow] = []
        var files: [String] = []
        var warnings: [String] = []
        guard visit.dwi != nil || visit.bold != nil else {
            throw PipelineError(visit.filePrefix, "no DWI series and no BOLD run found for this visit")
        }
        if let dwi = visit.dwi {
            var options = DiffusionOptions(dwiPath: dwi, bvalPath: visit.bval, bvecPath: visit.bvec,
                                           outputFolder: outputFolder + "/dwi", prefix: visit.filePrefix)
            guard visit.bval != nil, visit.bvec != nil else {
                throw PipelineError(dwi, "no .bval/.bvec beside the DWI series")
            }
            options.atlasPath = parameters.dwiAtlas
            options.resampleAtlas = parameters.resampleAtlas
            options.method = parameters.fitMethod
            options.iterations = parameters.iterations
            options.maximumB = parameters.maximumB
            options.vectorFrame = parameters.vectorFrame
            options.threads = threads
            let result = try DiffusionPipeline.run(options)
            metrics += result.metrics
            files += result.files
            warnings += result.warnings.map { "dwi: " + $0 }
        } else {
            warnings.append("no DWI series: diffusion metrics skipped")
        }
        if let bold = visit.bold {
            guard let atlas = parameters.funcAtlas else {
                throw PipelineError(bold, "no atlas for the BOLD run (give --atlas or --func-atlas)")
            }
            var options = FunctionalOptions(boldPath: bold, atlasPath: atlas, outputFolder: outputFolder + "/func")
            options.resampleAtlas = parameters.resampleAtlas
            options.maskPath = visit.brainMask
            options.confoundsPath = visit.confounds
            options.strategy = visit.confounds == nil ? .none : parameters.strategy
            if visit.confounds == nil && parameters.strategy != .none {
                warnings.append("func: no confounds table beside the BOLD run: no confound regression")
            }
            options.highPass = parameters.highPass
            options.lowPass = parameters.lowPass
            options.fdThreshold = visit.confounds == nil ? nil : parameters.fdThreshold
            options.dummyScans = parameters.dummyScans
            options.partialCorrelation = parameters.partialCorrelation
            options.minimumCoverage = parameters.minimumCoverage
            options.threads = threads
            let result = try FunctionalPipeline.run(options)
            metrics += result.metrics
            files += result.files
            warnings += result.warnings.map { "func: " + $0 }
        } else {
            warnings.append("no BOLD run: functional metrics skipped")
        }
        return VisitResult(metrics: metrics, files: files, warnings: warnings)
    }
}

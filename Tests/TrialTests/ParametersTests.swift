import Foundation
import Pipelines
import Testing
@testable import Trial

@Suite("Visit parameters and path patterns")
struct ParametersTests {
    @Test("a pattern names the visit's participant and session")
    func patternSubstitutes() throws {
        let pattern = try PathPattern("masks/sub-{subject}/sub-{subject}_ses-{session}_label-lesion_mask.nii.gz")
        #expect(try pattern.path(participant: "07", session: "m03") == "masks/sub-07/sub-07_ses-m03_label-lesion_mask.nii.gz")
        #expect(!pattern.isFixed)
        #expect(try PathPattern("atlas.nii.gz").isFixed)
        #expect(throws: TrialError.self) { try pattern.path(participant: "07", session: nil) }
    }

    @Test("patterns with unknown or unclosed placeholders are refused", arguments: ["sub-{participant}.nii", "sub-{subject.nii", ""])
    func badPatterns(text: String) {
        #expect(throws: TrialError.self) { try PathPattern(text) }
    }

    @Test("every parameter enters the fingerprint: each change gives a different one")
    func fingerprintCoversEveryField() throws {
        let changes: [(String, (inout VisitParameters) throws -> Void)] = [
            ("fit", { $0.diffusion.method = .ols }),
            ("iterations", { $0.diffusion.iterations = 2 }),
            ("max-b", { $0.diffusion.maximumB = 2000 }),
            // A given 1500 is not the automatic choice (which fits a single shell whole).
            ("max-b 1500", { $0.diffusion.maximumB = 1500 }),
            ("b0", { $0.diffusion.b0Threshold = 10 }),
            ("frame", { $0.diffusion.vectorFrame = .world }),
            ("orientation", { $0.diffusion.orientationCheck = false }),
            ("dwi resample", { $0.diffusion.resampleAtlas = true }),
            ("compression", { $0.diffusion.compressionLevel = 6 }),
            ("strategy", { $0.functional.strategy = .thirtySixP }),
            ("columns", { $0.functional.strategy = .columns(["csf"]) }),
            ("high-pass", { $0.functional.highPass = nil }),
            ("low-pass", { $0.functional.lowPass = 0.1 }),
            ("fd", { $0.functional.fdThreshold = 0.5 }),
            ("dummies", { $0.functional.dummyScans = .count(4) }),
            ("tr", { $0.functional.repetitionTime = 2 }),
            ("partial", { $0.functional.partialCorrelation = true }),
            ("alff band", { $0.functional.amplitudeBand = FrequencyBand(low: 0.01, high: 0.1) }),
            ("coverage", { $0.functional.minimumCoverage = 0.3 }),
            ("alff maps", { $0.functional.amplitudeMaps = true }),
            ("func resample", { $0.functional.resampleAtlas = true }),
            ("lesion", { $0.files.lesionMask = try PathPattern("l-{subject}.nii.gz") }),
            ("dwi mask", { $0.files.dwiMask = try PathPattern("m-{subject}.nii.gz") }),
            ("func mask", { $0.files.funcMask = try PathPattern("m-{subject}.nii.gz") }),
            ("dwi atlas", { $0.files.dwiAtlases = [try PathPattern("a-{subject}.nii.gz")] }),
            ("two dwi atlases", { $0.files.dwiAtlases = [try PathPattern("a-{subject}.nii.gz"), try PathPattern("b.nii.gz")] }),
            ("func atlas table", { $0.files.funcAtlasTables = [try PathPattern("a-{subject}.tsv")] }),
        ]
        var seen = [try ProcessingParameters.fingerprint(VisitParameters()): "defaults"]
        for (name, change) in changes {
            var parameters = VisitParameters()
            try change(&parameters)
            let fingerprint = try ProcessingParameters.fingerprint(parameters)
            #expect(seen[fingerprint] == nil, "\(name) gives the same fingerprint as \(seen[fingerprint] ?? "")")
            seen[fingerprint] = name
        }
    }

    @Test("the fingerprint round-trips: the record's parameters decode to the same values")
    func fingerprintRoundTrips() throws {
        var parameters = VisitParameters()
        parameters.functional.strategy = .columns(["csf", "white_matter"])
        parameters.functional.fdThreshold = 0.3
        parameters.diffusion.method = .ols
        parameters.files.lesionMask = try PathPattern("l-{subject}.nii.gz")
        let text = try ProcessingParameters.fingerprint(parameters)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(VisitParameters.self, from: Data(text.utf8)) == parameters)
    }
}

import Foundation
import Testing

/// The per-visit reference run of the demo trial (`run ... participant --group --jobs 1`),
/// made once and shared by the determinism and crash-safety suites.
func referenceTrialRun() throws -> (dataset: String, output: String) {
    try referenceRunLock.withLock {
        if let done = referenceRun { return done }
        let dataset = try sharedDemoDataset()
        let output = makeTemporaryFolder() + "/reference"
        let run = try runTool(trialArguments(dataset: dataset, output: output) + ["--jobs", "1"])
        guard run.status == 0, !run.signaled else {
            throw DemoFailure(message: "reference run failed (\(run.status)): \(run.stderr)")
        }
        referenceRun = (dataset, output)
        return (dataset, output)
    }
}

private let referenceRunLock = NSLock()
nonisolated(unsafe) private var referenceRun: (dataset: String, output: String)?

/// `nimetrics run DATASET OUTPUT participant --group` with the demo atlas, two threads per visit.
func trialArguments(dataset: String, output: String) -> [String] {
    ["run", dataset, output, "participant", "--group", "--atlas", dataset + "/atlas/atlas-demo_dseg.nii.gz", "--threads", "2"]
}

/// A visit record without the fields that legitimately differ between runs (timings).
func visitRecordWithoutTimings(_ path: String) throws -> NSDictionary {
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    for key in ["started", "finished", "duration_s"] { object.removeValue(forKey: key) }
    return object as NSDictionary
}

/// Compares two output folders: the same files; byte-identical except visit.json, which must
/// agree outside its timing fields.
func expectSameOutputs(_ a: String, _ b: String, label: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let files = filesBelow(a)
    #expect(files == filesBelow(b), "\(label): different file lists", sourceLocation: sourceLocation)
    #expect(!files.isEmpty, sourceLocation: sourceLocation)
    for file in files where FileManager.default.fileExists(atPath: b + "/" + file) {
        if file.hasSuffix("_visit.json") {
            let left = try visitRecordWithoutTimings(a + "/" + file), right = try visitRecordWithoutTimings(b + "/" + file)
            #expect(left == right, "\(label): \(file) differs outside its timing fields", sourceLocation: sourceLocation)
        } else {
            #expect(contents(a + "/" + file) == contents(b + "/" + file), "\(label): \(file) differs", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Determinism: outputs do not depend on threads or jobs")
struct DeterminismEndToEndTests {
    @Test("dti writes the same bytes with --threads 1, 2 and 7")
    func diffusionThreads() throws {
        let dataset = try sharedDemoDataset()
        let visit = dataset + "/sub-01/ses-m03/dwi/sub-01_ses-m03_dwi"
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for threads in [1, 2, 7] {
            let run = try runTool(["dti", "--dwi", visit + ".nii.gz", "--bval", visit + ".bval", "--bvec", visit + ".bvec",
                                   "--atlas", dataset + "/atlas/atlas-demo_dseg.nii.gz",
                                   "--out", folder + "/t\(threads)", "--threads", String(threads)])
            #expect(run.status == 0 && !run.signaled, "\(run.stderr)")
        }
        #expect(filesBelow(folder + "/t1").count >= 10)
        try expectSameOutputs(folder + "/t1", folder + "/t2", label: "dti threads 1 vs 2")
        try expectSameOutputs(folder + "/t1", folder + "/t7", label: "dti threads 1 vs 7")
    }

    @Test("fmri writes the same bytes with --threads 1, 2 and 7")
    func functionalThreads() throws {
        let dataset = try sharedDemoDataset()
        let visit = dataset + "/sub-02/ses-m06/func/sub-02_ses-m06_task-rest_"
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for threads in [1, 2, 7] {
            let run = try runTool(["fmri", "--bold", visit + "bold.nii.gz", "--confounds", visit + "desc-confounds_timeseries.tsv",
                                   "--atlas", dataset + "/atlas/atlas-demo_dseg.nii.gz", "--partial",
                                   "--out", folder + "/t\(threads)", "--threads", String(threads)])
            #expect(run.status == 0 && !run.signaled, "\(run.stderr)")
        }
        #expect(filesBelow(folder + "/t1").count >= 6)
        try expectSameOutputs(folder + "/t1", folder + "/t2", label: "fmri threads 1 vs 2")
        try expectSameOutputs(folder + "/t1", folder + "/t7", label: "fmri threads 1 vs 7")
    }

    @Test("run gives the same group tables and visit outputs with --jobs 1 and 3")
    func trialJobs() throws {
        let (dataset, reference) = try referenceTrialRun()
        let folder = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try runTool(trialArguments(dataset: dataset, output: folder + "/jobs3") + ["--jobs", "3"])
        #expect(run.status == 0 && !run.signaled, "\(run.stderr)")
        #expect(filesBelow(reference).contains("group/metrics_long.tsv"))
        try expectSameOutputs(reference, folder + "/jobs3", label: "run jobs 1 vs 3")
    }
}

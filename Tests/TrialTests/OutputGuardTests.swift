import AtomicFiles
import Foundation
import Tabular
import TestSupport
import Testing
@testable import Trial

@Suite("Output guard: inputs untouched, no writes through links")
struct OutputGuardTests {
    /// `top/bids` (a BIDS dataset with two participants of one session), with a snapshot of it.
    struct Fixture {
        let base: RunnerTests.Fixture
        let inputBefore: TreeSnapshot
        var top: String { base.top }
        var input: String { base.input }
        var dataset: Dataset { base.dataset }

        init() throws {
            base = try RunnerTests.Fixture(sessions: ["m00"])
            inputBefore = TreeSnapshot(base.input)
        }

        /// What changed in the input since the fixture was made (outside `derivatives/`).
        var inputChanges: [String] { TreeSnapshot(input, excluding: ["derivatives"]).changes(since: inputBefore) }

        func runParticipants(_ output: String) throws -> ParticipantRunSummary {
            try TrialRunner.runParticipants(dataset: dataset, output: output, processor: FakeProcessor(log: CallLog()), jobs: 2)
        }
    }

    /// Where the output sits against `top/bids`, and what the guard must say.
    enum Expected: Sendable { case accepted, refused(OutputPlacement) }

    static let placements: [(String, Expected)] = [
        ("bids", .refused(.sameAsInput)),
        ("bids/", .refused(.sameAsInput)),
        ("bids/.", .refused(.sameAsInput)),
        ("elsewhere/../bids", .refused(.sameAsInput)),
        ("alias", .refused(.sameAsInput)),               // a link to the input is the input
        ("bids/out", .refused(.insideInput)),
        ("bids/sub-01/out", .refused(.insideInput)),
        ("alias/out", .refused(.insideInput)),
        ("bids/derivatives", .refused(.derivativesFolder)),
        ("bids/derivativesX/nimetrics", .refused(.insideInput)),
        ("", .refused(.containsInput)),                  // top itself holds the input
        ("bids/derivatives/nimetrics", .accepted),
        ("alias/derivatives/nimetrics/new/deeper", .accepted),
        ("out", .accepted),
        ("bids2", .accepted),                            // a string prefix, not a component prefix
        ("bids-derivatives", .accepted),
        ("outlink", .accepted),                          // a link to a folder beside the input
    ]

    @Test("the output may not be the input, lie inside it (but below derivatives/), or hold it", arguments: placements)
    func separation(relative: String, expected: Expected) throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        put(top + "/bids/dataset_description.json", "{}")
        try FileManager.default.createDirectory(atPath: top + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: top + "/real-out", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: top + "/alias", withDestinationPath: "bids")
        try FileManager.default.createSymbolicLink(atPath: top + "/outlink", withDestinationPath: top + "/real-out")
        let output = relative.isEmpty ? top : top + "/" + relative
        switch expected {
        case .accepted:
            #expect(throws: Never.self) { try OutputGuard.checkSeparation(output: output, inputs: [top + "/bids"]) }
        case .refused(let placement):
            do {
                try OutputGuard.checkSeparation(output: output, inputs: [top + "/bids"])
                Issue.record("\(relative) was accepted")
            } catch let error as TrialError {
                guard case .outputOverlapsInput(_, let input, let found) = error else { Issue.record("\(error)"); return }
                #expect(found == placement)
                #expect(input.contains(top + "/bids"))
                #expect(error.description.contains(top + "/bids") && error.description.hasPrefix(top))
            }
        }
    }

    @Test("an input given through a link, or one of several inputs, is guarded the same way")
    func inputThroughLinkAndSeveralInputs() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        try FileManager.default.createDirectory(atPath: top + "/bids/derivatives/fmriprep", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: top + "/alias", withDestinationPath: top + "/bids")
        #expect(throws: TrialError.self) { try OutputGuard.checkSeparation(output: top + "/bids/out", inputs: [top + "/alias"]) }
        let inputs = [top + "/bids", top + "/bids/derivatives/fmriprep"]
        #expect(throws: TrialError.self) { try OutputGuard.checkSeparation(output: top + "/bids/derivatives/fmriprep", inputs: inputs) }
        #expect(throws: TrialError.self) { try OutputGuard.checkSeparation(output: top + "/bids/derivatives/fmriprep/nimetrics", inputs: inputs) }
        #expect(throws: Never.self) { try OutputGuard.checkSeparation(output: top + "/bids/derivatives/nimetrics", inputs: inputs) }
    }

    @Test("resolved paths: links of existing components followed, missing components kept, .. applied after a link")
    func resolvedPaths() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let real = OutputGuard.resolvedPath(top)
        try FileManager.default.createDirectory(atPath: top + "/a/b", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: top + "/link", withDestinationPath: "a/b")
        try FileManager.default.createSymbolicLink(atPath: top + "/dangling", withDestinationPath: top + "/a/missing")
        #expect(OutputGuard.resolvedPath(top + "/link/new/x") == real + "/a/b/new/x")
        #expect(OutputGuard.resolvedPath(top + "/link/..") == real + "/a")   // as the kernel walks it
        #expect(OutputGuard.resolvedPath(top + "/dangling/y") == real + "/a/missing/y")
        #expect(OutputGuard.resolvedPath(top + "/missing/../a/./b/") == real + "/a/b")
        #expect(OutputGuard.resolvedPath("rel/x") == OutputGuard.resolvedPath(FileManager.default.currentDirectoryPath) + "/rel/x")
        try FileManager.default.createSymbolicLink(atPath: top + "/loop", withDestinationPath: "loop")
        _ = OutputGuard.resolvedPath(top + "/loop/z")   // ends (a link loop is not followed forever)
    }

    @Test("OUTPUT = INPUT, OUTPUT inside INPUT, OUTPUT holding INPUT: refused at both levels, nothing written")
    func refusedRunsWriteNothing() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let topBefore = TreeSnapshot(fixture.top)
        for output in [fixture.input, fixture.input + "/out", fixture.input + "/derivatives", fixture.top] {
            #expect(throws: TrialError.self) { _ = try fixture.runParticipants(output) }
            #expect(throws: TrialError.self) { try TrialRunner.runGroup(dataset: fixture.dataset, output: output) }
            #expect(TreeSnapshot(fixture.top).changes(since: topBefore) == [], "output \(output)")
        }
        do {
            _ = try fixture.runParticipants(fixture.input)
        } catch let error as TrialError {
            #expect(error == .outputOverlapsInput(output: fixture.input, input: fixture.input, placement: .sameAsInput))
        }
    }

    @Test("OUTPUT = INPUT/derivatives/nimetrics is accepted, and the input outside derivatives/ is unchanged")
    func derivativesAccepted() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let output = fixture.input + "/derivatives/nimetrics"
        let summary = try fixture.runParticipants(output)
        #expect(summary.succeeded && summary.processedCount == 4)  // 2 visits, a DWI and a BOLD each
        try TrialRunner.runGroup(dataset: fixture.dataset, output: output)
        #expect(exists(output + "/group/metrics_long.tsv"))
        #expect(fixture.inputChanges == [])
    }

    @Test("a visit folder that is a link (here into the input) fails that visit; nothing is written through it")
    func linkedVisitFolder() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let output = fixture.top + "/out"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: output + "/sub-01", withDestinationPath: fixture.input + "/sub-01")
        let summary = try fixture.runParticipants(output)
        #expect(summary.failed.map(\.visit.unitName) == ["sub-01_ses-m00 dwi", "sub-01_ses-m00 func"])
        let message = summary.failed.first?.error ?? ""
        #expect(message.contains(output + "/sub-01") && message.contains("symbolic link") && message.contains(fixture.input + "/sub-01"))
        #expect(exists(output + "/sub-02/ses-m00/sub-02_ses-m00_desc-dwi_visit.json"))
        #expect(fixture.inputChanges == [])
    }

    @Test("a link deeper in a visit folder (dwi/ leading elsewhere) fails the visit; the place it leads to stays empty")
    func linkedSubfolder() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let output = fixture.top + "/out", elsewhere = fixture.top + "/elsewhere"
        try FileManager.default.createDirectory(atPath: output + "/sub-02/ses-m00", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        put(elsewhere + "/" + AtomicFile.temporaryPrefix + "keep", "not a temporary of this run")
        try FileManager.default.createSymbolicLink(atPath: output + "/sub-02/ses-m00/dwi", withDestinationPath: elsewhere)
        let before = TreeSnapshot(elsewhere)
        let summary = try fixture.runParticipants(output)
        #expect(Set(summary.failed.map(\.visit.filePrefix)) == ["sub-02_ses-m00"])
        #expect(summary.failed.first?.error?.contains(output + "/sub-02/ses-m00/dwi") == true)
        #expect(TreeSnapshot(elsewhere).changes(since: before) == [])
        #expect(!exists(output + "/sub-02/ses-m00/sub-02_ses-m00_desc-dwi_visit.json"))
    }

    @Test("links at the output's top level: dataset_description.json, group/, a group table: refused, target untouched")
    func linkedTopLevel() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        let output = fixture.top + "/out", elsewhere = fixture.top + "/elsewhere"
        put(elsewhere + "/visits.tsv", "precious\n")
        put(elsewhere + "/dataset_description.json", "{\"Name\": \"another study\"}\n")
        let before = TreeSnapshot(elsewhere)

        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: output + "/dataset_description.json", withDestinationPath: elsewhere + "/dataset_description.json")
        #expect(throws: TrialError.outputSymlink(link: output + "/dataset_description.json", target: elsewhere + "/dataset_description.json", root: output)) {
            _ = try fixture.runParticipants(output)
        }
        try FileManager.default.removeItem(atPath: output + "/dataset_description.json")
        _ = try fixture.runParticipants(output)

        try FileManager.default.createSymbolicLink(atPath: output + "/group", withDestinationPath: elsewhere)
        #expect(throws: TrialError.outputSymlink(link: output + "/group", target: elsewhere, root: output)) {
            try TrialRunner.runGroup(dataset: fixture.dataset, output: output)
        }
        try FileManager.default.removeItem(atPath: output + "/group")
        try FileManager.default.createDirectory(atPath: output + "/group", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: output + "/group/visits.tsv", withDestinationPath: elsewhere + "/visits.tsv")
        #expect(throws: TrialError.self) { try TrialRunner.runGroup(dataset: fixture.dataset, output: output) }
        #expect(TreeSnapshot(elsewhere).changes(since: before) == [])
        #expect(fixture.inputChanges == [])
    }

    @Test("dataset_description.json: GeneratedBy a list, SourceDatasets naming the input with its DOI")
    func description() throws {
        let fixture = try Fixture()
        defer { removeFolder(fixture.top) }
        put(fixture.input + "/dataset_description.json", "{\"Name\": \"t\", \"BIDSVersion\": \"1.9.0\", \"DatasetDOI\": \"doi:10.1/x\"}\n")
        let output = fixture.top + "/out"
        _ = try fixture.runParticipants(output)
        let description = try JSONValue.parse(contents(output + "/dataset_description.json"))
        #expect(description["DatasetType"] == .string("derivative"))
        guard case .array(let generators) = description["GeneratedBy"], let first = generators.first else {
            Issue.record("GeneratedBy is not a list")
            return
        }
        #expect(generators.count == 1 && first["Name"] == .string("nimetrics") && first["Version"] == .string(TrialRunner.defaultVersion))
        let url = URL(fileURLWithPath: OutputGuard.resolvedPath(fixture.input), isDirectory: true).absoluteString
        #expect(url.hasPrefix("file:///") && url.hasSuffix("/bids/"))
        #expect(description["SourceDatasets"] == .array([.object([("DOI", .string("doi:10.1/x")), ("URL", .string(url))])]))
    }
}

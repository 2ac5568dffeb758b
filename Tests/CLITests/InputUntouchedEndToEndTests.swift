import Foundation
import Tabular
import TestSupport
import Testing

/// The input is never touched: the whole demo trial's tree, compared byte for byte with its
/// paths and modes, is the same after participant and group runs; an output folder that is
/// or lies in the input is refused with nothing written; links in the output are not followed.
@Suite("The input is never touched (end to end)")
struct InputUntouchedEndToEndTests {
    /// A one-participant demo trial (four visits) of this suite's own, so no other suite
    /// reads a dataset this one checks, in `top/bids`.
    static func demo() throws -> (top: String, bids: String) {
        let top = makeTemporaryFolder()
        let bids = top + "/bids"
        let made = try runTool(["demo", "--out", bids, "--participants", "1"])
        guard made.status == 0 else { throw DemoFailure(message: "nimetrics demo failed: \(made.stderr)") }
        return (top, bids)
    }

    static func participant(_ bids: String, _ output: String, group: Bool = false) -> [String] {
        ["run", bids, output, "participant", "--atlas", bids + "/atlas/atlas-demo_dseg.nii.gz", "--threads", "1"] + (group ? ["--group"] : [])
    }

    @Test("after participant and group runs, into a separate folder and into derivatives/, the input tree is unchanged")
    func inputUnchanged() throws {
        let (top, bids) = try Self.demo()
        defer { try? FileManager.default.removeItem(atPath: top) }
        let before = TreeSnapshot(bids)
        #expect(before.fileCount > 20)

        let output = top + "/out"
        let participant = try runTool(Self.participant(bids, output))
        #expect(participant.status == 0, "\(participant.stderr)")
        let group = try runTool(["run", bids, output, "group"])
        #expect(group.status == 0, "\(group.stderr)")
        #expect(FileManager.default.fileExists(atPath: output + "/group/metrics_long.tsv"))
        #expect(TreeSnapshot(bids).changes(since: before) == [])

        let derivatives = bids + "/derivatives/nimetrics"
        let both = try runTool(Self.participant(bids, derivatives, group: true))
        #expect(both.status == 0, "\(both.stderr)")
        #expect(FileManager.default.fileExists(atPath: derivatives + "/group/nimetrics.sqlite"))
        #expect(TreeSnapshot(bids, excluding: ["derivatives"]).changes(since: before) == [])

        // The output describes itself as a BIDS derivative of that input.
        let description = try JSONValue.parse(String(contentsOfFile: output + "/dataset_description.json", encoding: .utf8))
        guard case .array(let generators) = description["GeneratedBy"], generators.count == 1 else {
            Issue.record("GeneratedBy is not a list of one")
            return
        }
        #expect(generators[0]["Name"] == .string("nimetrics") && generators[0]["Version"] != nil)
        guard case .array(let sources) = description["SourceDatasets"], sources.count == 1,
              case .string(let url) = sources[0]["URL"] else {
            Issue.record("SourceDatasets does not name one input")
            return
        }
        #expect(URL(string: url)?.isFileURL == true)
        #expect(URL(string: url)?.resolvingSymlinksInPath().path == URL(fileURLWithPath: bids).resolvingSymlinksInPath().path)
    }

    @Test("OUTPUT_DIR = BIDS_DIR, or a folder inside it, exits 1 with one line naming both, and nothing is written")
    func outputInInputRefused() throws {
        let (top, bids) = try Self.demo()
        defer { try? FileManager.default.removeItem(atPath: top) }
        let before = TreeSnapshot(top)
        for output in [bids, bids + "/", bids + "/out", bids + "/sub-01/ses-baseline"] {
            for arguments in [Self.participant(bids, output), Self.participant(bids, output, group: true), ["run", bids, output, "group"]] {
                let run = try runTool(arguments)
                #expect(run.status == 1 && !run.signaled, "\(arguments)")
                let lines = run.stderr.split(separator: "\n")
                #expect(lines.count == 1, "\(run.stderr)")
                #expect(run.stderr.contains("the output folder") && run.stderr.contains("input dataset " + bids), "\(run.stderr)")
                #expect(run.stdout.isEmpty, "\(run.stdout)")
            }
        }
        #expect(TreeSnapshot(top).changes(since: before) == [])
    }

    @Test("a visit folder in OUTPUT_DIR that is a link leading elsewhere fails that visit; nothing is written through it")
    func linkInOutputRefused() throws {
        let (top, bids) = try Self.demo()
        defer { try? FileManager.default.removeItem(atPath: top) }
        let output = top + "/out", elsewhere = top + "/elsewhere"
        try FileManager.default.createDirectory(atPath: output + "/sub-01", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: output + "/sub-01/ses-m03", withDestinationPath: elsewhere)
        let input = TreeSnapshot(bids), target = TreeSnapshot(elsewhere)

        let run = try runTool(Self.participant(bids, output))
        #expect(run.status == 1)
        #expect(run.stderr.contains("failed: sub-01_ses-m03 dwi: \(output)/sub-01/ses-m03: a symbolic link (to \(elsewhere))"), "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: output + "/sub-01/ses-m01/sub-01_ses-m01_desc-dwi_visit.json"))
        #expect(TreeSnapshot(elsewhere).changes(since: target) == [])
        #expect(TreeSnapshot(bids).changes(since: input) == [])
    }
}

import Foundation
import Testing

/// `nimetrics visits` must list exactly what `nimetrics run` processes: the units it records
/// and the dataset files each record hashes.
@Suite("nimetrics visits")
struct VisitsCommandTests {
    /// A two-participant demo trial in the derivatives layout (fMRIPrep/QSIPrep trees, two
    /// runs in some sessions of sub-02).
    static func demo(_ root: String) throws -> String {
        let data = root + "/data"
        let made = try runTool(["demo", "--out", data, "--participants", "2", "--layout", "derivatives"])
        #expect(made.status == 0, "\(made.stderr)")
        return data
    }

    static func listing(_ arguments: [String]) throws -> [String: Any] {
        let run = try runTool(["visits"] + arguments + ["--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
    }

    static func units(_ listing: [String: Any]) -> [[String: Any]] {
        ((listing["visits"] as? [[String: Any]]) ?? []).flatMap { ($0["units"] as? [[String: Any]]) ?? [] }
    }

    @Test("the units listed are the records run writes, each with the dataset files its record hashes")
    func matchesRun() throws {
        let root = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = try Self.demo(root)
        let listing = try Self.listing([data, "--participant-label", "02"])
        let processed = try runTool(["run", data, root + "/out", "participant", "--participant-label", "02",
                                     "--atlas", data + "/atlas/atlas-demo_dseg.nii.gz"])
        #expect(processed.status == 0, "\(processed.stderr)")
        let records = filesBelow(root + "/out").filter { $0.hasSuffix("_visit.json") }
        let units = Self.units(listing)
        #expect(units.compactMap { $0["record"] as? String }.sorted() == records.sorted())
        #expect(records.count == 8)
        for unit in units {
            let record = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: root + "/out/" + (unit["record"] as! String)))) as? [String: Any])
            // The record's paths are relative to the dataset; the atlases come from run's options.
            let recorded = Set(((record["inputs"] as? [[String: Any]]) ?? []).compactMap { input -> String? in
                let role = input["role"] as! String
                return role.contains("atlas") ? nil : role + "=" + (input["path"] as! String)
            })
            let listed = Set(((unit["inputs"] as? [[String: Any]]) ?? []).map { input in
                (input["role"] as! String) + "=" + String((input["path"] as! String).dropFirst(data.count + 1))
            })
            #expect(listed == recorded, "\(unit["record"]!)")
        }
        let twoRuns = units.filter { (($0["inputs"] as? [[String: Any]]) ?? []).contains { $0["role"] as? String == "bold_run-2" } }
        #expect(twoRuns.count == 2)
        #expect((listing["clinical_tables"] as? [String]) == [data + "/participants.tsv", data + "/sub-02/sub-02_sessions.tsv"])
    }

    @Test("the selection options narrow the listing as they narrow run; tsv and json list the same files")
    func selection() throws {
        let root = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = try Self.demo(root)
        let one = try Self.listing([data, "--participant-label", "sub-02", "--session-label", "baseline"])
        let visits = try #require(one["visits"] as? [[String: Any]])
        #expect(visits.count == 1 && visits[0]["participant"] as? String == "02" && visits[0]["session"] as? String == "baseline")
        #expect(visits[0]["folder"] as? String == "sub-02/ses-baseline")

        try #"{"bold": {"run": 1}}"#.write(toFile: root + "/filter.json", atomically: true, encoding: .utf8)
        let filtered = try Self.listing([data, "--participant-label", "02", "--bids-filter-file", root + "/filter.json"])
        let roles = Self.units(filtered).flatMap { (($0["inputs"] as? [[String: Any]]) ?? []).compactMap { $0["role"] as? String } }
        #expect(roles.contains("bold") && !roles.contains("bold_run-2"))

        let noDerivatives = try Self.listing([data, "--participant-label", "01", "--derivatives", data + "/derivatives/qsiprep"])
        let paths = Self.units(noDerivatives).flatMap { (($0["inputs"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String } }
        #expect(paths.contains { $0.contains("/qsiprep/") } && !paths.contains { $0.contains("/fmriprep/") })

        let table = try runTool(["visits", data])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines.first == ["participant_id", "session_id", "modality", "role", "path"])
        let all = try Self.listing([data])
        let jsonRows = ((all["visits"] as? [[String: Any]]) ?? []).flatMap { visit in
            ((visit["units"] as? [[String: Any]]) ?? []).flatMap { unit in
                ((unit["inputs"] as? [[String: Any]]) ?? []).map { input in
                    [visit["participant_id"] as! String, visit["session_id"] as! String, unit["modality"] as! String,
                     input["role"] as! String, input["path"] as! String]
                }
            }
        }
        #expect(Array(lines.dropFirst()) == jsonRows)
    }

    @Test("an unknown label or a bad option is one line naming it, exit status 1, nothing on stdout")
    func refusals() throws {
        let root = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = try Self.demo(root)
        let unknown = try runTool(["visits", data, "--participant-label", "07"])
        #expect(unknown.status == 1 && unknown.stdout.isEmpty)
        #expect(unknown.stderr == "nimetrics: \(data): no participant '07' in the dataset\n")
        let badTask = try runTool(["visits", data, "--task", "re-st"])
        #expect(badTask.status != 0 && badTask.stderr.contains("--task must be a BIDS label"))
        let missing = try runTool(["visits", root + "/nothing"])
        #expect(missing.status == 1 && missing.stderr.contains("nothing") && missing.stdout.isEmpty)
    }

    @Test("a dataset without sessions: session null, the visit folder is the participant's, session_id n/a in the table")
    func withoutSessions() throws {
        let root = makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Discovery lists files and never opens an image, so empty files stand for the images.
        try FileManager.default.createDirectory(atPath: root + "/sub-01/dwi", withIntermediateDirectories: true)
        for name in ["sub-01_dwi.nii.gz", "sub-01_dwi.bval", "sub-01_dwi.bvec"] {
            #expect(FileManager.default.createFile(atPath: root + "/sub-01/dwi/" + name, contents: Data()))
        }
        let listing = try Self.listing([root])
        let visit = try #require((listing["visits"] as? [[String: Any]])?.first)
        #expect(visit["session"] is NSNull && visit["session_id"] is NSNull)
        #expect(visit["folder"] as? String == "sub-01")
        #expect(Self.units(listing).compactMap { $0["record"] as? String } == ["sub-01/sub-01_desc-dwi_visit.json"])
        let table = try runTool(["visits", root])
        #expect(table.stdout.split(separator: "\n").dropFirst().allSatisfy { $0.hasPrefix("sub-01\tn/a\tdwi\t") })
    }
}

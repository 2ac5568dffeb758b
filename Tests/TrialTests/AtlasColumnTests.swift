import Foundation
import Pipelines
import Tabular
import Testing
@testable import Trial

/// The `atlas` column: metrics of several atlases, per visit and in the group tables.
@Suite("Several atlases: the atlas column")
struct AtlasColumnTests {
    /// Two atlases: `L_CST`'s FA under each (JHU's rising by 0.02 per month, demo's falling by
    /// 0.01), and the whole-brain FA that no atlas changes, once.
    @Sendable static func twoAtlases(_ visit: VisitInput) -> [MetricRow] {
        let s = Double(["m00": 0, "m01": 1, "m03": 3][visit.session ?? "m00"] ?? 5)
        return [
            MetricRow(modality: "dwi", region: "whole_brain", metric: "fa_mean", value: 0.4),
            MetricRow(modality: "dwi", region: "L_CST", metric: "fa_mean", value: 0.5 + 0.02 * s, atlas: "JHU"),
            MetricRow(modality: "dwi", region: "L_CST", metric: "fa_mean", value: 0.6 - 0.01 * s, atlas: "demo"),
        ]
    }

    @Test("metrics tables, metrics_long, change_from_baseline and the database carry the atlas; changes match atlas by atlas")
    func groupTables() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        let (_, group) = try GroupTests.run(top: top, metrics: Self.twoAtlases)
        let visitTable = try TSVTable.read(top + "/out/sub-01/ses-m03/sub-01_ses-m03_desc-dwi_metrics.tsv")
        #expect(visitTable.columns.last == "atlas")
        #expect(try visitTable.column("atlas") == ["n/a", "JHU", "demo"])

        let long = try TSVTable.read(group + "/metrics_long.tsv")
        #expect(long.columns.suffix(2) == ["atlas", "kind"])
        // Per visit: the values no atlas changes first, then each atlas's in natural order
        // (upper case before lower case, as in plain string order).
        let first = long.rows.filter { $0[0] == "sub-01" && $0[1] == "ses-m03" }
        #expect(first.map { [$0[3], $0[7]] } == [["whole_brain", "n/a"], ["L_CST", "JHU"], ["L_CST", "demo"]])
        #expect(first[1][5] == tsvCell(0.5 + 0.06))

        let change = try TSVTable.read(group + "/change_from_baseline.tsv")
        #expect(change.columns.suffix(2) == ["atlas", "kind"])
        func row(_ atlas: String) -> [String]? {
            change.rows.first { $0[0] == "sub-01" && $0[1] == "ses-m03" && $0[4] == "L_CST" && $0[10] == atlas }
        }
        // Each atlas's baseline is its own: JHU 0.5 -> 0.56, demo 0.6 -> 0.57.
        #expect(row("JHU").map { Array($0[6...7]) } == [tsvCell(0.5), tsvCell(0.5 + 0.06)])
        #expect(row("demo").map { Array($0[6...7]) } == [tsvCell(0.6), tsvCell(0.6 - 0.03)])
        #expect(change.rows.filter { $0[3] == "whole_brain" }.allSatisfy { $0[9] == "n/a" && $0[7] == "0" })

        let db = try SQLiteDatabase(path: group + "/nimetrics.sqlite", readOnly: true)
        #expect(try db.query("SELECT count(*) FROM metrics WHERE atlas IS NULL") == [[.integer(6)]])
        #expect(try db.query("SELECT DISTINCT atlas FROM metrics WHERE atlas IS NOT NULL ORDER BY 1") == [[.text("JHU")], [.text("demo")]])
        let view = try db.query("""
            SELECT baseline_value, value FROM change_from_baseline
            WHERE participant_id = 'sub-01' AND session_id = 'ses-m03' AND region = 'L_CST' ORDER BY atlas
            """)
        #expect(view == [[.real(0.5), .real(0.5 + 0.06)], [.real(0.6), .real(0.6 - 0.03)]])
        let columns = try db.query("SELECT name FROM pragma_table_info('change_from_baseline')").compactMap { $0.first?.string }
        #expect(columns.suffix(2) == ["atlas", "kind"])
    }

    @Test("one key twice is refused, the same key under two atlases is not")
    func uniqueness() throws {
        let a = MetricRow(modality: "dwi", region: "L_CST", metric: "fa_mean", value: 0.5, atlas: "JHU")
        var b = a
        b.atlas = "demo"
        try MetricsTable.validate([a, b])
        #expect(throws: MetricsTable.ValidationFailure.self) { try MetricsTable.validate([a, b, a]) }
        var untagged = a
        untagged.atlas = nil
        try MetricsTable.validate([a, untagged])
    }

    @Test("a metrics table round-trips its atlas column; one written before the column existed reads as n/a")
    func readBack() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let rows = [MetricRow(modality: "func", region: "A", metric: "alff", value: 1.5, run: "2", atlas: "Schaefer100"),
                    MetricRow(modality: "func", region: "whole_brain", metric: "fd_mean", value: 0.1)]
        try MetricsTable.table(rows).write(to: folder + "/new.tsv")
        #expect(try MetricsTable.read(folder + "/new.tsv") == rows)
        put(folder + "/old.tsv", "modality\tregion\tmetric\tvalue\trun\nfunc\tA\talff\t1.5\t2\n")
        #expect(try MetricsTable.read(folder + "/old.tsv") == [MetricRow(modality: "func", region: "A", metric: "alff", value: 1.5, run: "2")])
    }

    @Test("a metrics table holding one metric twice under one atlas is refused by the group level")
    func duplicateInTable() throws {
        let top = makeTemporaryFolder()
        defer { removeFolder(top) }
        _ = try GroupTests.run(top: top, metrics: Self.twoAtlases)
        let path = top + "/out/sub-01/ses-m01/sub-01_ses-m01_desc-dwi_metrics.tsv"
        let text = contents(path)
        put(path, text + "dwi\tL_CST\tfa_mean\t0.7\tn/a\tJHU\n")
        let dataset = try Dataset.discover(top + "/bids")
        #expect { try TrialRunner.runGroup(dataset: dataset, output: top + "/out") } throws: { error in
            "\(error)".contains("L_CST/fa_mean of atlas JHU appears twice")
        }
    }
}

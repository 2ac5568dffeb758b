import AtomicFiles
import Foundation
import Tabular

/// The group tables as an SQLite database, for queries the TSVs make awkward.
///
/// Tables:
/// - `participants(participant_id PRIMARY KEY, <participants.tsv columns>)`
/// - `visits(participant_id, session_id, session_order, status, error, dwi_status, func_status,
///   <clinical columns>, dwi_shells)`: the status of the visit (the worst of its modalities)
///   and of each modality (NULL where the visit has none); `dwi_shells` is TEXT, visits.tsv's
///   protocol column ("1000,2000"), NULL where that is `n/a`
/// - `metrics(participant_id, session_id, modality, region, metric, value, run, atlas)`:
///   `value` is REAL, NULL for n/a; `run` the run label of a per-run value, NULL for the
///   session's; `atlas` the atlas's `seg-` name of a visit measured with several, NULL for a
///   visit of one atlas and for values no atlas changes; indexed on (participant_id, metric)
///   and (metric, region).
/// - `baselines(participant_id PRIMARY KEY, session_id)`: the baseline chosen for each
///   participant (NULL when the requested one is absent).
/// - `stats` and `trend`: stats.tsv and trend.tsv (``GroupStatistics``), column for column.
/// - view `change_from_baseline`: the columns of change_from_baseline.tsv, computed in SQL
///   with the same operations in the same order, so the numbers are identical.
///
/// A clinical column is INTEGER when all its present values are integers, REAL when all are
/// finite numbers, TEXT otherwise; `n/a` and empty cells are NULL. Rows are inserted in the
/// TSV order, so the same inputs give the same database content.
enum GroupDatabase {
    static func write(to path: String, visits: [GroupVisit], dataset: Dataset, baselines: [String: String?],
                      tables: [(name: String, table: TSVTable)] = []) throws {
        do {
            try AtomicFile.write(to: path, durable: true) { temporary in
                let db = try SQLiteDatabase(path: temporary)
                try fill(db, visits: visits, dataset: dataset, baselines: baselines)
                try db.transaction { for (name, table) in tables { try insert(table, as: name, into: db) } }
            }
        } catch let error as TrialError {
            throw error
        } catch {
            throw TrialError.io(path: path, reason: "cannot write the database: \(TrialRunner.oneLine(error))")
        }
    }

    static func fill(_ db: SQLiteDatabase, visits: [GroupVisit], dataset: Dataset, baselines: [String: String?]) throws {
        let q = SQLiteDatabase.quoted
        let participantIDs = visits.map(\.visit.participant).reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
        let participantColumns = dataset.participantColumns
        let participantValues = participantIDs.map { id in
            participantColumns.map { name in dataset.participantClinical[id]?.first { $0.0 == name }?.1 ?? "n/a" }
        }
        let clinical = TrialRunner.clinicalColumns(visits)
        let clinicalValues = visits.map { visit in clinical.map { name in visit.visit.clinical.first { $0.0 == name }?.1 ?? "n/a" } }

        try db.execute("PRAGMA journal_mode = MEMORY")
        try db.transaction {
            let participantTypes = columnTypes(participantValues, count: participantColumns.count)
            try db.execute("CREATE TABLE participants (participant_id TEXT PRIMARY KEY NOT NULL"
                           + zip(participantColumns, participantTypes).map { ", \(q($0)) \($1)" }.joined() + ")")
            try db.run("INSERT INTO participants VALUES (?" + String(repeating: ", ?", count: participantColumns.count) + ")",
                       rows: zip(participantIDs, participantValues).map { id, values in
                           [.text("sub-" + id)] + zip(values, participantTypes).map { sqlValue($0, type: $1) }
                       })

            let clinicalTypes = columnTypes(clinicalValues, count: clinical.count)
            try db.execute("CREATE TABLE visits (participant_id TEXT NOT NULL, session_id TEXT, session_order INTEGER NOT NULL, "
                           + "status TEXT NOT NULL, error TEXT, dwi_status TEXT, func_status TEXT"
                           + zip(clinical, clinicalTypes).map { ", \(q($0)) \($1)" }.joined()
                           + ", dwi_shells TEXT, UNIQUE (participant_id, session_id))")
            try db.run("INSERT INTO visits VALUES (?, ?, ?, ?, ?, ?, ?" + String(repeating: ", ?", count: clinical.count) + ", ?)",
                       rows: zip(visits, clinicalValues).map { visit, values in
                           [.text(visit.visit.participantID), visit.visit.sessionID.map(SQLiteValue.text) ?? .null,
                            .integer(Int64(visit.sessionOrder)), .text(visit.status.rawValue),
                            visit.error.map(SQLiteValue.text) ?? .null]
                           + Modality.allCases.map { visit.status(of: $0).map { .text($0.rawValue) } ?? .null }
                           + zip(values, clinicalTypes).map { sqlValue($0, type: $1) }
                           + [visit.dwiShellsText.map(SQLiteValue.text) ?? .null]
                       })

            try db.execute("""
                CREATE TABLE metrics (participant_id TEXT NOT NULL, session_id TEXT, modality TEXT NOT NULL,
                                      region TEXT NOT NULL, metric TEXT NOT NULL, value REAL, run TEXT, atlas TEXT);
                CREATE INDEX metrics_by_participant ON metrics (participant_id, metric);
                CREATE INDEX metrics_by_metric ON metrics (metric, region);
                """)
            try db.run("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows: visits.flatMap { visit in
                visit.metrics.map { m -> [SQLiteValue] in
                    [.text(visit.visit.participantID), visit.visit.sessionID.map(SQLiteValue.text) ?? .null,
                     .text(m.modality), .text(m.region), .text(m.metric), m.value.isFinite ? .real(m.value) : .null,
                     m.run.map(SQLiteValue.text) ?? .null, m.atlas.map(SQLiteValue.text) ?? .null]
                }
            })

            try db.execute("CREATE TABLE baselines (participant_id TEXT PRIMARY KEY NOT NULL, session_id TEXT)")
            try db.run("INSERT INTO baselines VALUES (?, ?)", rows: participantIDs.compactMap { id in
                guard let baseline = baselines[id] else { return nil }
                return [.text("sub-" + id), baseline.map { .text("ses-" + $0) } ?? .null]
            })
            // Same arithmetic as ChangeRow: delta = value - baseline; pct = 100 * delta / |baseline|.
            try db.execute("""
                CREATE VIEW change_from_baseline AS
                SELECT m.participant_id AS participant_id, m.session_id AS session_id, m.modality AS modality,
                       m.region AS region, m.metric AS metric, b.value AS baseline_value, m.value AS value,
                       m.value - b.value AS delta,
                       CASE WHEN b.value IS NULL OR b.value = 0 THEN NULL
                            ELSE 100.0 * (m.value - b.value) / abs(b.value) END AS pct_change,
                       m.atlas AS atlas
                FROM metrics AS m
                JOIN baselines AS bl ON bl.participant_id = m.participant_id
                LEFT JOIN metrics AS b ON b.participant_id = m.participant_id AND b.session_id = bl.session_id
                     AND b.modality = m.modality AND b.region = m.region AND b.metric = m.metric AND b.run IS NULL
                     AND b.atlas IS m.atlas
                WHERE m.session_id IS NOT bl.session_id AND m.run IS NULL
                """)
        }
    }

    /// A TSV table as an SQLite table of the same name and columns, typed as the clinical
    /// columns are (`n/a` is NULL), rows in the TSV's order.
    static func insert(_ table: TSVTable, as name: String, into db: SQLiteDatabase) throws {
        let q = SQLiteDatabase.quoted
        // A column with no value at all (atlas for a single-atlas trial) is TEXT, not INTEGER.
        let types = zip(columnTypes(table.rows, count: table.columns.count), table.columns.indices).map { type, column in
            table.rows.allSatisfy { isMissing($0[column]) } ? ColumnType.text.rawValue : type
        }
        try db.execute("CREATE TABLE \(q(name)) (" + zip(table.columns, types).map { "\(q($0)) \($1)" }.joined(separator: ", ") + ")")
        try db.run("INSERT INTO \(q(name)) VALUES (" + Array(repeating: "?", count: table.columns.count).joined(separator: ", ") + ")",
                   rows: table.rows.map { row in zip(row, types).map { sqlValue($0, type: $1) } })
    }

    enum ColumnType: String { case integer = "INTEGER", real = "REAL", text = "TEXT" }

    static func isMissing(_ cell: String) -> Bool { cell.isEmpty || cell == "n/a" }

    /// The narrowest type that holds every present value of each column.
    static func columnTypes(_ rows: [[String]], count: Int) -> [String] {
        (0..<count).map { column in
            let present = rows.map { $0[column] }.filter { !isMissing($0) }
            if present.allSatisfy({ Int64($0) != nil }) { return ColumnType.integer.rawValue }
            if present.allSatisfy({ Double($0)?.isFinite == true }) { return ColumnType.real.rawValue }
            return ColumnType.text.rawValue
        }
    }

    static func sqlValue(_ cell: String, type: String) -> SQLiteValue {
        if isMissing(cell) { return .null }
        switch type {
        case ColumnType.integer.rawValue: return .integer(Int64(cell)!)
        case ColumnType.real.rawValue: return .real(Double(cell)!)
        default: return .text(cell)
        }
    }
}

import AtomicFiles
import Foundation
import Tabular

/// The group tables as an SQLite database, for queries the TSVs make awkward.
///
/// Tables:
/// - `participants(participant_id PRIMARY KEY, <participants.tsv columns>)`
/// - `visits(participant_id, session_id, session_order, visit_month, status, error, dwi_status,
///   func_status, <clinical columns>, dwi_shells, dwi_parameters, func_parameters)`: every
///   row of visits.tsv; `visit_month` REAL (NULL when unknown); the status of the visit (the
///   worst of its modalities) and of each modality (NULL where the visit has none);
///   `dwi_shells` TEXT, visits.tsv's protocol column ("1000,2000"); the parameters ids TEXT
///   (see table `parameters`). NULL wherever visits.tsv has `n/a`.
/// - `metrics(participant_id, session_id, modality, region, metric, value, run, atlas, kind
///   [, parameters_id])`: `value` is REAL, NULL for n/a; `run` the run label of a per-run
///   value, NULL for the session's; `atlas` the atlas's `seg-` name of a visit measured with
///   several, NULL for a visit of one atlas and for values no atlas changes; `kind` outcome
///   or qc (``MetricKind``); `parameters_id` only with `--allow-mixed-parameters`; indexed on
///   (participant_id, metric) and (metric, region).
/// - `baselines(participant_id PRIMARY KEY, session_id, rule)`: the baseline chosen for each
///   participant (session NULL when it has none) and the rule that chose it
///   (``Baseline/Rule``).
/// - `parameters(modality, parameters_id, parameters)`: the full JSON of each parameter set
///   an ok visit was processed with.
/// - `clinical_columns(column_name, table_name, source_column, source_file, level,
///   description, units, levels)`: each clinical column of `visits` and `participants`, the
///   name it had in its table (different when renamed for a clash), the first table that
///   gives it (relative to the dataset when inside it), and its sidecar's `Description`, `Units` and `Levels` (JSON text).
/// - `stats` and `trend`: stats.tsv and trend.tsv (``GroupStatistics``), column for column.
/// - view `change_from_baseline`: the columns of change_from_baseline.tsv, computed in SQL
///   with the same operations in the same order, so the numbers are identical.
///
/// A clinical column is INTEGER when all its present values are integers, REAL when all are
/// finite numbers, TEXT otherwise; `n/a` and empty cells are NULL. Rows are inserted in the
/// TSV order, so the same inputs give the same database content.
enum GroupDatabase {
    static func write(to path: String, data: GroupData, dataset: Dataset,
                      tables: [(name: String, table: TSVTable)] = []) throws {
        do {
            try AtomicFile.write(to: path, durable: true) { temporary in
                let db = try SQLiteDatabase(path: temporary)
                try db.execute("PRAGMA journal_mode = MEMORY")
                // A page cache that holds the metrics indexes (about 35 bytes a row each): with
                // SQLite's default 2 MiB, the index on (metric, region), which every visit's rows
                // enter all over, went to the disk for each insert at ten thousand visits.
                // The cache changes the speed only, not the pages written.
                try db.execute("PRAGMA cache_size = -262144")
                try db.transaction {
                    try fillParticipants(db, data: data, dataset: dataset)
                    try fillVisits(db, data: data)
                    try fillMetrics(db, data: data)
                    try fillBaselines(db, data: data)
                    try fillDescriptions(db, data: data, dataset: dataset)
                    for (name, table) in tables { try insert(table, as: name, into: db) }
                }
            }
        } catch let error as TrialError {
            throw error
        } catch {
            throw TrialError.io(path: path, reason: "cannot write the database: \(TrialRunner.oneLine(error))")
        }
    }

    static let q = SQLiteDatabase.quoted

    static func participantIDs(_ data: GroupData) -> [String] {
        data.visits.map(\.visit.participant).reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
    }

    static func fillParticipants(_ db: SQLiteDatabase, data: GroupData, dataset: Dataset) throws {
        let ids = participantIDs(data)
        let columns = data.participantColumns
        let values = ids.map { id in columns.map { c in dataset.participantClinical[id]?.first { $0.0 == c.source }?.1 ?? "n/a" } }
        let types = columnTypes(values, count: columns.count)
        try db.execute("CREATE TABLE participants (participant_id TEXT PRIMARY KEY NOT NULL"
                       + zip(columns, types).map { ", \(q($0.name)) \($1)" }.joined() + ")")
        try db.run("INSERT INTO participants VALUES (?" + String(repeating: ", ?", count: columns.count) + ")",
                   rows: zip(ids, values).map { id, values in [.text("sub-" + id)] + zip(values, types).map { sqlValue($0, type: $1) } })
    }

    static func fillVisits(_ db: SQLiteDatabase, data: GroupData) throws {
        let clinical = data.clinical
        let values = data.visits.map { visit in clinical.map { GroupData.clinicalCell(visit, $0.source) } }
        let types = columnTypes(values, count: clinical.count)
        try db.execute("CREATE TABLE visits (participant_id TEXT NOT NULL, session_id TEXT, session_order INTEGER NOT NULL, "
                       + "visit_month REAL, status TEXT NOT NULL, error TEXT, dwi_status TEXT, func_status TEXT"
                       + zip(clinical, types).map { ", \(q($0.name)) \($1)" }.joined()
                       + ", dwi_shells TEXT, dwi_parameters TEXT, func_parameters TEXT, UNIQUE (participant_id, session_id))")
        try db.run("INSERT INTO visits VALUES (?, ?, ?, ?, ?, ?, ?, ?" + String(repeating: ", ?", count: clinical.count) + ", ?, ?, ?)",
                   rows: zip(data.visits, values).map { visit, values in
                       [.text(visit.visit.participantID), visit.visit.sessionID.map(SQLiteValue.text) ?? .null,
                        .integer(Int64(visit.sessionOrder)), visit.visitMonth.map(SQLiteValue.real) ?? .null,
                        .text(visit.status.rawValue), visit.error.map(SQLiteValue.text) ?? .null]
                       + Modality.allCases.map { visit.status(of: $0).map { .text($0.rawValue) } ?? .null }
                       + zip(values, types).map { sqlValue($0, type: $1) }
                       + [visit.dwiShellsText.map(SQLiteValue.text) ?? .null]
                       + Modality.allCases.map { visit.parameters[$0].map { .text($0.id) } ?? .null }
                   })
        var seen = Set<String>()
        try db.execute("CREATE TABLE parameters (modality TEXT NOT NULL, parameters_id TEXT NOT NULL, parameters TEXT NOT NULL, "
                       + "PRIMARY KEY (modality, parameters_id))")
        try db.run("INSERT INTO parameters VALUES (?, ?, ?)", rows: data.visits.flatMap { visit in
            Modality.allCases.compactMap { modality -> [SQLiteValue]? in
                guard let set = visit.parameters[modality], seen.insert(modality.rawValue + set.id).inserted else { return nil }
                return [.text(modality.rawValue), .text(set.id), .text(set.json.rendered(pretty: false))]
            }
        })
    }

    static func fillMetrics(_ db: SQLiteDatabase, data: GroupData) throws {
        let mixed = data.mixedParameters
        try db.execute("""
            CREATE TABLE metrics (participant_id TEXT NOT NULL, session_id TEXT, modality TEXT NOT NULL,
                                  region TEXT NOT NULL, metric TEXT NOT NULL, value REAL, run TEXT, atlas TEXT,
                                  kind TEXT NOT NULL\(mixed ? ", parameters_id TEXT" : ""));
            """)
        // Visit by visit: the rows of one visit are made, inserted and let go, so the table
        // never lies whole in memory (millions of rows for ten thousand visits).
        let sql = "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?\(mixed ? ", ?" : ""))"
        let keys = data.catalogue.keys
        let kinds = keys.map { SQLiteValue.text(MetricKind.of(metric: $0.metric).rawValue) }
        for visit in data.visits {
            let participant = SQLiteValue.text(visit.visit.participantID)
            let session = visit.visit.sessionID.map(SQLiteValue.text) ?? .null
            try db.run(sql, rows: zip(visit.metricIDs, visit.metricValues).map { id, value -> [SQLiteValue] in
                let m = keys[Int(id)]
                return [participant, session, .text(m.modality), .text(m.region), .text(m.metric), value.isFinite ? .real(value) : .null,
                        m.run.map(SQLiteValue.text) ?? .null, m.atlas.map(SQLiteValue.text) ?? .null, kinds[Int(id)]]
                    + (mixed ? [visit.parametersID(of: m.modality).map(SQLiteValue.text) ?? .null] : [])
            })
        }
        // Indexed once the rows are in: SQLite then sorts each index once instead of entering
        // every row into both B-trees as it comes (the one on (metric, region) all over).
        try db.execute("""
            CREATE INDEX metrics_by_participant ON metrics (participant_id, metric);
            CREATE INDEX metrics_by_metric ON metrics (metric, region);
            """)
    }

    static func fillBaselines(_ db: SQLiteDatabase, data: GroupData) throws {
        try db.execute("CREATE TABLE baselines (participant_id TEXT PRIMARY KEY NOT NULL, session_id TEXT, rule TEXT NOT NULL)")
        try db.run("INSERT INTO baselines VALUES (?, ?, ?)", rows: participantIDs(data).compactMap { id in
            guard let baseline = data.baselines[id] else { return nil }
            return [.text("sub-" + id), baseline.sessionID.map(SQLiteValue.text) ?? .null, .text(baseline.rule.rawValue)]
        })
        let mixed = data.mixedParameters
        // Same arithmetic as ChangeRow: delta = value - baseline; percent = 100 * delta / |baseline|.
        try db.execute("""
            CREATE VIEW change_from_baseline AS
            SELECT m.participant_id AS participant_id, m.session_id AS session_id, bl.session_id AS baseline_session_id,
                   m.modality AS modality, m.region AS region, m.metric AS metric, b.value AS baseline_value, m.value AS value,
                   m.value - b.value AS delta,
                   CASE WHEN b.value IS NULL OR b.value = 0 THEN NULL
                        ELSE 100.0 * (m.value - b.value) / abs(b.value) END AS percent_change,
                   m.atlas AS atlas, m.kind AS kind\(mixed ? ", m.parameters_id AS parameters_id, b.parameters_id AS baseline_parameters_id" : "")
            FROM metrics AS m
            JOIN baselines AS bl ON bl.participant_id = m.participant_id
            LEFT JOIN metrics AS b ON b.participant_id = m.participant_id AND b.session_id = bl.session_id
                 AND b.modality = m.modality AND b.region = m.region AND b.metric = m.metric AND b.run IS NULL
                 AND b.atlas IS m.atlas
            WHERE m.session_id IS NOT bl.session_id AND m.run IS NULL
            """)
    }

    static func fillDescriptions(_ db: SQLiteDatabase, data: GroupData, dataset: Dataset) throws {
        try db.execute("""
            CREATE TABLE clinical_columns (column_name TEXT NOT NULL, table_name TEXT NOT NULL, source_column TEXT NOT NULL,
                                           source_file TEXT, level TEXT, description TEXT, units TEXT, levels TEXT,
                                           PRIMARY KEY (table_name, column_name))
            """)
        // Paths relative to the dataset, as the visit records write them: the database does not
        // depend on where the dataset lies.
        let root = TrialRunner.datasetFolder(dataset)
        func rows(_ columns: [(source: String, name: String)], table: String, levels: Set<ClinicalSource.Level>) -> [[SQLiteValue]] {
            columns.map { column in
                let source = dataset.clinicalSources.first { levels.contains($0.level) && $0.columns.contains(column.source) }
                    ?? dataset.clinicalSources.first { $0.columns.contains(column.source) }
                let described = data.descriptions[column.source]
                return [.text(column.name), .text(table), .text(column.source), source.map { .text(TrialRunner.displayPath($0.file, root: root)) } ?? .null,
                        source.map { .text($0.level.rawValue) } ?? .null, described?.description.map(SQLiteValue.text) ?? .null,
                        described?.units.map(SQLiteValue.text) ?? .null, described?.levels.map(SQLiteValue.text) ?? .null]
            }
        }
        try db.run("INSERT INTO clinical_columns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   rows: rows(data.clinical, table: "visits", levels: [.session, .participant])
                       + rows(data.participantColumns, table: "participants", levels: [.participant]))
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

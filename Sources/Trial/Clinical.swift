import FileSystem
import Foundation
import Tabular

/// A clinical table the dataset's visits took columns from: participants.tsv, a
/// sub-XX_sessions.tsv, a manifest, or the `--clinical` table.
public struct ClinicalSource: Sendable, Equatable {
    /// Whether the table's rows are participants or visits.
    public enum Level: String, Sendable { case participant, session }

    public var file: String
    public var level: Level
    /// The table's columns other than its keys, as written.
    public var columns: [String]
    /// The JSON sidecars that describe the columns (BIDS: `Description`, `Units`,
    /// `Levels`), most specific first: the table's own `.json`, then, for a
    /// sub-XX_sessions.tsv, the dataset's top-level `sessions.json` (BIDS inheritance).
    public var sidecars: [String]
}

/// The two clinical columns nimetrics reads as well as carries: `acq_time` and `visit_month`.
///
/// Both are checked where they are read (sessions.tsv, a manifest, `--clinical`), so a value
/// that cannot be read is an error naming the file, the line and the value, never a visit
/// silently put out of order or a baseline silently moved.
public enum ClinicalTime {
    /// The length of a month when a visit month is computed from acquisition times:
    /// 365.25 / 12 = 30.4375 days (the mean Julian month), in seconds.
    public static let secondsPerMonth = 30.4375 * 86_400

    /// Seconds since 1970-01-01T00:00:00Z of an ISO 8601 date or date-time: `YYYY-MM-DD`,
    /// `YYYY-MM-DDThh:mm`, `YYYY-MM-DDThh:mm:ss[.fff...]`, each optionally followed by `Z` or
    /// an offset `±hh:mm` / `±hhmm` (a time without offset is read as UTC: the times of one
    /// study share the site's clock). A space may stand for the `T` (RFC 3339, and what
    /// spreadsheets and pandas write). Anything else (`03/15/2024`, `15.03.2024`, a month
    /// 13, a 30 February) is nil.
    public static func seconds(_ text: String) -> Double? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var value = 0
            for k in i..<(i + n) {
                guard (48...57).contains(b[k]) else { return nil }
                value = value * 10 + Int(b[k] - 48)
            }
            i += n
            return value
        }
        func expect(_ c: UInt8) -> Bool { guard i < b.count, b[i] == c else { return false }; i += 1; return true }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2),
              (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        var seconds = Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
        if i == b.count { return seconds }
        guard b[i] == 84 || b[i] == 32 else { return nil }  // 'T' or ' '
        i += 1
        guard let hour = digits(2), expect(58), let minute = digits(2), hour < 24, minute < 60 else { return nil }
        seconds += Double(hour * 3600 + minute * 60)
        if expect(58) {
            guard let second = digits(2), second < 60 else { return nil }
            seconds += Double(second)
            if expect(46) {
                let start = i
                var fraction = 0.0, scale = 0.1
                while i < b.count, (48...57).contains(b[i]) { fraction += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
                guard i > start else { return nil }
                seconds += fraction
            }
        }
        if i == b.count || (expect(90) && i == b.count) { return seconds }  // 'Z'
        guard i < b.count, b[i] == 43 || b[i] == 45 else { return nil }
        let sign: Double = b[i] == 43 ? 1 : -1
        i += 1
        guard let offsetHours = digits(2), offsetHours < 24 else { return nil }
        _ = expect(58)
        guard let offsetMinutes = digits(2), offsetMinutes < 60, i == b.count else { return nil }
        return seconds - sign * Double(offsetHours * 3600 + offsetMinutes * 60)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-compatible
    /// low-level date algorithms", days_from_civil).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// A visit month as written in a clinical table: a number (`0`, `3`, `-1`, `6.5`), a
    /// number after `m` or `month` (`M06`, `month 6`), or a baseline token (`BL`,
    /// `baseline`; any case), which is month 0. Anything else (`screening`, `six`) is nil:
    /// nimetrics does not guess where such a visit lies (write screening as a negative month).
    public static func month(_ text: String) -> Double? {
        let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
        if lower == "bl" || lower == "baseline" { return 0 }
        var number = Substring(lower)
        if number.hasPrefix("month") { number = number.dropFirst(5) } else if number.hasPrefix("m") { number = number.dropFirst() }
        let trimmed = number.trimmingCharacters(in: .whitespaces)
        guard let value = Double(trimmed), value.isFinite, trimmed.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true
        else { return nil }
        return value
    }

    /// Checks the `acq_time` and `visit_month` cells of a visit-level table.
    /// - Throws: ``TrialError/badTable(file:reason:)`` naming the line and the value.
    static func check(_ table: TSVTable, file: String) throws {
        let syntax = "an ISO 8601 date or date-time (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss, optionally with Z or ±hh:mm)"
        for (column, isValid, expected) in [("acq_time", { seconds($0) != nil }, syntax),
                                            ("visit_month", { month($0) != nil }, "a number of months or a baseline token (BL, baseline); write screening visits as negative months")]
            as [(String, (String) -> Bool, String)] {
            guard let index = table.index(of: column) else { continue }
            for (k, row) in table.rows.enumerated() where !isMissing(row[index]) && !isValid(row[index]) {
                throw TrialError.badTable(file: file, reason: "line \(k + 2): \(column) '\(row[index])' is not \(expected)")
            }
        }
    }

    static func isMissing(_ cell: String) -> Bool { cell.isEmpty || cell == "n/a" }
}

/// The names clinical columns get in the group tables, and what their sidecars say.
enum ClinicalColumns {
    /// Column names of nimetrics' own in visits.tsv and the database's `visits` table
    /// (`visit_month` is read from the clinical tables and written as nimetrics' column).
    static let reserved: [String] = ["participant_id", "session_id", "session_order", "visit_month", "baseline_session_id",
                                     "status", "error", "dwi_status", "func_status", "dwi_shells",
                                     "dwi_parameters", "func_parameters", "kind", "parameters_id"]

    /// The prefix a clashing clinical column gets.
    static let prefix = "clinical_"

    /// The table name of each clinical column, in order: a name that is one of nimetrics' own
    /// (compared without case, as SQLite compares column names) becomes `clinical_<name>`,
    /// and a name equal, without case, to an earlier one gets `_2`, `_3`...; each renaming
    /// is a warning. So no clinical column is dropped and none breaks the database.
    static func tableNames(_ names: [String], skipping: Set<String> = ["visit_month"],
                           warnings: inout [String]) -> [(source: String, name: String)] {
        var taken = Set(reserved.map { $0.lowercased() })
        var out: [(String, String)] = []
        for source in names where !skipping.contains(source) {
            var name = source
            if reserved.contains(where: { $0.caseInsensitiveCompare(source) == .orderedSame }) { name = prefix + source }
            var candidate = name, k = 2
            while taken.contains(candidate.lowercased()) { candidate = name + "_\(k)"; k += 1 }
            taken.insert(candidate.lowercased())
            if name != source {
                warnings.append("clinical column '\(source)' is named like a column of nimetrics' own; its values are in column '\(candidate)'")
            } else if candidate != source {
                warnings.append("clinical column '\(source)' differs from another only in case (which SQLite ignores); its values are in column '\(candidate)'")
            }
            out.append((source, candidate))
        }
        return out
    }

    /// What the sidecars say of one column: BIDS's `Description`, `Units` and `Levels`.
    struct Description {
        var description: String?
        var units: String?
        /// `Levels` as compact JSON text (`{"F":"female","M":"male"}`).
        var levels: String?
        var sidecar: String?
    }

    /// The sidecar descriptions of every column of the sources, the first sidecar that
    /// describes a column giving it. An unreadable or invalid sidecar is a warning (it holds
    /// no number), not an error.
    static func describe(_ sources: [ClinicalSource], warnings: inout [String]) -> [String: Description] {
        var out: [String: Description] = [:]
        var parsed: [String: JSONValue] = [:]
        for source in sources {
            for sidecar in source.sidecars where parsed[sidecar] == nil {
                guard FileManager.default.fileExists(atPath: sidecar) else { parsed[sidecar] = .null; continue }
                do { parsed[sidecar] = try JSONValue.parse(try FileSystem.readText(sidecar)) } catch {
                    parsed[sidecar] = .null
                    warnings.append("\(sidecar): not a readable JSON sidecar; its column descriptions are left out")
                }
            }
            // BIDS inheritance: each field from the most specific sidecar that has it.
            for column in source.columns where out[column] == nil {
                var described = Description()
                for sidecar in source.sidecars {
                    guard let entry = parsed[sidecar]?[column], case .object = entry else { continue }
                    func text(_ key: String) -> String? {
                        switch entry[key] {
                        case .string(let s)?: s
                        case .some(.null), nil: nil
                        case let other?: other.rendered(pretty: false)
                        }
                    }
                    described.description = described.description ?? text("Description")
                    described.units = described.units ?? text("Units")
                    described.levels = described.levels ?? entry["Levels"].map { $0.rendered(pretty: false) }
                    described.sidecar = described.sidecar ?? sidecar
                }
                if described.sidecar != nil { out[column] = described }
            }
        }
        return out
    }
}

extension Dataset {
    /// Merges a clinical table keyed by `participant_id` and, optionally, `session_id` into
    /// the visits (`--clinical FILE`; its sidecar is `FILE` with `.json` for `.tsv`).
    ///
    /// A row with a session that the dataset lacks adds a scheduled visit (listed as
    /// `missing` by the group stage, its clinical data kept). A row without `session_id`
    /// applies to every visit of its participant. A column the dataset's own tables
    /// (sessions.tsv, participants.tsv, a manifest) also give keeps their value where this
    /// table has `n/a`, takes this table's where they have `n/a`, and is an error where both
    /// have different values.
    /// - Throws: ``TrialError`` for a table without `participant_id`, an invalid label, a
    ///   visit listed twice, an unreadable `acq_time`/`visit_month`, or a conflicting value.
    mutating func mergeClinicalTable(_ file: String) throws {
        let table = try Dataset.readTable(file)
        guard let participantKey = table.index(of: "participant_id") else { throw TrialError.missingColumn(file: file, column: "participant_id") }
        let sessionKey = table.index(of: "session_id")
        try ClinicalTime.check(table, file: file)
        let columns = table.columns.enumerated().filter { $0.offset != participantKey && $0.offset != sessionKey }
        var firstLine: [String: Int] = [:]
        for (index, row) in table.rows.enumerated() {
            let line = index + 2
            let participant: String, session: String?
            do {
                participant = try BIDSLabel.normalized(row[participantKey], kind: "participant")
                session = try sessionKey.flatMap { ClinicalTime.isMissing(row[$0]) ? nil : try BIDSLabel.normalized(row[$0], kind: "session") }
            } catch { throw TrialError.badTable(file: file, reason: "line \(line): \(error)") }
            let key = "sub-\(participant)" + (session.map { " ses-\($0)" } ?? "")
            if let first = firstLine[key] {
                throw TrialError.badTable(file: file, reason: "lines \(first) and \(line): \(key) listed twice; one row per visit")
            }
            firstLine[key] = line
            if let session, !visits.contains(where: { $0.participant == participant && $0.session == session }) {
                let participantPart = participantClinical[participant] ?? participantColumns.map { ($0, "n/a") }
                visits.append(VisitInput(participant: participant, session: session, clinical: participantPart))
            }
            let cells = columns.map { ($0.element, row[$0.offset]) }
            for k in visits.indices where visits[k].participant == participant && (session == nil || visits[k].session == session) {
                try Dataset.merge(cells, into: &visits[k], file: file, line: line)
            }
        }
        clinicalSources.append(ClinicalSource(file: file, level: sessionKey == nil ? .participant : .session,
                                              columns: columns.map(\.element), sidecars: [Dataset.sidecar(of: file)]))
    }

    /// Adds `cells` to a visit's clinical columns (see ``mergeClinicalTable(_:)``).
    static func merge(_ cells: [(String, String)], into visit: inout VisitInput, file: String, line: Int) throws {
        for (name, value) in cells {
            guard let k = visit.clinical.firstIndex(where: { $0.0 == name }) else { visit.clinical.append((name, value)); continue }
            let present = visit.clinical[k].1
            if ClinicalTime.isMissing(value) || present == value { continue }
            if ClinicalTime.isMissing(present) { visit.clinical[k].1 = value; continue }
            throw TrialError.badTable(file: file, reason: "line \(line): \(name) of \(visit.filePrefix) is '\(value)' here but '\(present)' in the dataset's own tables")
        }
    }

    /// The JSON sidecar of a TSV table: the same name with `.json`.
    static func sidecar(of table: String) -> String {
        (table.hasSuffix(".tsv") ? String(table.dropLast(4)) : table) + ".json"
    }

    /// Throws when a key appears on more than one line of a table.
    /// - Parameters:
    ///   - keys: each row's key, in file order (row k is on line k + 2).
    ///   - what: `participant` or `session`, for the message.
    static func checkUnique(_ keys: [String], file: String, what: String) throws {
        var lines: [String: [Int]] = [:]
        for (k, key) in keys.enumerated() { lines[key, default: []].append(k + 2) }
        if let (key, where_) = keys.lazy.compactMap({ key in lines[key].flatMap { $0.count > 1 ? (key, $0) : nil } }).first {
            throw TrialError.badTable(file: file, reason: "lines \(where_.map(String.init).joined(separator: ", ")): \(what) '\(key)' listed \(where_.count) times; one row per \(what)")
        }
    }
}

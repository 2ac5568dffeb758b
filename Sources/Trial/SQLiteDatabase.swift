import CSQLite
import Foundation
import Tabular

/// A value in an SQLite row.
public enum SQLiteValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    /// The value as a Double (integers widened), nil for NULL and text.
    public var double: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .real(let d): d
        default: nil
        }
    }

    /// The value as text, nil for NULL.
    public var string: String? {
        switch self {
        case .null: nil
        case .integer(let i): String(i)
        case .real(let d): tsvCell(d)
        case .text(let s): s
        }
    }
}

/// An open SQLite database (the system `libsqlite3`), closed when released.
///
/// The only place in nimetrics that touches the SQLite C API: the `sqlite3 *` handle and
/// statements never leave this file, and every failing C call becomes
/// ``TrialError/sqlite(path:function:message:)`` naming the function and SQLite's message.
public final class SQLiteDatabase {
    public let path: String
    private let handle: OpaquePointer

    /// Opens (and by default creates) a database with `sqlite3_open_v2`.
    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            if let db { sqlite3_close_v2(db) }
            throw TrialError.sqlite(path: path, function: "sqlite3_open_v2", message: message)
        }
        handle = db
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements without parameters (`sqlite3_exec`).
    public func execute(_ sql: String) throws {
        var errorText: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorText)
        guard code == SQLITE_OK else {
            let message = errorText.map { String(cString: $0) } ?? lastError
            sqlite3_free(errorText)
            throw TrialError.sqlite(path: path, function: "sqlite3_exec", message: message)
        }
    }

    /// Runs one statement with `?` parameters for each row of `rows` (prepared once).
    public func run(_ sql: String, rows: [[SQLiteValue]]) throws {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        for row in rows {
            try bind(row, to: statement)
            let code = sqlite3_step(statement)
            guard code == SQLITE_DONE || code == SQLITE_ROW else {
                throw TrialError.sqlite(path: path, function: "sqlite3_step", message: lastError)
            }
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        try bind(parameters, to: statement)
        var rows: [[SQLiteValue]] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else { throw TrialError.sqlite(path: path, function: "sqlite3_step", message: lastError) }
            let count = sqlite3_column_count(statement)
            rows.append((0..<count).map { column in
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
                case SQLITE_TEXT: .text(String(cString: sqlite3_column_text(statement, column)))
                default: .null
                }
            })
        }
        return rows
    }

    /// Runs `body` inside `BEGIN` / `COMMIT`, rolling back if it throws.
    public func transaction(_ body: () throws -> Void) throws {
        try execute("BEGIN")
        do {
            try body()
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// A name quoted for SQL (`"` doubled), for column names taken from clinical tables.
    public static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    private var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw TrialError.sqlite(path: path, function: "sqlite3_prepare_v2", message: lastError)
        }
        return statement
    }

    /// SQLite's SQLITE_TRANSIENT (a macro Swift cannot import): copy the text before returning.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ values: [SQLiteValue], to statement: OpaquePointer) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(statement, index)
            case .integer(let i): code = sqlite3_bind_int64(statement, index, i)
            case .real(let d): code = sqlite3_bind_double(statement, index, d)
            case .text(let s): code = sqlite3_bind_text(statement, index, s, -1, Self.transient)
            }
            guard code == SQLITE_OK else { throw TrialError.sqlite(path: path, function: "sqlite3_bind", message: lastError) }
        }
    }
}

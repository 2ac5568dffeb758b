import Foundation
import Testing
@testable import Tabular

@Suite("TSV tables")
struct TSVTableTests {
    @Test("LF and CRLF line ends give the same table; trailing blank lines are ignored")
    func lineEnds() throws {
        let lf = "participant_id\tsession\tedss\nsub-01\tbaseline\t6.5\nsub-01\tm01\tn/a\n\n  \n"
        let crlf = lf.replacingOccurrences(of: "\n", with: "\r\n")
        let a = try TSVTable(text: lf, source: "lf.tsv")
        let b = try TSVTable(text: crlf, source: "crlf.tsv")
        #expect(a.columns == ["participant_id", "session", "edss"])
        #expect(a.rows == [["sub-01", "baseline", "6.5"], ["sub-01", "m01", "n/a"]])
        #expect(b.columns == a.columns && b.rows == a.rows)
        // No line end after the last row.
        let c = try TSVTable(text: "x\ty\n1\t2", source: "c.tsv")
        #expect(c.rows == [["1", "2"]])
    }

    @Test("cells are trimmed of spaces, also Unicode ones, and keep inner spaces and empty cells")
    func trimming() throws {
        let text = "  a \t\u{00A0}b\u{3000}\tc\n 1 2 \t\t\u{00A0}\u{00A0}\n"
        let table = try TSVTable(text: text, source: "t.tsv")
        #expect(table.columns == ["a", "b", "c"])
        #expect(table.rows == [["1 2", "", ""]])
        // Non-ASCII text inside cells is kept as it is.
        let names = try TSVTable(text: "name\nZürich\n\u{00A0}Ærø \n", source: "n.tsv")
        #expect(names.rows == [["Zürich"], ["Ærø"]])
    }

    @Test("errors name the file and the problem")
    func errors() {
        let cases: [(String, String)] = [
            ("", "empty table"), ("\n\n", "empty table"), ("\t\n1\t2\n", "empty table"),
            ("a\ta\n1\t2\n", "duplicate column 'a'"),
            ("a\tb\n1\t2\n3\n", "line 3 has 1 fields, the header has 2"),
            ("a\tb\r\n1\t2\t3\r\n", "line 2 has 3 fields, the header has 2"),
        ]
        for (text, message) in cases {
            do {
                _ = try TSVTable(text: text, source: "bad.tsv")
                Issue.record("no error for \(text.debugDescription)")
            } catch {
                #expect("\(error)".contains("bad.tsv") && "\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test("random tables: the same cells as a line-by-line reference parser")
    func randomTables() throws {
        var state: UInt64 = 7
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let pieces = ["1.5", "n/a", "sub-01", " x", "y ", "Zürich", "", "a b", "-0", "é"]
        for _ in 0..<200 {
            let columnCount = 1 + next(5)
            let header = (0..<columnCount).map { "c\($0)" }
            let rows = (0..<next(6)).map { _ in (0..<columnCount).map { _ in pieces[next(pieces.count)] } }
            let lineEnd = next(2) == 0 ? "\n" : "\r\n"
            let text = ([header] + rows).map { $0.joined(separator: "\t") }.joined(separator: lineEnd) + lineEnd
            let table = try TSVTable(text: text, source: "r.tsv")
            // Reference: split the text into lines and cells with Foundation, trim each cell.
            let lines = text.components(separatedBy: lineEnd).dropLast()
            var cells = lines.map { $0.components(separatedBy: "\t").map { $0.trimmingCharacters(in: .whitespaces) } }
            // Trailing blank rows (all cells empty) are blank lines, and are dropped.
            while cells.count > 1, let last = cells.last, last.allSatisfy(\.isEmpty) { cells.removeLast() }
            #expect(table.columns == cells.first)
            #expect(table.rows == Array(cells.dropFirst()), "\(text.debugDescription)")
        }
    }
}

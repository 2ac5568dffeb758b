// libFuzzer target: the text parsers. The first byte picks the parser, the rest is the text:
//   0: TSVTable(text:source:) and every numeric column,
//   1: GradientTable.fsl(bval:bvec:source:) with the text split at the first NUL byte,
//   2: GradientTable.mrtrix(_:source:).
// A thrown TableError or GradientTableError is a correct outcome. An accepted gradient table
// must satisfy what the tensor fit relies on: finite, non-negative b-values, unit directions
// on weighted rows, at least one weighted row.
import Diffusion
import Foundation
import FuzzDriver
import Tabular

private func checkInvariants(_ table: GradientTable) {
    precondition(table.bValues.count == table.directions.count, "b-values and directions differ in count")
    precondition(!table.diffusionIndices.isEmpty, "a table without weighted volumes was accepted")
    for (b, g) in zip(table.bValues, table.directions) {
        precondition(b.isFinite && b >= 0, "an accepted b-value is \(b)")
        let norm = (g * g).sum().squareRoot()
        if b > table.b0Threshold {
            precondition(abs(norm - 1) < 1e-9, "a weighted row's direction has norm \(norm)")
        } else {
            precondition(norm == 0 || abs(norm - 1) < 1e-9, "a b=0 row's direction has norm \(norm)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0] % 3
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    switch selector {
    case 0:
        let text = String(decoding: body, as: UTF8.self)
        if let table = try? TSVTable(text: text, source: "fuzz.tsv") {
            precondition(table.rows.allSatisfy { $0.count == table.columns.count }, "a ragged table was accepted")
            for name in table.columns { _ = try? table.numericColumn(name) }
            _ = table.text
        }
    case 1:
        let split = body.firstIndex(of: 0) ?? body.count
        let bval = String(decoding: UnsafeBufferPointer(rebasing: body[..<split]), as: UTF8.self)
        let rest = split < body.count ? UnsafeBufferPointer(rebasing: body[(split + 1)...]) : UnsafeBufferPointer(start: nil, count: 0)
        let bvec = String(decoding: rest, as: UTF8.self)
        if let table = try? GradientTable.fsl(bval: bval, bvec: bvec, source: "fuzz.bvec") {
            checkInvariants(table)
        }
    default:
        let text = String(decoding: body, as: UTF8.self)
        if let table = try? GradientTable.mrtrix(text, source: "fuzz.b") {
            checkInvariants(table)
        }
    }
    return 0
}

exit(nimetrics_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    fuzz(data!, size)
})

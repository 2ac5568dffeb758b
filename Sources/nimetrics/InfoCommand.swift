import ArgumentParser
import Foundation
import NIfTI
import Tabular

/// `nimetrics info`: what a NIfTI file holds, as text or JSON.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the header of NIfTI files: shape, voxel size, datatype, TR, axes, affine, scaling.",
        discussion: """
            The affine is the one nibabel uses: the sform when sform_code > 0, else the qform \
            when qform_code > 0, else the voxel-size affine. TR is in seconds. With --json, \
            one JSON object per file (an array for several files) with the keys path, \
            nifti_version, shape, voxel_size, datatype, affine, axcodes, tr, scl_slope, scl_inter.
            """
    )

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Argument(help: "NIfTI files (.nii, .nii.gz, .hdr).")
    var files: [String]

    func run() throws {
        var objects: [JSONValue] = []
        var failed = false
        for path in files {
            do {
                let header = try NIfTIFile.readHeader(path)
                if json {
                    objects.append(Self.jsonObject(path: path, header: header))
                } else {
                    print(Self.text(path: path, header: header))
                }
            } catch {
                printFailure(error)
                failed = true
            }
        }
        if json && !objects.isEmpty {
            print(objects.count == 1 && files.count == 1 ? objects[0].rendered() : JSONValue.array(objects).rendered())
        }
        if failed { throw ExitCode(1) }
    }

    static func jsonObject(path: String, header: NIfTIHeader) -> JSONValue {
        .object([
            ("path", .string(path)),
            ("nifti_version", .int(header.niftiVersion)),
            ("shape", .array(header.shape.map { .int($0) })),
            ("voxel_size", .array(header.voxelSize.map { .number($0) })),
            ("datatype", .string(header.datatype.description)),
            ("affine", .array(header.affine.rows.map { row in .array(row.map { .number($0) }) })),
            ("axcodes", .string(header.axisCodes)),
            ("tr", .finite(header.repetitionTime)),
            ("scl_slope", .finite(header.sclSlope)),
            ("scl_inter", .finite(header.sclInter)),
        ])
    }

    static func text(path: String, header: NIfTIHeader) -> String {
        func number(_ v: Double) -> String { formatJSONNumber(v) }
        let affineLines = header.affine.rows.map { row in
            "                 " + row.map { String(format: "%11.5f", $0) }.joined(separator: " ")
        }
        let transform = header.sformCode > 0 ? "sform (code \(header.sformCode))"
            : header.qformCode > 0 ? "qform (code \(header.qformCode))" : "voxel sizes (no sform or qform)"
        return """
            \(path)
              nifti_version  \(header.niftiVersion)
              shape          \(header.shape.map(String.init).joined(separator: " x "))
              voxel_size     \(header.voxelSize.map(number).joined(separator: " x "))
              datatype       \(header.datatype)
              tr             \(header.repetitionTime.map { number($0) + " s" } ?? "n/a")
              axcodes        \(header.axisCodes)
              scl_slope      \(number(header.sclSlope))
              scl_inter      \(number(header.sclInter))
              affine         from \(transform)
            \(affineLines.joined(separator: "\n"))
            """
    }
}

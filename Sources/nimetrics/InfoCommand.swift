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
            nifti_version, shape, voxel_size, datatype, affine, axcodes, tr, scl_slope, \
            scl_inter, complete and problem.

            complete says whether the voxel data the header promises is all there: for .nii \
            from the file size (always); for .nii.gz only with --check, which inflates the \
            whole stream and verifies each gzip member's CRC (null without it). An incomplete \
            file is reported on stderr, one line naming it and the problem; with --check the \
            exit status is then 1, so a visit folder can be checked before a batch.
            """
    )

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Flag(name: .long, help: "Inflate .nii.gz files whole and verify their CRC; exit 1 if any file is incomplete or corrupt.")
    var check = false

    @Argument(help: "NIfTI files (.nii, .nii.gz, .hdr).")
    var files: [String]

    func run() throws {
        var objects: [JSONValue] = []
        var failed = false
        for path in files {
            do {
                let header = try NIfTIFile.readHeader(path)
                let data = NIfTIFile.checkData(path, header: header, inflate: check)
                if case .incomplete(let problem) = data {
                    if check {
                        printFailure(NIfTIError(path: path, kind: .truncated, reason: problem))
                        failed = true
                    } else {
                        printWarning("\(path): \(problem)")
                    }
                }
                if json {
                    objects.append(Self.jsonObject(path: path, header: header, data: data))
                } else {
                    print(Self.text(path: path, header: header, data: data))
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

    static func jsonObject(path: String, header: NIfTIHeader, data: DataCompleteness) -> JSONValue {
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
            ("complete", data.isComplete.map { .bool($0) } ?? .null),
            ("problem", { if case .incomplete(let problem) = data { .string(problem) } else { .null } }()),
        ])
    }

    static func text(path: String, header: NIfTIHeader, data: DataCompleteness) -> String {
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
              data           \(dataText(data))
              affine         from \(transform)
            \(affineLines.joined(separator: "\n"))
            """
    }

    static func dataText(_ data: DataCompleteness) -> String {
        switch data {
        case .complete: "complete"
        case .incomplete(let problem): "INCOMPLETE: \(problem)"
        case .unchecked: "not checked (compressed: --check inflates it)"
        }
    }
}

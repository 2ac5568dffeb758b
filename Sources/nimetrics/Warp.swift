import ArgumentParser
import FileSystem
import Foundation
import Pipelines

/// `nimetrics warp`: an atlas resampled onto a reference grid through ITK/ANTs transforms.
struct WarpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warp",
        abstract: "Warp a label atlas onto a reference image's grid through ITK/ANTs transforms (nearest neighbour).",
        discussion: """
            Each voxel of the reference grid is mapped through the transforms to the atlas and \
            takes the label of the nearest atlas voxel (0 outside the atlas), as \
            antsApplyTransforms -n NearestNeighbor does; labels are never blended. The transforms \
            are listed as antsApplyTransforms' -t: the LAST one given is applied FIRST to the \
            reference's points, so a template atlas goes into T1w space with the \
            from-<template>_to-T1w transform, and into BOLD space with the BOLD-to-T1w affine \
            followed by it (--transform T1w-to-template... in ANTs' own order). A composite \
            .h5 holds its transforms in that same order.

            Files: ITK HDF5 (.h5: affine, displacement field and composite transforms, as \
            fMRIPrep, QSIPrep and ANTs write them), ITK text (.txt, .tfm), ANTs affine .mat, and \
            displacement fields as NIfTI (ANTs *Warp.nii.gz, 5-D with 3 components). ITK works \
            in LPS millimetres, NIfTI in RAS; the conversion is made once, for every file.

            An affine transform is inverted with ANTs' syntax --transform '[FILE,1]' or with \
            --invert N (the N-th --transform, from 1); a displacement field cannot be inverted \
            (give the inverse warp file). The atlas's label table (the .tsv beside it, or \
            --atlas-table) is copied beside the output.
            """
    )

    @Option(help: "The label atlas (NIfTI, integer labels).")
    var atlas: String

    @Option(help: "The atlas's label table (default: the .tsv beside the atlas, if any).")
    var atlasTable: String?

    @Option(help: "The image whose grid the output takes.")
    var reference: String

    @Option(name: .customLong("transform"), help: "A transform file, or '[FILE,1]' for its inverse; repeat in antsApplyTransforms' -t order.")
    var transforms: [String] = []

    @Option(help: "Invert the N-th --transform (counted from 1); repeatable. Affine files only.")
    var invert: [Int] = []

    @Option(help: "The output label image (.nii or .nii.gz).")
    var out: String

    @Option(parsing: .unconditional, help: "Threads (default: all cores). Results do not depend on it.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        try OptionCheck.atLeast(1, threads, "--threads")
        guard !transforms.isEmpty else { throw ValidationError("give at least one --transform (the identity is not assumed)") }
        for n in invert where !(1...transforms.count).contains(n) {
            throw ValidationError("--invert \(n): there are \(transforms.count) --transform files, counted from 1")
        }
        guard out.hasSuffix(".nii") || out.hasSuffix(".nii.gz") else { throw ValidationError("--out must end in .nii or .nii.gz") }
    }

    /// The transform list: `FILE` or ANTs' `[FILE,0|1]`, inverted also when named by --invert.
    static func references(_ arguments: [String], invert: [Int]) throws -> [TransformReference] {
        try arguments.enumerated().map { n, argument in
            var reference = TransformReference(path: argument, invert: invert.contains(n + 1))
            if argument.hasPrefix("["), argument.hasSuffix("]"), let comma = argument.lastIndex(of: ",") {
                let flag = argument[argument.index(after: comma)..<argument.index(before: argument.endIndex)].trimmingCharacters(in: .whitespaces)
                guard flag == "0" || flag == "1" else { throw ValidationError("--transform \(argument): the flag after the comma must be 0 or 1") }
                reference.path = String(argument[argument.index(after: argument.startIndex)..<comma])
                reference.invert = reference.invert || flag == "1"
            }
            return reference
        }
    }

    func run() throws {
        try runReportingFailure {
            let references = try Self.references(transforms, invert: invert)
            try FileSystem.checkFolderCanBeCreated(URL(fileURLWithPath: out).deletingLastPathComponent().path)
            try FileSystem.createFolder(URL(fileURLWithPath: out).deletingLastPathComponent().path)
            let start = Date()
            let result = try AtlasWarp.warp(atlas: atlas, tablePath: atlasTable, reference: reference,
                                            transforms: references, to: out, threads: threads)
            let seconds = Date().timeIntervalSince(start)
            print("Wrote \(result.imagePath) (\(result.labelledVoxels) labelled voxels) in \(String(format: "%.2f", seconds)) s")
            if let table = result.tablePath { print("Wrote \(table)") }
        }
    }
}

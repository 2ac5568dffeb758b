import Foundation
import Pipelines

/// Atlases given in a template space, taken into each visit's space with the transform the
/// derivatives hold (fMRIPrep's and QSIPrep's `anat/*_from-<template>_to-<space>_mode-image_xfm.h5`).
///
/// An image's space is its file name's `space-` entity (QSIPrep's `space-T1w` or `space-ACPC`
/// DWI, fMRIPrep's `space-T1w` or `space-MNI152NLin2009cAsym` BOLD). An atlas in that same
/// space (or in no named space) is used as it is; one in another space is warped with the
/// `from-<atlas space>_to-<image space>` transform of the participant (session folder first,
/// then participant folder, the image's own derivative dataset preferred), once per
/// participant, space and modality, into
/// `OUTPUT/sub-<p>/anat/sub-<p>_space-<space>_seg-<atlas>_desc-<modality>_dseg.nii.gz`
/// (+ `.tsv`, `.json` recording the atlas, the transform and their SHA-256).
enum TemplateAtlases {
    /// The transform that takes `atlas` into the space of `image`, or nil when the atlas is
    /// already there (or names no space).
    /// - Throws: ``PipelineError`` when the image names no space, or naming the transform file
    ///   looked for when the derivatives hold none.
    static func transform(for atlas: AtlasFile, image: String, visit: VisitInput) throws -> String? {
        guard let atlasSpace = atlas.templateSpace else { return nil }
        let name = URL(fileURLWithPath: image).lastPathComponent
        guard let imageSpace = AtlasFile.spaceInName(name) else {
            throw PipelineError(image, "the atlas \(atlas.path) is in space \(atlasSpace) but this image's name has no space- entity, so no transform can be chosen (give an atlas on the image's grid, or --atlas-space)")
        }
        guard imageSpace != atlasSpace else { return nil }
        let wanted = { (path: String) -> Bool in
            let entities = URL(fileURLWithPath: path).lastPathComponent.split(separator: "_")
            return entities.contains { $0 == "from-" + atlasSpace } && entities.contains { $0 == "to-" + imageSpace }
        }
        let candidates = visit.transforms.filter(wanted)
        let participantFolder = Self.participantFolder(of: image, participant: visit.participant)
        let derivative = participantFolder.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/" }
        if let own = candidates.first(where: { path in derivative.map { path.hasPrefix($0) } ?? false }) { return own }
        if let first = candidates.first { return first }
        let expected = (participantFolder ?? URL(fileURLWithPath: image).deletingLastPathComponent().path)
            + "/anat/sub-\(visit.participant)_from-\(atlasSpace)_to-\(imageSpace)_mode-image_xfm.h5"
        throw PipelineError(expected, "no such transform: the atlas \(URL(fileURLWithPath: atlas.path).lastPathComponent) is in space \(atlasSpace) and the image \(name) in space \(imageSpace) (looked in the participant's and the session's anat/ of every derivative dataset)")
    }

    /// `…/sub-<p>` in the image's path, or nil.
    static func participantFolder(of image: String, participant: String) -> String? {
        guard let range = image.range(of: "/sub-\(participant)/", options: .backwards) else { return nil }
        return String(image[..<range.lowerBound]) + "/sub-\(participant)"
    }

    /// The atlas in the space of `image`: itself, or its warp (made once and reused; see the
    /// type's discussion). `warped` keeps this visit's warps by output path.
    static func inSpace(of image: String, _ atlas: AtlasFile, modality: String, visit: VisitInput, outputFolder: String,
                        threads: Int, warped: inout [String: AtlasFile]) throws -> AtlasFile {
        guard let transform = try transform(for: atlas, image: image, visit: visit) else { return atlas }
        let space = AtlasFile.spaceInName(URL(fileURLWithPath: image).lastPathComponent) ?? "native"
        var participantOut = outputFolder
        if let session = visit.session, participantOut.hasSuffix("/ses-" + session) {
            participantOut = String(participantOut.dropLast(("/ses-" + session).count))
        }
        let out = participantOut + "/anat/sub-\(visit.participant)_space-\(space)_seg-\(atlas.name)_desc-\(modality)_dseg.nii.gz"
        if let done = warped[out] { return done }
        var checksums = [("atlas", try SHA256.hex(ofFile: atlas.path)), ("transform", try SHA256.hex(ofFile: transform))]
        if let table = LabelImage.tablePath(for: atlas.path, explicit: atlas.tablePath) {
            checksums.append(("atlas_table", try SHA256.hex(ofFile: table)))
        }
        let result = try AtlasWarp.cachedWarp(atlas: atlas, reference: image, transform: TransformReference(path: transform),
                                              checksums: checksums.map { (role: $0.0, sha256: $0.1) }, to: out, threads: threads)
        warped[out] = result
        return result
    }
}

import Foundation

/// BIDS-derivative file naming for one visit's outputs.
public enum OutputNaming {
    /// The entities of a BIDS file name before its suffix: `sub-01_ses-m03_dwi.nii.gz` ->
    /// `sub-01_ses-m03`; `sub-01_task-rest_space-X_desc-preproc_bold.nii.gz` ->
    /// `sub-01_task-rest_space-X`. Names that are not BIDS-like lose only their extension.
    public static func prefix(fromInput path: String) -> String {
        var name = URL(fileURLWithPath: path).lastPathComponent
        for ext in [".nii.gz", ".nii", ".hdr.gz", ".hdr", ".img"] where name.hasSuffix(ext) {
            name = String(name.dropLast(ext.count))
            break
        }
        var parts = name.split(separator: "_").map(String.init)
        guard parts.first?.hasPrefix("sub-") == true else { return name }
        if let last = parts.last, !last.contains("-") { parts.removeLast() }  // the suffix (dwi, bold)
        parts.removeAll { $0.hasPrefix("desc-") }
        return parts.joined(separator: "_")
    }

    /// The brain mask fMRIPrep and QSIPrep write beside a preprocessed image:
    /// `..._desc-preproc_bold.nii.gz` -> `..._desc-brain_mask.nii.gz`.
    public static func brainMaskPath(forImage path: String) -> String {
        let url = URL(fileURLWithPath: path)
        var name = url.lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)); break }
        var parts = name.split(separator: "_").map(String.init)
        if let last = parts.last, !last.contains("-") { parts.removeLast() }
        parts.removeAll { $0.hasPrefix("desc-") }
        let folder = url.deletingLastPathComponent().path
        return folder + "/" + (parts + ["desc-brain", "mask"]).joined(separator: "_") + ".nii.gz"
    }

    /// The name of an atlas for the `seg-` entity of outputs: the `atlas-` (or `seg-`)
    /// entity of its file name (`tpl-MNI152NLin2009cAsym_atlas-Schaefer100_dseg.nii.gz` ->
    /// `Schaefer100`), else its file name's letters and digits.
    public static func atlasName(_ path: String) -> String {
        var name = URL(fileURLWithPath: path).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)); break }
        let parts = name.split(separator: "_").map(String.init)
        for key in ["atlas-", "seg-"] {
            if let part = parts.first(where: { $0.hasPrefix(key) }), part.count > key.count { return String(part.dropFirst(key.count)) }
        }
        let plain = String(name.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII }.map(Character.init))
        return plain.isEmpty ? "atlas" : plain
    }

    /// The `seg-` names of several atlases of one scan (``atlasName(_:)``), in order.
    ///
    /// Each atlas's outputs are named by it, so two atlases with one name would write the same
    /// files: that is refused.
    /// - Throws: ``PipelineError`` naming both files when two atlases give the same name.
    public static func atlasNames(_ paths: [String]) throws -> [String] {
        var first: [String: String] = [:]
        return try paths.map { path in
            let name = atlasName(path)
            if let earlier = first[name] {
                throw PipelineError(path, "gives the same output name seg-\(name) as the atlas \(earlier): "
                                    + "the atlases of one scan need distinct names (their atlas- or seg- entity, else their file names)")
            }
            first[name] = path
            return name
        }
    }

    /// The file a sidecar sits in: `x.nii.gz` -> `x.json`.
    public static func sidecarPath(forImage path: String) -> String {
        for ext in [".nii.gz", ".nii"] where path.hasSuffix(ext) {
            return String(path.dropLast(ext.count)) + ".json"
        }
        return path + ".json"
    }
}

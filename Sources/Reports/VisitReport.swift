import AtomicFiles
import Foundation
import NIfTI
import Synchronization
import Tabular

/// The report of one visit, `sub-XX_ses-YY_report.html` in the visit's output folder, built
/// from what the pipelines wrote there (maps, tables, sidecars, visit records) and nothing
/// else: it computes no metric, so it cannot disagree with the tables.
public enum VisitReport {
    /// The report's file name for a visit folder's prefix (`sub-01_ses-m03`).
    public static func fileName(prefix: String) -> String { prefix + "_report.html" }

    /// Writes the report of the visit in `folder` (`OUTPUT/sub-XX[/ses-YY]`), whose files
    /// start with `prefix`; returns its path.
    @discardableResult
    public static func write(folder: String, prefix: String, generator: String) throws -> String {
        let html = try render(folder: folder, prefix: prefix, generator: generator)
        let path = folder + "/" + fileName(prefix: prefix)
        try AtomicFile.write(html, to: path)
        return path
    }

    public static func render(folder: String, prefix: String, generator: String) throws -> String {
        var page = HTMLPage(title: "nimetrics visit report: \(prefix.replacingOccurrences(of: "_", with: " "))")
        let records = try ["dwi", "func"].compactMap { modality -> (String, JSONValue)? in
            let path = folder + "/\(prefix)_desc-\(modality)_visit.json"
            return FileManager.default.fileExists(atPath: path) ? (modality, try ReportInputs.json(path)) : nil
        }
        page.add("<nav><a href=\"#dwi\">Diffusion</a><a href=\"#func\">Resting-state fMRI</a><a href=\"#about\">Warnings, parameters, inputs</a></nav>")
        page.add(statusTable(records))
        // The two sections are built at once (each reads its maps and encodes its figures),
        // then placed in a fixed order: the bytes do not depend on which finishes first.
        let dwiRecord = records.first { $0.0 == "dwi" }?.1, funcRecord = records.first { $0.0 == "func" }?.1
        let sections = SectionResults()
        DispatchQueue.concurrentPerform(iterations: 2) { k in
            var section = HTMLPage(title: "")
            do {
                if k == 0 {
                    section.heading("Diffusion (DTI)", id: "dwi")
                    try DiffusionSection.add(to: &section, folder: folder + "/dwi", record: dwiRecord)
                } else {
                    section.heading("Resting-state fMRI", id: "func")
                    try FunctionalSection.add(to: &section, folder: folder + "/func", record: funcRecord)
                }
                sections.set(k, .success(section.body))
            } catch {
                sections.set(k, .failure(error))
            }
        }
        for k in 0..<2 { page.body += try sections.get(k) }
        page.heading("Warnings, parameters and inputs", id: "about")
        for (modality, record) in records { addRecordDetails(&page, modality: modality, record: record) }
        return page.rendered(generator: generator)
    }

    static func statusTable(_ records: [(String, JSONValue)]) -> String {
        let rows = records.map { modality, record in
            [modality, record["status"]?.displayText ?? "n/a", record["error"]?.displayText ?? "n/a",
             record["nimetrics_version"]?.displayText ?? "n/a", String(record["warnings"]?.arrayValue.count ?? 0)]
        }
        let classes: [String?] = records.map { $0.1["status"]?.stringValue == "ok" ? nil : "failed" }
        // No time stamps or durations: the same outputs give the same bytes.
        return HTMLPage.table(header: ["modality", "status", "error", "nimetrics version", "warnings"],
                              rows: rows, classes: classes, caption: "Processing of this visit")
    }

    /// Warnings shown open; parameters and input checksums folded away.
    static func addRecordDetails(_ page: inout HTMLPage, modality: String, record: JSONValue) {
        let warnings = record["warnings"]?.arrayValue.compactMap(\.stringValue) ?? []
        page.heading(modality == "dwi" ? "Diffusion" : "fMRI", level: 3)
        if warnings.isEmpty { page.paragraph("No warnings.", cssClass: "ok") }
        for warning in warnings { page.paragraph("Warning: " + warning, cssClass: "warning") }
        if let error = record["error"]?.stringValue { page.paragraph("Error: " + error, cssClass: "error") }
        page.add(HTMLPage.folded("Parameters", HTMLPage.preformatted(record["parameters"]?.rendered() ?? "n/a")))
        let inputs = record["inputs"]?.arrayValue.map { [$0["role"]?.displayText ?? "", $0["path"]?.displayText ?? "", $0["sha256"]?.displayText ?? ""] } ?? []
        page.add(HTMLPage.folded("Inputs and their SHA-256 (\(inputs.count))", HTMLPage.table(header: ["role", "path", "sha256"], rows: inputs)))
        let outputs = record["outputs"]?.arrayValue.map { [$0.displayText] } ?? []
        page.add(HTMLPage.folded("Outputs (\(outputs.count))", HTMLPage.table(header: ["file"], rows: outputs)))
    }

    /// The mosaic of a layer set as an `<img>`, with its alternative text.
    static func mosaic(_ layers: MosaicLayers, alt: String) -> String {
        HTMLPage.image(png: PNG.encode(Mosaic.render(layers)), alt: alt)
    }
}

/// The DWI part of a visit report.
enum DiffusionSection {
    static func add(to page: inout HTMLPage, folder: String, record: JSONValue?) throws {
        guard let sidecarName = ReportInputs.files(in: folder).first(where: { $0.hasSuffix("_model-tensor_dwimap.json") }) else {
            page.paragraph(record == nil ? "No diffusion data for this visit." : "No tensor maps (see the status above).", cssClass: "muted")
            return
        }
        let base = folder + "/" + String(sidecarName.dropLast("_model-tensor_dwimap.json".count))
        let sidecar = try ReportInputs.json(folder + "/" + sidecarName)
        try addOrientation(&page, sidecar: sidecar)
        try addMosaics(&page, base: base, sidecar: sidecar)
        addQC(&page, sidecar: sidecar)
        addSummary(&page, folder: folder)
    }

    static func addOrientation(_ page: inout HTMLPage, sidecar: JSONValue) throws {
        guard let check = sidecar["QC"]?["GradientOrientationCheck"], check != .null else {
            page.paragraph("Gradient orientation check: not run.", cssClass: "muted")
            return
        }
        let best = check["Best"]?.displayText ?? "n/a"
        if check["FlipRecommended"]?.boolValue == true {
            page.paragraph("Gradient orientation check: WARNING, the table with the \(best) axis flipped fits the fibres clearly better than the table as given: check the .bvec (Jeurissen et al. 2014).",
                           cssClass: "warning")
        } else {
            page.paragraph("Gradient orientation check: passed (no flipped table is clearly better than the table as given; best: \(best)).", cssClass: "ok")
        }
        let coherence = check["Coherence"]?.objectMembers.map { [$0.0 == "none" ? "as given" : "\($0.0) flipped", $0.1.displayText] } ?? []
        page.add(HTMLPage.table(header: ["table", "fibre coherence (unitless)"], rows: coherence,
                                caption: "Coherence of V1 along the fibres; margin \(check["Margin"]?.displayText ?? "n/a")"))
    }

    static func addMosaics(_ page: inout HTMLPage, base: String, sidecar: JSONValue) throws {
        let maskPath = base + "_desc-brain_mask.nii.gz"
        guard FileManager.default.fileExists(atPath: maskPath) else { return }
        let maps = try DiffusionMaps(base: base)
        let (mask, s0, faImage) = (maps.mask!, maps.s0!, maps.fa!)
        var s0Layers = MosaicLayers(base: .grey(s0, low: 0, high: s0.percentile(0.99)))
        s0Layers.outlines = [(mask, [255, 60, 60])]
        s0Layers.extent = mask
        page.figure(VisitReport.mosaic(s0Layers, alt: "S0 with the brain mask outlined in red, axial, coronal and sagittal slices"),
                    caption: "S0 (the fitted b=0 signal, arbitrary units), brain mask outlined in red. Rows: axial, coronal, sagittal; subject's left on the left.")
        let fa = OrientedVolume.reoriented(faImage.voxels, header: faImage.header)
        var faLayers = MosaicLayers(base: .grey(fa, low: 0, high: 1))
        faLayers.extent = mask
        page.figure(VisitReport.mosaic(faLayers, alt: "Fractional anisotropy map"), caption: "Fractional anisotropy (0 black to 1 white, unitless).")
        if let v1 = maps.v1, let dec = decLayers(v1: v1, fa: faImage, sidecar: sidecar, mask: mask) {
            page.figure(VisitReport.mosaic(dec, alt: "Direction-encoded colour map"),
                        caption: "Direction-encoded colour: |V1| x FA as red (left-right), green (anterior-posterior), blue (inferior-superior).")
        }
        var atlasLayers = faLayers
        let atlases = sidecar["Atlas"].map { $0.arrayValue.isEmpty ? [$0] : $0.arrayValue } ?? []
        let grid = faImage.header.spatialShape
        for atlas in atlases {
            guard let path = ReportInputs.recordedFile(atlas), let header = try? NIfTIFile.readHeader(path),
                  header.spatialShape == grid else { continue }
            atlasLayers.outlines.append((try OrientedVolume.read(path), [255, 210, 0]))
        }
        if let lesion = ReportInputs.recordedFile(sidecar["LesionMask"]) {
            atlasLayers.outlines.append((try OrientedVolume.read(lesion), [255, 40, 40]))
        }
        if atlasLayers.outlines.isEmpty {
            page.paragraph("The atlas is not at its recorded path (\(atlases.map(\.displayText).joined(separator: ", "))) or not on the DWI grid: no outline.", cssClass: "muted")
        } else {
            page.figure(VisitReport.mosaic(atlasLayers, alt: "Atlas regions outlined on the FA map"),
                        caption: "Atlas regions outlined in yellow on FA" + (sidecar["LesionMask"]?.stringValue != nil ? ", lesion mask in red." : "."))
        }
    }

    /// |V1| x FA as RGB, each channel on the world axis it shows. V1 is in the voxel axes
    /// (FSL frame, signs aside) unless the sidecar says `world`.
    static func decLayers(v1: NIfTIImage<Float>, fa: NIfTIImage<Float>, sidecar: JSONValue, mask: OrientedVolume) -> MosaicLayers? {
        guard v1.header.volumeCount == 3, v1.header.voxelsPerVolume == fa.header.voxelsPerVolume else { return nil }
        let world = sidecar["VectorFrame"]?.stringValue == "world"
        let order = OrientedVolume.axisOrder(fa.header).voxelOf
        let n = fa.header.voxelsPerVolume
        let channels = (0..<3).map { w -> OrientedVolume in
            let component = world ? w : order[w]
            var values = [Float](repeating: 0, count: n)
            v1.voxels.withUnsafeBufferPointer { vector in
                fa.voxels.withUnsafeBufferPointer { anisotropy in
                    for i in 0..<n where anisotropy[i] > 0 {
                        values[i] = min(1, abs(vector[component * n + i]) * min(1, anisotropy[i]))
                    }
                }
            }
            return OrientedVolume.reoriented(values, header: fa.header)
        }
        var layers = MosaicLayers(base: .rgb(channels[0], channels[1], channels[2]))
        layers.extent = mask
        return layers
    }

    /// The maps the section shows, read at once (each is an inflate of its own, the larger
    /// part of the section's time): the mask and S0 as shown, FA and V1 as stored; V1 nil
    /// when there is none.
    final class DiffusionMaps: @unchecked Sendable {
        // Each is written by one iteration of the read below, then only read.
        var mask: OrientedVolume?, s0: OrientedVolume?, fa: NIfTIImage<Float>?, v1: NIfTIImage<Float>?

        init(base: String) throws {
            let v1Path = base + "_model-tensor_param-v1_dwimap.nii.gz"
            let errors = Mutex<[(Int, any Error)]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { k in
                do {
                    switch k {
                    case 0: mask = try OrientedVolume.read(base + "_desc-brain_mask.nii.gz")
                    case 1: s0 = try OrientedVolume.read(base + "_model-tensor_param-s0_dwimap.nii.gz")
                    case 2: fa = try NIfTIFile.read(base + "_model-tensor_param-fa_dwimap.nii.gz", as: Float.self)
                    default: if FileManager.default.fileExists(atPath: v1Path) { v1 = try NIfTIFile.read(v1Path, as: Float.self) }
                    }
                } catch {
                    errors.withLock { $0.append((k, error)) }
                }
            }
            // The first failing map in the order above, whichever thread met it first.
            if let first = errors.withLock({ $0.min { $0.0 < $1.0 } }) { throw first.1 }
        }
    }

    static func addQC(_ page: inout HTMLPage, sidecar: JSONValue) {
        let qc = sidecar["QC"]
        let rows: [[String]] = [
            ["voxels in the mask", qc?["VoxelsInMask"]?.displayText ?? "n/a"],
            ["voxels fitted", qc?["VoxelsFitted"]?.displayText ?? "n/a"],
            ["negative-eigenvalue fraction", qc?["NegativeEigenvalueFraction"]?.displayText ?? "n/a"],
            ["mean log-signal residual", qc?["MeanResidual"]?.displayText ?? "n/a"],
            ["fit method", sidecar["FitMethod"]?.displayText ?? "n/a"],
            ["mask", sidecar["Mask"]?.displayText ?? "n/a"],
            ["b-values used (s/mm²)", sidecar["BValuesUsed"]?.displayText ?? "n/a"],
            ["shells", sidecar["Shells"]?.displayText ?? "n/a"],
            ["b-values left out (s/mm²)", sidecar["BValuesLeftOut"]?.displayText ?? "n/a"],
            ["volumes used / left out", "\(sidecar["VolumesUsed"]?.displayText ?? "n/a") / \(sidecar["VolumesLeftOut"]?.displayText ?? "n/a")"],
            ["shell selection", sidecar["ShellSelection"]?.displayText ?? "n/a"],
        ]
        page.add(HTMLPage.table(header: ["fit quality and acquisition", "value"], rows: rows, caption: "Tensor fit QC"))
        for warning in sidecar["Warnings"]?.arrayValue.compactMap(\.stringValue) ?? [] {
            page.paragraph("Warning: " + warning, cssClass: "warning")
        }
    }

    /// FA and MD means per region, as the summary table has them.
    static func addSummary(_ page: inout HTMLPage, folder: String) {
        for name in ReportInputs.files(in: folder) where name.hasSuffix("_model-tensor_summary.tsv") {
            guard let table = ReportInputs.table(folder + "/" + name), let region = table.index(of: "region"),
                  let metric = table.index(of: "metric"), let mean = table.index(of: "mean"), let count = table.index(of: "n_voxels") else { continue }
            var order: [String] = [], values: [String: [String: String]] = [:], voxels: [String: String] = [:]
            for row in table.rows {
                if values[row[region]] == nil { order.append(row[region]) }
                values[row[region], default: [:]][row[metric]] = row[mean]
                voxels[row[region]] = row[count]
            }
            let rows = order.map { [$0, voxels[$0] ?? "n/a", values[$0]?["fa"] ?? "n/a", values[$0]?["md"] ?? "n/a"] }
            page.add(HTMLPage.folded("Regional means: \(name)", HTMLPage.table(header: ["region", "voxels", "FA mean", "MD mean (mm²/s)"], rows: rows)))
        }
    }
}

/// The sections of a report built on two threads, each stored by its position.
final class SectionResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: Result<[String], any Error>] = [:]

    func set(_ k: Int, _ result: Result<[String], any Error>) {
        lock.lock()
        results[k] = result
        lock.unlock()
    }

    func get(_ k: Int) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return try results[k]!.get()
    }
}

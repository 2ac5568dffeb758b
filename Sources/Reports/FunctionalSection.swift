import Foundation
import NIfTI
import Tabular

/// The fMRI part of a visit report: one block per run (and atlas) written in `func/`.
enum FunctionalSection {
    static func add(to page: inout HTMLPage, folder: String, record: JSONValue?) throws {
        let sidecars = ReportInputs.files(in: folder).filter { $0.hasSuffix("_desc-summary_connectivity.json") }
        if sidecars.isEmpty {
            page.paragraph(record == nil ? "No BOLD run for this visit." : "No connectivity outputs (see the status above).", cssClass: "muted")
            return
        }
        for name in sidecars {
            let prefix = String(name.dropLast("_desc-summary_connectivity.json".count))
            page.heading(prefix, level: 3)
            try addRun(&page, base: folder + "/" + prefix, sidecar: try ReportInputs.json(folder + "/" + name))
        }
    }

    static func addRun(_ page: inout HTMLPage, base: String, sidecar: JSONValue) throws {
        let qc = sidecar["QC"]
        addNumbers(&page, base: base, sidecar: sidecar)
        for warning in sidecar["Warnings"]?.arrayValue.compactMap(\.stringValue) ?? [] {
            page.paragraph("Warning: " + warning, cssClass: "warning")
        }
        if let carpet = carpetFigure(base: base, sidecar: sidecar) {
            page.figure(carpet, caption: "Carpet plot: \(qc?["VolumesCensored"]?.displayText ?? "n/a") volume(s) censored, \(sidecar["NonSteadyStateVolumes"]?.displayText ?? "n/a") dropped as non-steady-state; framewise displacement above, \(sidecar["FramewiseDisplacementThreshold"]?.doubleValue.map { "censoring threshold \(tickLabel($0)) mm" } ?? "no censoring threshold").")
        }
        let tsnrPath = base + "_stat-tsnr_boldmap.nii.gz"
        if FileManager.default.fileExists(atPath: tsnrPath) {
            let tsnr = try OrientedVolume.read(tsnrPath)
            var layers = MosaicLayers(base: .grey(tsnr, low: 0, high: tsnr.percentile(0.98)))
            layers.extent = tsnr
            page.figure(VisitReport.mosaic(layers, alt: "Voxelwise temporal SNR"),
                        caption: "tSNR (mean over time / standard deviation, unitless; black 0, white \(tickLabel(Double(tsnr.percentile(0.98)))) and above); whole-brain mean \(qc?["WholeBrainTSNR"]?.displayText ?? "n/a").")
        }
        try addAtlasMosaic(&page, base: base, sidecar: sidecar)
        if let heat = heatMapFigure(base: base) { page.figure(heat.svg, caption: heat.caption) }
    }

    static func addNumbers(_ page: inout HTMLPage, base: String, sidecar: JSONValue) {
        let qc = sidecar["QC"]
        var rows: [[String]] = [
            ["volumes input / kept / censored", "\(qc?["VolumesInput"]?.displayText ?? "n/a") / \(qc?["VolumesKept"]?.displayText ?? "n/a") / \(qc?["VolumesCensored"]?.displayText ?? "n/a")"],
            ["censored fraction", qc?["CensoredFraction"]?.displayText ?? "n/a"],
            ["non-steady-state volumes dropped", "\(sidecar["NonSteadyStateVolumes"]?.displayText ?? "n/a") (\(sidecar["NonSteadyStateSource"]?.displayText ?? ""))"],
            ["mean framewise displacement (mm)", qc?["MeanFramewiseDisplacement"]?.displayText ?? "n/a"],
            ["whole-brain tSNR", qc?["WholeBrainTSNR"]?.displayText ?? "n/a"],
            ["degrees of freedom left", qc?["DegreesOfFreedom"]?.displayText ?? "n/a"],
            ["confounds", "\(sidecar["ConfoundStrategy"]?.displayText ?? "n/a"): \(sidecar["ConfoundColumns"]?.displayText ?? "")"],
            ["band (Hz)", "\(sidecar["HighPass"]?.displayText ?? "n/a") - \(sidecar["LowPass"]?.displayText ?? "n/a")"],
            ["repetition time (s)", sidecar["RepetitionTime"]?.displayText ?? "n/a"],
            ["regions n/a", qc?["RegionsMissing"]?.displayText.nonEmpty ?? "none"],
        ]
        if let summary = ReportInputs.table(base + "_desc-summary_connectivity.tsv"),
           let metric = summary.index(of: "metric"), let network = summary.index(of: "network"), let value = summary.index(of: "value") {
            for row in summary.rows where row[network] == "all" { rows.append([row[metric] + " (whole brain)", row[value]]) }
            let networks = summary.rows.filter { $0[network] != "all" && $0[metric] == "conn_within_mean" }
            for row in networks { rows.append(["conn_within_mean, network \(row[network])", row[value]]) }
        }
        page.add(HTMLPage.table(header: ["summary", "value"], rows: rows, caption: "Run quality and connectivity summaries"))
    }

    /// The carpet plot from `P_desc-carpet_bold.tsv` and `P_desc-censoring_timeseries.tsv`.
    static func carpetFigure(base: String, sidecar: JSONValue) -> String? {
        guard let censoring = ReportInputs.table(base + "_desc-censoring_timeseries.tsv"),
              let fdColumn = try? censoring.column("framewise_displacement"),
              let dropped = try? censoring.column("non_steady_state"), let motion = try? censoring.column("censored_motion"),
              let bad = try? censoring.column("censored_nonfinite") else { return nil }
        let rows: [[Float]]
        var groups: [(name: String, count: Int)] = []
        if let carpet = ReportInputs.table(base + "_desc-carpet_bold.tsv"), let region = carpet.index(of: "region") {
            rows = carpet.rows.map { row in row.dropFirst(2).map { Float($0) ?? .nan } }
            for row in carpet.rows {
                if groups.last?.name == row[region] { groups[groups.count - 1].count += 1 } else { groups.append((row[region], 1)) }
            }
        } else { rows = [] }
        let tr = sidecar["RepetitionTime"]?.doubleValue ?? 1
        let censored = zip(motion, bad).map { $0 == "1" || $1 == "1" }
        return Charts.carpet(rows: rows, groups: groups, framewiseDisplacement: fdColumn.map(ReportInputs.number),
                             threshold: sidecar["FramewiseDisplacementThreshold"]?.doubleValue, dropped: dropped.map { $0 == "1" },
                             censored: censored, repetitionTime: tr,
                             title: "Carpet plot and framewise displacement",
                             summary: "Brain voxels by region over time (z-scored per voxel), framewise displacement in mm above; \(censored.filter { $0 }.count) censored and \(dropped.filter { $0 == "1" }.count) dropped volumes marked.")
    }

    /// The atlas outlined on the mean BOLD, regions reported n/a filled red.
    static func addAtlasMosaic(_ page: inout HTMLPage, base: String, sidecar: JSONValue) throws {
        let meanPath = base + "_stat-mean_boldmap.nii.gz"
        guard FileManager.default.fileExists(atPath: meanPath) else { return }
        let meanImage = try NIfTIFile.read(meanPath, as: Float.self)
        let mean = OrientedVolume.reoriented(meanImage.voxels, header: meanImage.header)
        var layers = MosaicLayers(base: .grey(mean, low: mean.percentile(0.02) * 0.9, high: mean.percentile(0.98)))
        layers.extent = mean
        let missing = Set(sidecar["QC"]?["RegionsMissing"]?.arrayValue.compactMap(\.stringValue) ?? [])
        var caption = "Mean BOLD (arbitrary units)"
        if let atlasPath = ReportInputs.recordedFile(sidecar["Atlas"]), let header = try? NIfTIFile.readHeader(atlasPath),
           header.spatialShape == meanImage.header.spatialShape {
            let atlas = try OrientedVolume.read(atlasPath)
            layers.outlines = [(atlas, [255, 210, 0])]
            caption += " with the atlas regions outlined in yellow"
            var missingIndexes = Set<Float>()
            if let regions = ReportInputs.table(base + "_desc-regions_bold.tsv"), let index = regions.index(of: "index"),
               let name = regions.index(of: "region") {
                for row in regions.rows where missing.contains(row[name]) { if let i = Float(row[index]) { missingIndexes.insert(i) } }
            }
            if !missingIndexes.isEmpty {
                let marked = OrientedVolume(nx: atlas.nx, ny: atlas.ny, nz: atlas.nz, values: atlas.values.map { missingIndexes.contains($0) ? 1 : 0 })
                layers.fills = [(marked, [230, 0, 0])]
            }
            caption += missing.isEmpty ? "; no region is n/a." : "; regions n/a filled red: \(missing.sorted().joined(separator: ", "))."
        } else {
            caption += "; the atlas is not at its recorded path or not on this grid, so it is not outlined."
        }
        page.figure(VisitReport.mosaic(layers, alt: "Mean BOLD with atlas outlines"), caption: caption)
    }

    /// The Pearson matrix ordered by network (the regions table's order within a network),
    /// the network blocks outlined.
    static func heatMapFigure(base: String) -> (svg: String, caption: String)? {
        guard let matrix = ReportInputs.table(base + "_stat-pearsoncorrelation_relmat.tsv"),
              let regions = ReportInputs.table(base + "_desc-regions_bold.tsv"),
              let nameColumn = regions.index(of: "region") else { return nil }
        let names = matrix.columns.dropFirst().map { $0 }
        let networkColumn = regions.index(of: "network")
        var networkOf: [String: String] = [:]
        for row in regions.rows { networkOf[row[nameColumn]] = networkColumn.map { row[$0] } ?? "n/a" }
        var networks: [String] = []
        for name in names { let n = networkOf[name] ?? "n/a"; if !networks.contains(n) { networks.append(n) } }
        if let unassigned = networks.firstIndex(of: "n/a") { networks.append(networks.remove(at: unassigned)) }
        let order = networks.flatMap { network in names.indices.filter { (networkOf[names[$0]] ?? "n/a") == network } }
        var blocks: [(name: String, range: Range<Int>)] = []
        var start = 0
        for network in networks {
            let count = names.filter { (networkOf[$0] ?? "n/a") == network }.count
            if network != "n/a" { blocks.append((network, start..<(start + count))) }
            start += count
        }
        let values = matrix.rows.map { row in row.dropFirst().map(ReportInputs.number) }
        guard values.count == names.count else { return nil }
        let ordered = order.map { i in order.map { j in values[i][j] } }
        let svg = Charts.heatMap(ordered, names: order.map { names[$0] }, blocks: blocks,
                                 title: "Connectivity matrix (Pearson r)",
                                 summary: "Pearson correlation between \(names.count) regions, ordered by network (\(blocks.map(\.name).joined(separator: ", "))); n/a cells hatched.")
        return (svg, "Pearson correlation between regions, ordered by network with the network blocks outlined; n/a hatched grey.")
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

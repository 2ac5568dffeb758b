import Foundation
import Reports
import Tabular
import Testing

/// The demo trial (4 participants) run once for every test of the suite, with one visit
/// given heavy motion: sub-02 ses-m03's framewise displacement set to 1.5 mm at volumes
/// 40-79, processed with `--fd-threshold 0.5`.
struct ReportedTrial: Sendable {
    let root: String
    var data: String { root + "/data" }
    var output: String { root + "/out" }
    let runStatus: Int32
    let runError: String
    static let motionVolumes = 40..<80

    static let shared = ReportedTrial()

    init() {
        root = makeTemporaryFolder()
        var status: Int32 = -1, error = ""
        do {
            let demo = try runTool(["demo", "--out", root + "/data", "--participants", "4"])
            guard demo.status == 0 else { throw ReportError("demo", demo.stderr) }
            let confounds = root + "/data/sub-02/ses-m03/func/sub-02_ses-m03_task-rest_desc-confounds_timeseries.tsv"
            var table = try TSVTable.read(confounds)
            let fd = table.index(of: "framewise_displacement")!
            for t in Self.motionVolumes { table.rows[t][fd] = "1.5" }
            try table.write(to: confounds)
            let run = try runTool(["run", root + "/data", root + "/out", "participant", "--group",
                                   "--atlas", root + "/data/atlas/atlas-demo_dseg.nii.gz", "--fd-threshold", "0.5", "--jobs", "2"])
            status = run.status
            error = run.stderr
        } catch let failure {
            error = "\(failure)"
        }
        runStatus = status
        runError = error
    }

    func visitReport(_ participant: String, _ session: String) -> String {
        output + "/sub-\(participant)/ses-\(session)/sub-\(participant)_ses-\(session)_report.html"
    }
}

/// What headless Chromium saw when it opened a page.
struct BrowserVisit {
    var consoleMessages: [String]
    var externalRequests: [String]
    var screenshot: RasterImage
}

/// Opens `page` in headless Chromium (Debian's `chromium`, installed by Scripts/setup) with
/// a network log, and returns its console messages (a report has no script, so any message
/// is an error, among them a blocked load), the requests the page itself made to anything
/// but `file:` and `data:` (the browser's own background requests are told apart by their
/// isolation key, which is `file://` for the page's), and the screenshot.
func openInBrowser(_ page: String, height: Int = 2400) throws -> BrowserVisit {
    let folder = makeTemporaryFolder()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
                         "--user-data-dir=" + folder + "/profile", "--log-net-log=" + folder + "/net.json",
                         "--window-size=1400,\(height)", "--screenshot=" + folder + "/shot.png",
                         URL(fileURLWithPath: page).absoluteString]
    let err = Pipe()
    process.standardError = err
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, let shot = FileManager.default.contents(atPath: folder + "/shot.png") else {
        throw ReportError(page, "chromium failed (status \(process.terminationStatus)); is Debian's chromium installed (Scripts/setup)?\n\(log)")
    }
    let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
    var external: [String] = []
    if let data = FileManager.default.contents(atPath: folder + "/net.json"),
       let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], let events = json["events"] as? [[String: Any]] {
        for event in events {
            guard let params = event["params"] as? [String: Any], let url = params["url"] as? String,
                  let key = params["network_isolation_key"] as? String, key.contains("file://") else { continue }
            if !url.hasPrefix("file:") && !url.hasPrefix("data:") { external.append(url) }
        }
    }
    try? FileManager.default.removeItem(atPath: folder)
    return BrowserVisit(consoleMessages: console, externalRequests: external, screenshot: try PNG.decode([UInt8](shot)))
}

/// Whether a screenshot shows a drawn figure: not mostly one colour, and with coloured
/// (saturated) pixels, which only the figures have (text is black, grey or link blue).
func drawnFigureFractions(_ image: RasterImage) -> (dominant: Double, coloured: Double) {
    var counts: [UInt32: Int] = [:]
    var coloured = 0
    let n = image.width * image.height
    for p in 0..<n {
        let base = p * image.channels
        let r = Int(image.pixels[base]), g = Int(image.pixels[base + 1]), b = Int(image.pixels[base + 2])
        counts[UInt32(r << 16 | g << 8 | b), default: 0] += 1
        if max(r, g, b) - min(r, g, b) > 80 && !(b > 200 && r < 60 && g < 60) { coloured += 1 }
    }
    return (Double(counts.values.max() ?? 0) / Double(n), Double(coloured) / Double(n))
}

@Suite("Reports end to end", .serialized)
struct ReportsEndToEndTests {
    let trial = ReportedTrial.shared

    @Test("The run writes a report per visit, a page per participant and the trial report, each self-contained and under 3 MB")
    func written() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        for participant in ["01", "02", "03", "04"] {
            #expect(FileManager.default.fileExists(atPath: trial.output + "/sub-\(participant).html"))
            for session in ["baseline", "m01", "m03", "m06"] {
                let path = trial.visitReport(participant, session)
                let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? .max
                #expect(size < 3_000_000, "\(path): \(size) bytes")
                // The only URL a report may hold is the SVG namespace (a name, never fetched).
                let html = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
                #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"))
                #expect(html.contains("<details><summary>Inputs and their SHA-256"))
            }
        }
        #expect(FileManager.default.fileExists(atPath: trial.output + "/group/report.html"))
    }

    @Test("nimetrics report rebuilds the same bytes from the outputs alone")
    func rebuild() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        let paths = [trial.visitReport("01", "m03"), trial.output + "/sub-01.html", trial.output + "/group/report.html"]
        let before = try paths.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let run = try runTool(["report", trial.output])
        #expect(run.status == 0, "\(run.stderr)")
        let after = try paths.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(before == after)
        let missing = try runTool(["report", trial.root + "/nothing-here"])
        #expect(missing.status == 1 && missing.stderr.contains("nothing-here"))
    }

    @Test("Headless Chromium opens the visit and trial reports: no console error, no external request, figures drawn")
    func browser() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        for page in [trial.visitReport("01", "m03"), trial.output + "/group/report.html"] {
            let visit = try openInBrowser(page)
            #expect(visit.consoleMessages.isEmpty, "\(page): \(visit.consoleMessages)")
            #expect(visit.externalRequests.isEmpty, "\(page): \(visit.externalRequests)")
            let fractions = drawnFigureFractions(visit.screenshot)
            #expect(fractions.dominant < 0.9 && fractions.coloured > 0.005, "\(page): \(fractions)")
        }
    }

    @Test("The browser check fails a page with an external load, a console error or no figure")
    func browserCheckCanFail() throws {
        let folder = makeTemporaryFolder()
        let page = folder + "/bad.html"
        try "<!DOCTYPE html><html><body><p>text only</p><img src=\"http://example.invalid/x.png\"><script>console.error('boom')</script></body></html>"
            .write(toFile: page, atomically: true, encoding: .utf8)
        let visit = try openInBrowser(page, height: 600)
        #expect(visit.consoleMessages.contains { $0.contains("boom") })
        #expect(visit.externalRequests.contains { $0.contains("example.invalid") })
        let fractions = drawnFigureFractions(visit.screenshot)
        #expect(!(fractions.dominant < 0.9 && fractions.coloured > 0.005))
    }

    @Test("The trial report's trajectories read back equal the table, and the planted changes diverge")
    func trajectories() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        let html = try String(contentsOfFile: trial.output + "/group/report.html", encoding: .utf8)
        let long = try TSVTable.read(trial.output + "/group/metrics_long.tsv")
        let visits = try TSVTable.read(trial.output + "/group/visits.tsv")
        var monthOf: [String: String] = [:]
        for row in visits.rows { monthOf[row[0] + " " + row[1]] = row[visits.index(of: "visit_month")!] }
        for region in ["L_CST", "CC_body"] {
            let figure = try #require(section(html, from: "<figure id=\"trajectory-fa_mean\">", to: "</figure>"))
            let panel = try #require(section(figure, from: "<g class=\"panel\" data-panel=\"\(region)\">", to: "</g>"))
            let points = plottedPointAttributes(panel)
            var expected: [String: Double] = [:]
            let (p, s, r, m, v) = (long.index(of: "participant_id")!, long.index(of: "session_id")!, long.index(of: "region")!,
                                   long.index(of: "metric")!, long.index(of: "value")!)
            for row in long.rows where row[r] == region && row[m] == "fa_mean" && (long.index(of: "run").map { row[$0] == "n/a" } ?? true) {
                expected[row[p] + " " + Double(monthOf[row[p] + " " + row[s]]!)!.description] = Double(row[v])!
            }
            #expect(points.count == expected.count)
            var byParticipant: [String: [Double: Double]] = [:]
            for point in points {
                let x = Double(point["data-x"]!)!, y = Double(point["data-y"]!)!
                #expect(expected[point["data-series"]! + " " + x.description] == y, "\(region) \(point)")
                byParticipant[point["data-series"]!, default: [:]][x] = y
            }
            // Planted: +5% by month 6 in sub-01..03, -4% in sub-04.
            for participant in ["sub-01", "sub-02", "sub-03"] {
                #expect(byParticipant[participant]![6]! > byParticipant[participant]![0]!, "\(region) \(participant)")
            }
            #expect(byParticipant["sub-04"]![6]! < byParticipant["sub-04"]![0]!, "\(region) sub-04")
        }
    }

    @Test("A visit with heavy motion shows its censored volumes in the carpet plot")
    func heavyMotion() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        let html = try String(contentsOfFile: trial.visitReport("02", "m03"), encoding: .utf8)
        let marked = Set(html.components(separatedBy: "class=\"censored\" data-volume=\"").dropFirst().compactMap { Int($0.prefix { $0 != "\"" }) })
        let censoring = try TSVTable.read(trial.output + "/sub-02/ses-m03/func/sub-02_ses-m03_task-rest_seg-demo_desc-censoring_timeseries.tsv")
        let motion = try censoring.column("censored_motion"), bad = try censoring.column("censored_nonfinite")
        let expected = Set(censoring.rows.indices.filter { motion[$0] == "1" || bad[$0] == "1" })
        #expect(marked == expected)
        #expect(Set(ReportedTrial.motionVolumes).isSubset(of: marked))
        let calm = try String(contentsOfFile: trial.visitReport("01", "m03"), encoding: .utf8)
        #expect(calm.components(separatedBy: "class=\"censored\"").count - 1 < 10)
    }

    @Test("--no-reports writes no report")
    func noReports() throws {
        try #require(trial.runStatus == 0, "\(trial.runError)")
        let out = trial.root + "/plain"
        let run = try runTool(["run", trial.data, out, "participant", "--group", "--participant-label", "01", "--session-label", "m01",
                               "--atlas", trial.data + "/atlas/atlas-demo_dseg.nii.gz", "--no-reports"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!filesBelow(out).contains { $0.hasSuffix(".html") })
    }
}

func section(_ text: String, from start: String, to end: String) -> String? {
    guard let open = text.range(of: start), let close = text.range(of: end, range: open.upperBound..<text.endIndex) else { return nil }
    return String(text[open.lowerBound..<close.upperBound])
}

/// The attributes of each `<circle class="point" ...>`.
func plottedPointAttributes(_ svg: String) -> [[String: String]] {
    svg.components(separatedBy: "<circle class=\"point\"").dropFirst().map { piece in
        let tag = piece.prefix { $0 != ">" }
        var attributes: [String: String] = [:]
        for part in tag.components(separatedBy: "\" ") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            attributes[pair[0].trimmingCharacters(in: .whitespaces)] = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return attributes
    }
}

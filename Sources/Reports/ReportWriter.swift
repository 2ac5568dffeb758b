import AtomicFiles
import Foundation
import Tabular

/// One visit's output folder, as the participant level leaves it.
public struct VisitFolder: Sendable, Equatable {
    public var participant: String
    public var session: String?
    /// `OUTPUT/sub-XX[/ses-YY]`.
    public var path: String
    /// `sub-XX[_ses-YY]`: the start of every file name in the folder.
    public var prefix: String { [participant, session].compactMap { $0 }.joined(separator: "_") }

    public init(participant: String, session: String?, path: String) {
        self.participant = participant
        self.session = session
        self.path = path
    }
}

/// A report that could not be written, in words.
public struct ReportFailure: Error, Sendable {
    public var message: String
}

/// Writes the reports of an output folder: every visit's, each participant's page, and the
/// trial's.
public enum ReportWriter {
    /// The visit folders of `output` that hold a visit record, in name order.
    public static func visitFolders(output: String) -> [VisitFolder] {
        var visits: [VisitFolder] = []
        for participant in ReportInputs.files(in: output) where participant.hasPrefix("sub-") {
            let folder = output + "/" + participant
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else { continue }
            let entries = ReportInputs.files(in: folder)
            if entries.contains(where: { $0.hasPrefix(participant + "_desc-") && $0.hasSuffix("_visit.json") }) {
                visits.append(VisitFolder(participant: participant, session: nil, path: folder))
            }
            for session in entries where session.hasPrefix("ses-") {
                let path = folder + "/" + session
                let prefix = participant + "_" + session
                if ReportInputs.files(in: path).contains(where: { $0.hasPrefix(prefix + "_desc-") && $0.hasSuffix("_visit.json") }) {
                    visits.append(VisitFolder(participant: participant, session: session, path: path))
                }
            }
        }
        return visits
    }

    /// Writes the reports of `visits` (default: every visit folder), then the pages of their
    /// participants; returns the paths written. A visit whose report fails is reported in
    /// `failures` and the others go on.
    public static func writeVisitReports(output: String, visits: [VisitFolder]? = nil, generator: String)
        -> (files: [String], failures: [String]) {
        var files: [String] = [], failures: [String] = []
        let chosen = visits ?? visitFolders(output: output)
        for visit in chosen {
            switch writeVisitReport(visit, generator: generator) {
            case .success(let file): files += file.map { [$0] } ?? []
            case .failure(let failure): failures.append(failure.message)
            }
        }
        let pages = writeParticipantPages(output: output, participants: Set(chosen.map(\.participant)), generator: generator)
        return (files + pages.files, failures + pages.failures)
    }

    /// Writes one visit's report; the path written, nil for a visit none of whose modalities
    /// succeeded (it has nothing to show but its error, which the participant page and the
    /// trial report give; a report left from an earlier, successful run is removed).
    public static func writeVisitReport(_ visit: VisitFolder, generator: String) -> Result<String?, ReportFailure> {
        guard hasOutputs(visit) else {
            try? FileManager.default.removeItem(atPath: visit.path + "/" + VisitReport.fileName(prefix: visit.prefix))
            return .success(nil)
        }
        do { return .success(try VisitReport.write(folder: visit.path, prefix: visit.prefix, generator: generator)) } catch {
            return .failure(ReportFailure(message: "\(visit.prefix): report not written: \(error)"))
        }
    }

    /// Writes the page of each of `participants` from the visit folders present in `output`.
    public static func writeParticipantPages(output: String, participants: Set<String>, generator: String)
        -> (files: [String], failures: [String]) {
        let all = visitFolders(output: output)
        var files: [String] = [], failures: [String] = []
        for participant in participants.sorted() {
            do { files.append(try writeParticipantPage(output: output, participant: participant,
                                                       visits: all.filter { $0.participant == participant }, generator: generator)) } catch {
                failures.append("\(participant): page not written: \(error)")
            }
        }
        return (files, failures)
    }

    /// Whether any modality of the visit was processed (its record says `ok`).
    static func hasOutputs(_ visit: VisitFolder) -> Bool {
        ["dwi", "func"].contains { modality in
            (try? ReportInputs.json(visit.path + "/\(visit.prefix)_desc-\(modality)_visit.json"))?["status"]?.stringValue == "ok"
        }
    }

    /// `OUTPUT/sub-XX.html`: the participant's visits with each modality's status, linking
    /// the visit reports.
    static func writeParticipantPage(output: String, participant: String, visits: [VisitFolder], generator: String) throws -> String {
        var page = HTMLPage(title: "nimetrics: \(participant)")
        var rows: [String] = []
        for visit in visits {
            let relative = visit.path.dropFirst(output.count + 1)
            let report = relative + "/" + VisitReport.fileName(prefix: visit.prefix)
            var cells = hasOutputs(visit)
                ? "<td><a href=\"\(escapeXML(report))\">\(escapeXML(visit.session ?? participant))</a></td>"
                : "<td>\(escapeXML(visit.session ?? participant)) (no report: failed)</td>"
            var failed = false
            for modality in ["dwi", "func"] {
                let record = try? ReportInputs.json(visit.path + "/\(visit.prefix)_desc-\(modality)_visit.json")
                let status = record?["status"]?.stringValue ?? "n/a"
                failed = failed || (record != nil && status != "ok")
                cells += "<td>\(escapeXML(status))</td><td>\(record?["warnings"]?.arrayValue.count ?? 0)</td>"
                if let error = record?["error"]?.stringValue { cells += "<td>\(escapeXML(error))</td>" } else { cells += "<td></td>" }
            }
            rows.append("<tr\(failed ? " class=\"failed\"" : "")>\(cells)</tr>")
        }
        page.add("<p><a href=\"group/report.html\">Trial report</a></p>")
        page.add("<table><caption>Visits of \(escapeXML(participant))</caption><thead><tr><th>visit report</th><th>DWI status</th><th>DWI warnings</th><th>DWI error</th><th>fMRI status</th><th>fMRI warnings</th><th>fMRI error</th></tr></thead><tbody>"
                 + rows.joined() + "</tbody></table>")
        let path = output + "/" + participant + ".html"
        try AtomicFile.write(page.rendered(generator: generator), to: path)
        return path
    }
}

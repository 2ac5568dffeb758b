#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// How an output folder sits against an input dataset when the run refuses it.
public enum OutputPlacement: Sendable, Equatable {
    /// The output folder is the input's folder.
    case sameAsInput
    /// The output folder lies inside the input (and not below its `derivatives/` folder).
    case insideInput
    /// The output folder is the input's `derivatives/` folder itself, which holds other
    /// pipelines' outputs; a folder below it is accepted.
    case derivativesFolder
    /// The input lies inside the output folder.
    case containsInput
}

/// Keeps a run's writes away from its inputs and inside its output folder.
///
/// Two rules, checked before anything is written:
///
/// 1. **Separation** (``checkSeparation(output:inputs:)``): the output folder may not be an
///    input's folder, lie inside one, or hold one. The one exception is the BIDS convention
///    for derivatives, a folder below an input's `derivatives/` folder
///    (`BIDS_DIR/derivatives/nimetrics`). Paths are compared after resolving `.`, `..` and
///    the symbolic links of every component that exists, component by component (so
///    `/data/bids2` is not inside `/data/bids`, and a link to the input is the input).
/// 2. **No links below the output folder** (``makeFolder(_:in:)``,
///    ``refuseLinks(inside:root:)``, ``refuseLink(at:root:)``): a folder or file below the
///    output folder that is a symbolic link, wherever it leads, is refused rather than
///    followed, so no write can go through it to somewhere else (an input, another study).
///    The output folder itself may be a link: the user named it.
///
/// What these rules do not cover: a link created between the check and the write (the
/// guard protects against mistakes, not against another process racing the run), and
/// input files named outside the input folders (atlases, masks given by absolute path).
public enum OutputGuard {
    /// Refuses an output folder that is, lies inside, or holds one of `inputs`.
    ///
    /// - Parameters:
    ///   - output: the output folder as given (it need not exist yet).
    ///   - inputs: the folders of every input dataset: the BIDS folder or the manifest's
    ///     folder, and any derivative dataset read alongside it (see ``Dataset/inputRoots``).
    /// - Throws: ``TrialError/outputOverlapsInput(output:input:placement:)`` naming both
    ///   paths and the rule broken.
    public static func checkSeparation(output: String, inputs: [String]) throws {
        let outputPath = resolvedPath(output)
        let outputParts = components(outputPath)
        for input in inputs {
            let inputPath = resolvedPath(input)
            let inputParts = components(inputPath)
            let placement: OutputPlacement
            if outputParts == inputParts {
                placement = .sameAsInput
            } else if outputParts.starts(with: inputParts) {
                let below = outputParts.dropFirst(inputParts.count)
                guard below.first == "derivatives" else {
                    throw TrialError.outputOverlapsInput(output: shown(output, outputPath), input: shown(input, inputPath), placement: .insideInput)
                }
                if below.count > 1 { continue }
                placement = .derivativesFolder
            } else if inputParts.starts(with: outputParts) {
                placement = .containsInput
            } else {
                continue
            }
            throw TrialError.outputOverlapsInput(output: shown(output, outputPath), input: shown(input, inputPath), placement: placement)
        }
    }

    /// `root/relative`, creating each missing folder on the way; refuses any component below
    /// `root` that exists as a symbolic link (or as something other than a folder).
    ///
    /// Safe for several workers creating folders below the same parent at once: a folder
    /// that another worker created between the look and the `mkdir` is looked at again.
    ///
    /// - Parameters:
    ///   - relative: folders below `root`, such as `sub-01/ses-m00` (no `..`).
    ///   - root: the output folder; it must exist.
    /// - Returns: the folder's path.
    /// - Throws: ``TrialError/outputSymlink(link:target:root:)``, or ``TrialError/io(path:reason:)``.
    @discardableResult
    static func makeFolder(_ relative: String, in root: String) throws -> String {
        var current = root
        for part in relative.split(separator: "/") where part != "." {
            guard part != ".." else { throw TrialError.outputEscapes(path: root + "/" + relative, root: root) }
            current += "/" + part
            switch kind(of: current) {
            case .folder:
                continue
            case .link(let target):
                throw TrialError.outputSymlink(link: current, target: target, root: root)
            case .other:
                throw TrialError.io(path: current, reason: "exists and is not a folder")
            case .missing:
                if mkdir(current, 0o777) != 0 {
                    let code = errno
                    if code == EEXIST, case .folder = kind(of: current) { continue }
                    if code == EEXIST, case .link(let target) = kind(of: current) {
                        throw TrialError.outputSymlink(link: current, target: target, root: root)
                    }
                    throw TrialError.io(path: current, reason: "cannot create the folder: \(String(cString: strerror(code)))")
                }
            }
        }
        return current
    }

    /// Refuses `folder` when anything in it, at any depth, is a symbolic link. Links are
    /// looked at, never followed.
    /// - Throws: ``TrialError/outputSymlink(link:target:root:)`` naming the first link found.
    static func refuseLinks(inside folder: String, root: String) throws {
        var pending = [folder]
        while let current = pending.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: current) else { continue }
            for name in names.sorted() {
                let path = current + "/" + name
                switch kind(of: path) {
                case .link(let target): throw TrialError.outputSymlink(link: path, target: target, root: root)
                case .folder: pending.append(path)
                case .other, .missing: continue
                }
            }
        }
    }

    /// Refuses a file about to be written at `path` when that name is a symbolic link.
    /// - Throws: ``TrialError/outputSymlink(link:target:root:)``.
    static func refuseLink(at path: String, root: String) throws {
        if case .link(let target) = kind(of: path) { throw TrialError.outputSymlink(link: path, target: target, root: root) }
    }

    // MARK: - Paths

    /// The absolute path of `path` with `.` and `..` applied and every symbolic link among
    /// its existing components replaced by what it leads to, as the kernel would walk it;
    /// components that do not exist yet are kept as written. A dangling link is followed
    /// to its (missing) target. Unlike `realpath(3)` it works for paths that do not exist.
    static func resolvedPath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var pending = Array(absolute.split(separator: "/").map(String.init).reversed())
        var resolved: [String] = []
        var linksFollowed = 0
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let candidate = "/" + (resolved + [part]).joined(separator: "/")
            // 40 links, as Linux's MAXSYMLINKS: a loop stops being followed rather than spinning.
            if linksFollowed < 40, case .link(let target) = kind(of: candidate) {
                linksFollowed += 1
                if target.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            resolved.append(part)
        }
        return "/" + resolved.joined(separator: "/")
    }

    static func components(_ resolved: String) -> [String] {
        resolved.split(separator: "/").map(String.init)
    }

    /// The path as given, followed by what it resolves to when that differs.
    static func shown(_ given: String, _ resolved: String) -> String {
        let standard = URL(fileURLWithPath: given).standardizedFileURL.path
        return standard == resolved ? standard : "\(given) (\(resolved))"
    }

    enum Kind {
        case missing, folder, other
        case link(target: String)
    }

    /// What is at `path`, without following a final symbolic link.
    static func kind(of path: String) -> Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .folder
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(path, &buffer, buffer.count - 1)
            guard count >= 0 else { return .link(target: "?") }
            buffer[count] = 0
            return .link(target: String(cString: buffer))
        default: return .other
        }
    }
}

extension Dataset {
    /// The folders of every input dataset a run reads: today the BIDS folder or the
    /// manifest's folder. Derivative datasets read alongside it belong here too, so the
    /// output guard and `SourceDatasets` cover them.
    public var inputRoots: [String] { [TrialRunner.datasetFolder(self)] + derivativeRoots }
}

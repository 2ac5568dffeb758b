import Foundation
import SlabParallel
import Statistics
import Tabular

/// The statistics of change of the group stage: `group/stats.tsv` (per follow-up session) and
/// `group/trend.tsv` (over all visits), built from the group tables' rows in memory.
///
/// With a handful of participants these statistics are exploratory: they describe the
/// trial's data and rank regions, they do not establish an effect.
enum GroupStatistics {
    /// One outcome measured by the pipelines: modality, atlas (nil for a value no atlas
    /// changes, or for a visit measured with one atlas), region, metric.
    struct Key: Hashable, Sendable {
        var modality: String
        var atlas: String?
        var region: String
        var metric: String

        /// The group tables' order: modality, atlas (none first, then natural order), region, metric.
        static func less(_ a: Key, _ b: Key) -> Bool {
            if a.modality != b.modality { return a.modality < b.modality }
            if a.atlas != b.atlas {
                guard let x = a.atlas else { return true }
                guard let y = b.atlas else { return false }
                return BIDSLabel.naturalLess(x, y)
            }
            if a.region != b.region { return a.region < b.region }
            return a.metric < b.metric
        }
    }

    /// A visit: `sub-XX`, `ses-YY`.
    struct VisitKey: Hashable, Sendable {
        var participant: String
        var session: String
    }

    /// What the statistics are computed from; no files.
    struct Input: Sendable {
        /// Change from baseline, one per participant, follow-up session and key (finite or not).
        var changes: [(visit: VisitKey, key: Key, delta: Double)] = []
        /// The session value of every visit and key (baseline included).
        var values: [(visit: VisitKey, key: Key, value: Double)] = []
        /// Months since baseline of each visit (the x of the trend); visits without one are
        /// left out of the trend.
        var visitMonths: [VisitKey: Double] = [:]
        /// The clinical outcome's name (a column of sessions.tsv or participants.tsv), nil for none.
        var clinicalOutcome: String?
        /// The clinical outcome's change from baseline of each follow-up visit that has one.
        var outcomeChanges: [VisitKey: Double] = [:]
        /// Session ids in chronological order (the order of the rows of stats.tsv).
        var sessionOrder: [String] = []
        /// Random draws of the permutation tests too large to enumerate.
        var draws = PermutationTests.defaultDraws
        /// ``changes`` grouped by key and follow-up session, outcome metrics only, in the
        /// order of ``changes``; when set, ``changes`` is not read. The group stage fills this
        /// rather than the list, so each of its millions of rows is held once, compactly.
        var changesByKey: [Key: [String: [(participant: String, delta: Double)]]]? = nil
        /// ``values`` grouped by key, outcome metrics only, likewise.
        var valuesByKey: [Key: [(visit: VisitKey, value: Double)]]? = nil
    }

    /// True for the quality-control numbers (``MetricKind/of(metric:)``): they describe the
    /// acquisition, not the participant, so no statistic of change is computed for them.
    static func isQualityControl(metric: String) -> Bool { MetricKind.of(metric: metric) == .qc }

    static let statsColumns = ["modality", "atlas", "region", "metric", "session_id", "n", "mean_change", "ci_low", "ci_high",
                               "p_sign_flip", "q_sign_flip", "clinical_outcome", "n_outcome", "spearman_rho", "p_spearman",
                               "q_spearman"]
    static let trendColumns = ["modality", "atlas", "region", "metric", "n_participants", "n_visits", "slope", "se",
                               "ci_low", "ci_high", "df", "p", "sd_intercept", "sd_residual"]

    // MARK: - stats.tsv

    /// One row of stats.tsv before the q-values.
    struct ChangeStatistics: Sendable {
        var key: Key
        var session: String
        var summary: PairedChangeSummary?
        var signFlip: PermutationResult?
        var outcomeCount: Int
        var spearman: PermutationResult?
    }

    /// `group/stats.tsv`: one row per outcome key and follow-up session with changes, in key
    /// order then session order. Columns: n (participants with a finite change), mean_change
    /// and its 95 % t interval (``PairedChangeSummary``), p_sign_flip (exact paired sign-flip
    /// test, ``PermutationTests/signFlip(_:exactLimit:draws:seed:)``), q_sign_flip
    /// (Benjamini-Hochberg across the regions of one modality, atlas, metric and session),
    /// clinical_outcome, n_outcome (participants with both changes), spearman_rho and
    /// p_spearman (``PermutationTests/spearman(_:_:exactLimit:draws:seed:)`` of the metric's
    /// change against the outcome's change), q_spearman (as q_sign_flip). `n/a` where a
    /// statistic is undefined (too few participants, no spread).
    static func statsTable(_ input: Input, threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> TSVTable {
        let rows = computeChangeStatistics(input, threads: threads)
        // Benjamini-Hochberg families: regions within modality x atlas x metric x session.
        var families: [String: [Int]] = [:]
        for (i, row) in rows.enumerated() {
            families["\(row.key.modality)\t\(row.key.atlas ?? "")\t\(row.key.metric)\t\(row.session)", default: []].append(i)
        }
        var qSign = [Double?](repeating: nil, count: rows.count), qSpearman = qSign
        for members in families.values {
            let a = MultipleTesting.benjaminiHochberg(members.map { rows[$0].signFlip?.pValue })
            let b = MultipleTesting.benjaminiHochberg(members.map { rows[$0].spearman?.pValue })
            for (k, i) in members.enumerated() { qSign[i] = a[k]; qSpearman[i] = b[k] }
        }
        var table = TSVTable(columns: statsColumns)
        for (i, row) in rows.enumerated() {
            let interval = row.summary?.confidenceInterval
            table.append([row.key.modality, row.key.atlas ?? "n/a", row.key.region, row.key.metric, row.session,
                          String(row.summary?.count ?? 0), tsvCell(row.summary?.mean), tsvCell(interval?.low),
                          tsvCell(interval?.high), tsvCell(row.signFlip?.pValue), tsvCell(qSign[i]),
                          input.clinicalOutcome ?? "n/a", String(row.outcomeCount), tsvCell(row.spearman?.statistic),
                          tsvCell(row.spearman?.pValue), tsvCell(qSpearman[i])])
        }
        return table
    }

    /// The per-row statistics, computed in parallel into fixed slots (each row is independent
    /// and seeds its own draws, so the result does not depend on the thread count).
    static func computeChangeStatistics(_ input: Input, threads: Int) -> [ChangeStatistics] {
        var grouped: [Key: [String: [(participant: String, delta: Double)]]] = input.changesByKey ?? [:]
        if input.changesByKey == nil {
            for change in input.changes where !isQualityControl(metric: change.key.metric) {
                grouped[change.key, default: [:]][change.visit.session, default: []].append((change.visit.participant, change.delta))
            }
        }
        let rank = Dictionary(input.sessionOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let jobs: [(key: Key, session: String, changes: [(participant: String, delta: Double)])] =
            grouped.keys.sorted(by: Key.less).flatMap { key in
                grouped[key]!.keys.sorted { (rank[$0] ?? Int.max, $0) < (rank[$1] ?? Int.max, $1) }.map { session in
                    (key, session, grouped[key]![session]!)
                }
            }
        var results = [ChangeStatistics?](repeating: nil, count: jobs.count)
        withSharedBuffer(&results) { slots in
            forEachInterleaved(count: jobs.count, threads: threads) { j in
                let job = jobs[j]
                let deltas = job.changes.map(\.delta).filter(\.isFinite)
                var pairs: (x: [Double], y: [Double]) = ([], [])
                for change in job.changes where change.delta.isFinite {
                    guard let outcome = input.outcomeChanges[VisitKey(participant: change.participant, session: job.session)],
                          outcome.isFinite else { continue }
                    pairs.x.append(change.delta)
                    pairs.y.append(outcome)
                }
                slots[j] = ChangeStatistics(key: job.key, session: job.session, summary: PairedChangeSummary(changes: deltas),
                                            signFlip: PermutationTests.signFlip(deltas, draws: input.draws), outcomeCount: pairs.x.count,
                                            spearman: PermutationTests.spearman(pairs.x, pairs.y, draws: input.draws))
            }
        }
        return results.map { $0! }
    }

    // MARK: - trend.tsv

    /// `group/trend.tsv`: per outcome key, the random-intercept model value ~ 1 + visit_month
    /// (``RandomInterceptModel``, REML, Satterthwaite degrees of freedom) over every visit
    /// with a finite value and a visit month: n_participants, n_visits, slope (per month), se,
    /// its 95 % interval, df, p, and the fitted standard deviations of the participant
    /// intercepts (0 on the boundary) and of the residual. `n/a` where the model cannot be
    /// estimated (fewer than two participants, one month, no repeated visit, a perfect fit).
    static func trendTable(_ input: Input, threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> TSVTable {
        var grouped: [Key: [(visit: VisitKey, value: Double)]] = input.valuesByKey ?? [:]
        if input.valuesByKey == nil {
            for row in input.values where !isQualityControl(metric: row.key.metric) {
                grouped[row.key, default: []].append((row.visit, row.value))
            }
        }
        let keys = grouped.keys.sorted(by: Key.less)
        let series = keys.map { grouped[$0]! }
        var fits = [(participants: Int, visits: Int, fit: RandomInterceptModel.Fit?)?](repeating: nil, count: keys.count)
        withSharedBuffer(&fits) { slots in
            forEachInterleaved(count: keys.count, threads: threads) { k in
                var labels: [String: Int] = [:]
                var groups: [Int] = [], x: [Double] = [], y: [Double] = []
                for row in series[k] where row.value.isFinite {
                    guard let month = input.visitMonths[row.visit], month.isFinite else { continue }
                    let next = labels.count
                    groups.append(labels[row.visit.participant] ?? next)
                    if labels[row.visit.participant] == nil { labels[row.visit.participant] = next }
                    x.append(month)
                    y.append(row.value)
                }
                slots[k] = (labels.count, x.count, RandomInterceptModel.fit(groups: groups, x: x, y: y))
            }
        }
        var table = TSVTable(columns: trendColumns)
        for (key, entry) in zip(keys, fits.map { $0! }) {
            let fit = entry.fit
            table.append([key.modality, key.atlas ?? "n/a", key.region, key.metric, String(entry.participants),
                          String(entry.visits), tsvCell(fit?.slope), tsvCell(fit?.standardError),
                          tsvCell(fit?.confidenceInterval.low), tsvCell(fit?.confidenceInterval.high),
                          tsvCell(fit?.degreesOfFreedom), tsvCell(fit?.pValue),
                          tsvCell(fit.map { $0.interceptVariance.squareRoot() }),
                          tsvCell(fit.map { $0.residualVariance.squareRoot() })])
        }
        return table
    }
}

// MARK: - From the group stage's rows

extension GroupStatistics {
    /// The inputs from the group stage's visits and change rows.
    ///
    /// - Parameters:
    ///   - visitMonths: months since baseline per visit; nil for ``defaultVisitMonths(_:warnings:)``.
    ///   - clinicalOutcome: the clinical column whose change the metrics' changes are
    ///     correlated with; nil for `edss` when some visit has it.
    static func input(_ data: GroupData, changes: [VisitChanges], clinicalOutcome: String?, warnings: inout [String]) -> Input {
        // Grouped by catalogue id first (an array index, not a hash of four strings), then
        // keyed: among the session values (run n/a) an id and a Key are one to one.
        let catalogue = data.catalogue.keys
        let outcome = catalogue.map { $0.run == nil && !isQualityControl(metric: $0.metric) }
        var changesByID = [[String: [(participant: String, delta: Double)]]](repeating: [:], count: catalogue.count)
        for visitChanges in changes {
            let participant = data.visits[visitChanges.visit].visit.participantID
            for (id, (value, baseline)) in zip(visitChanges.ids, zip(visitChanges.values, visitChanges.baselines)) where outcome[Int(id)] {
                changesByID[Int(id)][visitChanges.sessionID, default: []].append((participant, ChangeRow.delta(value: value, baseline: baseline)))
            }
        }
        var valuesByID = [[(visit: VisitKey, value: Double)]](repeating: [], count: catalogue.count)
        for visit in data.visits {
            guard let session = visit.visit.sessionID else { continue }
            let id = VisitKey(participant: visit.visit.participantID, session: session)
            for (k, value) in zip(visit.metricIDs, visit.metricValues) where outcome[Int(k)] { valuesByID[Int(k)].append((id, value)) }
        }
        func key(_ k: Int) -> Key { Key(modality: catalogue[k].modality, atlas: catalogue[k].atlas, region: catalogue[k].region, metric: catalogue[k].metric) }
        var result = input(visits: data.visits, changeTuples: [], baselines: data.baselines.mapValues { $0.session },
                           visitMonths: defaultVisitMonths(data.visits, warnings: &warnings), clinicalOutcome: clinicalOutcome,
                           fillValues: false, warnings: &warnings)
        result.changesByKey = Dictionary(uniqueKeysWithValues: changesByID.indices.filter { !changesByID[$0].isEmpty }.map { (key($0), changesByID[$0]) })
        result.valuesByKey = Dictionary(uniqueKeysWithValues: valuesByID.indices.filter { !valuesByID[$0].isEmpty }.map { (key($0), valuesByID[$0]) })
        return result
    }

    static func input(visits: [GroupVisit], changes: [ChangeRow], baselines: [String: String?],
                      visitMonths: [VisitKey: Double]? = nil, clinicalOutcome: String? = nil,
                      warnings: inout [String]) -> Input {
        func key(_ m: MetricRow) -> Key { Key(modality: m.modality, atlas: m.atlas, region: m.region, metric: m.metric) }
        return input(visits: visits,
                     changeTuples: changes.map { (VisitKey(participant: $0.participantID, session: $0.sessionID), key($0.metric), $0.delta) },
                     baselines: baselines, visitMonths: visitMonths, clinicalOutcome: clinicalOutcome, fillValues: true, warnings: &warnings)
    }

    /// - Parameter fillValues: fill ``Input/values`` from the visits' metrics.
    static func input(visits: [GroupVisit], changeTuples: [(visit: VisitKey, key: Key, delta: Double)], baselines: [String: String?],
                      visitMonths: [VisitKey: Double]?, clinicalOutcome: String?, fillValues: Bool,
                      warnings: inout [String]) -> Input {
        var input = Input()
        func visitKey(_ visit: GroupVisit) -> VisitKey? {
            visit.visit.sessionID.map { VisitKey(participant: visit.visit.participantID, session: $0) }
        }
        input.changes = changeTuples
        for visit in visits where fillValues {
            guard let id = visitKey(visit) else { continue }
            for m in visit.metrics where m.run == nil {
                input.values.append((id, Key(modality: m.modality, atlas: m.atlas, region: m.region, metric: m.metric), m.value))
            }
        }
        input.visitMonths = visitMonths ?? defaultVisitMonths(visits, warnings: &warnings)
        var order: [String: (Double, Int)] = [:]
        for visit in visits {
            guard let id = visitKey(visit) else { continue }
            let month = input.visitMonths[id] ?? Double(visit.sessionOrder)
            let current = order[id.session] ?? (0, 0)
            order[id.session] = (current.0 + month, current.1 + 1)
        }
        input.sessionOrder = order.keys.sorted {
            let a = order[$0]!.0 / Double(order[$0]!.1), b = order[$1]!.0 / Double(order[$1]!.1)
            return a != b ? a < b : BIDSLabel.naturalLess($0, $1)
        }
        let outcome = clinicalOutcome ?? (TrialRunner.clinicalColumns(visits).contains("edss") ? "edss" : nil)
        input.clinicalOutcome = outcome
        if let outcome { input.outcomeChanges = outcomeChanges(outcome, visits: visits, baselines: baselines) }
        return input
    }

    /// Months since baseline: each visit's month (``GroupVisit/visitMonth``: sessions.tsv's
    /// `visit_month`, else from `acq_time`) when every visit with metrics has one, else each visit's position in its participant's
    /// chronological order (0, 1, 2, ...), with a warning.
    static func defaultVisitMonths(_ visits: [GroupVisit], warnings: inout [String]) -> [VisitKey: Double] {
        var months: [VisitKey: Double] = [:], order: [VisitKey: Double] = [:]
        var complete = true
        for visit in visits {
            guard let session = visit.visit.sessionID else { continue }
            let id = VisitKey(participant: visit.visit.participantID, session: session)
            order[id] = Double(visit.sessionOrder)
            if let month = visit.visitMonth, month.isFinite {
                months[id] = month
            } else if !visit.hasNoMetrics {
                complete = false
            }
        }
        if complete && !months.isEmpty { return months }
        if !order.isEmpty {
            warnings.append("trend.tsv: no numeric visit_month for every visit; the trend is per visit (session order), not per month")
        }
        return order
    }

    /// outcome(visit) − outcome(baseline visit) for every visit where both are numbers.
    static func outcomeChanges(_ outcome: String, visits: [GroupVisit], baselines: [String: String?]) -> [VisitKey: Double] {
        func number(_ visit: GroupVisit) -> Double? {
            visit.visit.clinicalValue(outcome).flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil }
        }
        // The first listed visit of each participant and session, found once (not searched per visit).
        var listed: [String: [String: Int]] = [:]
        for (i, visit) in visits.enumerated() {
            guard let session = visit.visit.session, listed[visit.visit.participant]?[session] == nil else { continue }
            listed[visit.visit.participant, default: [:]][session] = i
        }
        var result: [VisitKey: Double] = [:]
        for visit in visits {
            guard let session = visit.visit.sessionID, let value = number(visit),
                  let baselineLabel = baselines[visit.visit.participant] ?? nil,
                  let index = listed[visit.visit.participant]?[baselineLabel],
                  let start = number(visits[index]) else { continue }
            result[VisitKey(participant: visit.visit.participantID, session: session)] = value - start
        }
        return result
    }
}

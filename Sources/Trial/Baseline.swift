import Foundation

/// A participant's baseline session and the rule that chose it.
public struct Baseline: Sendable, Equatable {
    /// How the baseline was chosen (the first rule that applies, in this order).
    public enum Rule: String, Sendable {
        /// `--baseline-session`.
        case requested
        /// The session whose `visit_month` is 0 (or a baseline token such as `BL`).
        case visitMonthZero = "visit_month_0"
        /// The earliest `acq_time`.
        case earliestAcquisition = "earliest_acq_time"
        /// The first session in chronological order (``Dataset/sessionOrder(of:)``).
        case firstInOrder = "first_in_order"
    }

    /// The session label (without `ses-`); nil when the participant has no baseline (the
    /// requested session is not among its visits).
    public var session: String?
    public var rule: Rule

    /// `ses-<label>`, as the tables write it; nil without a baseline.
    public var sessionID: String? { session.map { "ses-" + $0 } }
}

/// The baseline of each participant, and each visit's month.
enum Baselines {
    /// The baseline of every participant with sessions: `requested` when given (a
    /// participant without it has none, with a warning); else the session whose visit month
    /// is 0 (the first in chronological order if several, with a warning); else the one with
    /// the earliest `acq_time`; else the first in chronological order. The baseline is
    /// chosen among all listed visits, scheduled and missed ones included, so a baseline that
    /// failed or was missed gives `n/a` changes (with a warning) rather than silently moving.
    /// - Parameter visits: in participant order, each participant's in chronological order.
    static func choose(_ visits: [GroupVisit], requested: String?, warnings: inout [String]) -> [String: Baseline] {
        var baselines: [String: Baseline] = [:]
        for group in participantGroups(visits) {
            let sessions = group.filter { $0.visit.session != nil }
            guard let first = sessions.first else { continue }
            let participant = first.visit.participant
            let baseline: Baseline
            if let requested {
                baseline = Baseline(session: sessions.contains { $0.visit.session == requested } ? requested : nil, rule: .requested)
                if baseline.session == nil {
                    warnings.append("sub-\(participant): no session '\(requested)'; its changes from baseline are n/a")
                }
            } else if let zero = sessions.first(where: { $0.givenMonth == 0 }) {
                let zeros = sessions.filter { $0.givenMonth == 0 }.compactMap(\.visit.sessionID)
                if zeros.count > 1 {
                    warnings.append("sub-\(participant): sessions \(zeros.joined(separator: ", ")) all have visit_month 0; the first in chronological order, \(zeros[0]), is the baseline")
                }
                baseline = Baseline(session: zero.visit.session, rule: .visitMonthZero)
            } else if let earliest = sessions.filter({ $0.acquisitionTime != nil }).min(by: { $0.acquisitionTime! < $1.acquisitionTime! }) {
                baseline = Baseline(session: earliest.visit.session, rule: .earliestAcquisition)
            } else {
                baseline = Baseline(session: first.visit.session, rule: .firstInOrder)
            }
            if let session = baseline.session, let visit = sessions.first(where: { $0.visit.session == session }), visit.status != .ok {
                warnings.append("sub-\(participant): the baseline ses-\(session) is \(visit.status.rawValue); changes from baseline of what it lacks are n/a")
            }
            baselines[participant] = baseline
        }
        return baselines
    }

    /// Each visit's month: the `visit_month` its clinical tables give; else, when it has an
    /// `acq_time`, the baseline's month (0 when not given) plus the months since the
    /// baseline's `acq_time` (the participant's earliest `acq_time` when the baseline has
    /// none, or there is no baseline), a month being 30.4375 days (365.25 / 12), rounded to
    /// 0.01 month; else nil.
    static func assignMonths(_ visits: inout [GroupVisit], baselines: [String: Baseline]) {
        var start = 0
        while start < visits.count {
            let participant = visits[start].visit.participant
            var end = start
            while end < visits.count && visits[end].visit.participant == participant { end += 1 }
            // The slice lives only in here: held across the writes below, it made each write
            // copy the whole array (quadratic in the visits: 20 % of the group stage at 10 000).
            let anchor: (Double, Double)? = {
                let group = visits[start..<end]
                let baseline = group.first { $0.visit.session != nil && $0.visit.session == baselines[participant]?.session }
                return baseline?.acquisitionTime.map { ($0, baseline?.givenMonth ?? 0) }
                    ?? group.compactMap(\.acquisitionTime).min().map { ($0, 0.0) }
            }()
            for k in start..<end {
                if let month = visits[k].givenMonth { visits[k].visitMonth = month; continue }
                guard let time = visits[k].acquisitionTime, let (anchorTime, anchorMonth) = anchor else { continue }
                visits[k].visitMonth = anchorMonth + ((time - anchorTime) / ClinicalTime.secondsPerMonth * 100).rounded() / 100
            }
            start = end
        }
    }

    /// The visits split by participant (they come sorted by participant).
    static func participantGroups(_ visits: [GroupVisit]) -> [ArraySlice<GroupVisit>] {
        var groups: [ArraySlice<GroupVisit>] = []
        var start = 0
        for k in visits.indices where k == visits.count - 1 || visits[k + 1].visit.participant != visits[k].visit.participant {
            groups.append(visits[start...k])
            start = k + 1
        }
        return groups
    }
}

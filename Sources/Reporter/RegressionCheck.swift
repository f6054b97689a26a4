import Foundation
import Interference

/// The outcome of `compare(baseline:candidate:tolerance:useIntervals:)`.
public struct CheckResult: Sendable, Equatable {
    /// One entry that moved.
    public struct MovedEntry: Sendable, Equatable {
        public var group: String
        /// Task whose loss changes (row) and task that steps (column).
        public var lossTask: String
        public var stepTask: String
        public var baseline: Double
        public var candidate: Double
        /// With intervals, the accepted range: the baseline interval stretched to hold the baseline
        /// value (before the tolerance widens it). Without, the baseline's interval as stored, for
        /// context (nil when the baseline has none).
        public var baselineLow: Double?
        public var baselineHigh: Double?

        /// `candidate − baseline`.
        public var change: Double { candidate - baseline }
    }

    /// Entries that moved, in group order then row-major.
    public var moved: [MovedEntry]
    /// Entries compared.
    public var checked: Int
    /// Entries undefined (NaN) in both runs: counted in `checked`, never moved.
    public var undefinedInBoth = 0
    public var tolerance: Double
    public var useIntervals: Bool

    /// True when nothing moved (the CLI exits 0; otherwise 1).
    public var passed: Bool { moved.isEmpty }

    /// Decimals of the table's numbers: three, or enough to show a change of the tolerance's size
    /// (at `--tolerance 1e-4` a move of 4e-4 must not print as `0.000`), at most 12; six at
    /// tolerance 0. A change still too small for them is written in scientific notation.
    public var digits: Int {
        guard tolerance > 0, tolerance.isFinite else { return tolerance > 0 ? 3 : 6 }
        return min(12, max(3, Int((-log10(tolerance)).rounded(.up)) + 1))
    }

    /// A markdown table of what moved (or one line saying nothing did).
    public var markdown: String {
        let limit = String(format: "%g", tolerance)
        let rule =
            useIntervals
            ? "left the accepted range (the baseline interval, stretched to hold the baseline value) widened by \(limit)"
            : "moved by more than \(limit)"
        let digits = digits
        func number(_ value: Double) -> String { fixed(value, digits) }
        // An entry undefined in both runs is not "within tolerance": say how many there are.
        let undefined =
            undefinedInBoth == 0
            ? ""
            : "\(undefinedInBoth) undefined (n/a) in both runs: rows whose every own-task denominator is ≤ 0.\n"
        guard !moved.isEmpty else {
            guard undefinedInBoth > 0 else { return "All \(checked) entries within tolerance: none \(rule).\n" }
            return "All \(checked - undefinedInBoth) entries defined in both runs within tolerance: none \(rule). "
                + undefined
        }
        var lines = [
            "\(moved.count) of \(checked) entries \(rule):", "",
            "| group | loss task (i) | step task (j) | baseline | candidate | change | \(useIntervals ? "accepted range" : "baseline interval") |",
            "| --- | --- | --- | ---: | ---: | ---: | --- |",
        ]
        for m in moved {
            let interval =
                m.baselineLow.flatMap { low in
                    m.baselineHigh.flatMap { high in low.isNaN || high.isNaN ? nil : "[\(number(low)), \(number(high))]" }
                } ?? "—"
            lines.append(
                "| \(cell(m.group)) | \(cell(m.lossTask)) | \(cell(m.stepTask)) | \(number(m.baseline)) | "
                    + "\(number(m.candidate)) | \(Self.change(m.change, digits)) | \(interval) |")
        }
        return lines.joined(separator: "\n") + "\n" + (undefined.isEmpty ? "" : "\n" + undefined)
    }

    /// A signed change at `digits` decimals, or in scientific notation (`+4.0e-15`) when those
    /// decimals would show a change that moved as zero.
    static func change(_ value: Double, _ digits: Int) -> String {
        let text = signed(value, digits)
        guard value != 0, value.isFinite, !text.contains(where: { ("1"..."9").contains($0) }) else { return text }
        return String(format: "%+.1e", value)
    }
}

/// The regression check: which interference entries of `candidate` moved away from `baseline`.
///
/// Every group and entry `I[i, j]` is compared. Without intervals an entry moved when
/// `|candidate − baseline| > tolerance`; with `useIntervals` when the candidate lies outside the
/// baseline's bootstrap interval widened by `tolerance` on both sides (`tolerance = 0`: the interval
/// itself), the interval first stretched to hold the baseline's own value: a percentile interval
/// can miss its point estimate (one near-zero own-task denominator can carry a mean of ratios), and
/// a candidate equal to the baseline is never a regression; where a bound is undefined (NaN: no
/// replicate defined the entry) the range is the value itself. An entry undefined (NaN) on exactly
/// one side moved; on both sides it did not.
///
/// - Throws: `.incompatible` when the runs have different tasks (names or order), group sets or
///   metrics, or intervals are requested and the baseline has none; `.invalidOptions` for a negative
///   or non-finite tolerance.
public func compare(
    baseline: InterferenceAnalysis, candidate: InterferenceAnalysis, tolerance: Double,
    useIntervals: Bool = false
) throws(ReportError) -> CheckResult {
    guard tolerance >= 0, tolerance.isFinite else {
        throw .invalidOptions(reason: "tolerance must be a non-negative number, got \(tolerance)")
    }
    guard baseline.tasks == candidate.tasks else {
        throw .incompatible(
            reason: "baseline tasks \(baseline.tasks), candidate tasks \(candidate.tasks)")
    }
    guard baseline.metric == candidate.metric else {
        throw .incompatible(
            reason:
                "baseline metric \(baseline.metric.rawValue), candidate metric \(candidate.metric.rawValue)"
        )
    }
    let baseGroups = baseline.groups.map(\.name)
    let candGroups = candidate.groups.map(\.name)
    guard Set(baseGroups) == Set(candGroups) else {
        let missing = baseGroups.filter { !candGroups.contains($0) }
        let extra = candGroups.filter { !baseGroups.contains($0) }
        throw .incompatible(
            reason: "groups differ (only in baseline: \(missing); only in candidate: \(extra))")
    }
    if useIntervals, let g = baseline.groups.first(where: { $0.interval == nil }) {
        throw .incompatible(reason: "baseline group '\(g.name)' has no bootstrap interval")
    }
    let tasks = baseline.tasks
    var moved: [CheckResult.MovedEntry] = []
    var checked = 0
    var undefinedInBoth = 0
    for b in baseline.groups {
        let c = candidate.group(named: b.name)!
        for i in tasks.indices {
            for j in tasks.indices {
                checked += 1
                let x = b.interference[i, j]
                let y = c.interference[i, j]
                var low: Double?
                var high: Double?
                let isMoved: Bool
                if x.isNaN || y.isNaN {
                    isMoved = x.isNaN != y.isNaN
                    if !isMoved { undefinedInBoth += 1 }
                } else if useIntervals, let ci = b.interval {
                    // Double.minimum/maximum skip a NaN bound (no replicate defined the entry): the
                    // range is then the value itself, widened by the tolerance.
                    low = Double.minimum(ci.low[i][j], x)
                    high = Double.maximum(ci.high[i][j], x)
                    isMoved = !(y >= low! - tolerance && y <= high! + tolerance)
                } else {
                    isMoved = abs(y - x) > tolerance
                    low = b.interval?.low[i][j]
                    high = b.interval?.high[i][j]
                }
                if isMoved {
                    moved.append(
                        CheckResult.MovedEntry(
                            group: b.name, lossTask: tasks[i], stepTask: tasks[j], baseline: x,
                            candidate: y,
                            baselineLow: low, baselineHigh: high))
                }
            }
        }
    }
    return CheckResult(
        moved: moved, checked: checked, undefinedInBoth: undefinedInBoth, tolerance: tolerance,
        useIntervals: useIntervals)
}

/// `compare` on two interference files.
/// - Throws: `.input` when a file cannot be read (missing, not HDF5, another format or version),
///   `.unusableValue` for a value the analysis never writes (`checkValues(of:file:)`),
///   `.incompatibleFiles` naming both files where `compare(baseline:candidate:…)` throws
///   `.incompatible`, and its other errors.
public func compare(
    baselineFile: URL, candidateFile: URL, tolerance: Double, useIntervals: Bool = false
)
    throws(ReportError) -> CheckResult
{
    let baseline: InterferenceAnalysis
    let candidate: InterferenceAnalysis
    do throws(InterferenceError) {
        baseline = try InterferenceFile.read(baselineFile)
        candidate = try InterferenceFile.read(candidateFile)
    } catch {
        throw .input(error)
    }
    try checkValues(of: baseline, file: baselineFile.path)
    try checkValues(of: candidate, file: candidateFile.path)
    do {
        return try compare(
            baseline: baseline, candidate: candidate, tolerance: tolerance, useIntervals: useIntervals)
    } catch {
        guard case .incompatible(let reason) = error else { throw error }
        throw .incompatibleFiles(baseline: baselineFile.path, candidate: candidateFile.path, reason: reason)
    }
}

import Interference

/// A markdown report of one or more runs that a researcher can paste into a paper.
///
/// Layout: a header naming the metric and the runs; a summary table (per group and run: mean
/// off-diagonal I, most negative entry, mean cross-task conflict fraction, flagged denominators);
/// then per group a Table-1-style matrix — rows = the task whose loss changes, columns = the task
/// that steps, one column block per run and, for every later run, a block with it minus the first
/// (e.g. MoE − dense: the first run is the baseline) — followed by the heatmap images; then, when a run holds one, the exact
/// look-ahead check (λ, pairs, exact vs first-order I and their relative difference); finally the
/// routing statistics given.
/// Output is deterministic (fixed-point numbers, POSIX formatting, the runs' group order).
public struct MarkdownReport: Sendable {
    /// How an interval is written next to a value.
    public enum IntervalStyle: String, Sendable, CaseIterable {
        /// `0.604 ± 0.051`: the half-width `(high − low)/2` of the percentile interval.
        case plusMinus
        /// `0.604 [0.552, 0.650]`: the interval itself (percentile intervals need not be symmetric).
        case bracket
    }

    /// The runs, one column block each; the first is the baseline the others are compared with.
    public let runs: [InterferenceAnalysis]
    /// The groups shown, in order.
    public let groups: [String]
    public var intervalStyle: IntervalStyle
    /// Routing statistics to print: by default every MoE run's own table (`RoutingStatistics.of`).
    public var routing: [RoutingStatistics]
    /// Folder (relative to the report) holding the heatmaps named
    /// `HeatmapSVG.fileName(report:run:group:)`; nil: no image links.
    public var heatmapDirectory: String?
    /// The report's own name (its file's stem, e.g. `report`), which starts every heatmap's name so
    /// that reports written to one folder keep their own heatmaps; "" for none.
    public var heatmapPrefix = ""
    /// The report's top-level heading.
    public var title: String
    /// Decimal places of every value.
    public var digits: Int

    /// - Parameters:
    ///   - runs: one or more analyses with the same tasks (in the same order) and metric.
    ///   - groups: the groups to show; nil = every group of the first run, then the later runs' others.
    /// - Throws: `.invalidOptions` for no run or no group to show, `.incompatible` for different
    ///   tasks or metrics or a later run without a group in common with the first,
    ///   `.unknownGroup` for a selected group no run holds, `.sameLabel` for two
    ///   runs with one label and `.clashingHeatmaps` for any other two heatmaps with one file name.
    public init(
        runs: [InterferenceAnalysis], groups: [String]? = nil,
        intervalStyle: IntervalStyle = .plusMinus,
        routing: [RoutingStatistics]? = nil, heatmapDirectory: String? = nil,
        title: String = "Task interference", digits: Int = 3
    ) throws(ReportError) {
        guard let baseline = runs.first else {
            throw .invalidOptions(reason: "a report takes one run or more, got none")
        }
        for run in runs.dropFirst() {
            guard baseline.tasks == run.tasks else {
                throw .incompatible(reason: "tasks \(baseline.tasks) and \(run.tasks) differ")
            }
            guard baseline.metric == run.metric else {
                throw .incompatible(
                    reason:
                        "metrics \(baseline.metric.rawValue) and \(run.metric.rawValue) differ")
            }
            // A run compared with the first needs a group in common with it.
            let (first, later) = (baseline.groups.map(\.name), run.groups.map(\.name))
            guard !first.isEmpty, !later.isEmpty, !Set(first).isDisjoint(with: later) else {
                throw .incompatible(reason: "the runs share no group (first: \(first); later: \(later))")
            }
        }
        var all: [String] = []
        for run in runs { for g in run.groups where !all.contains(g.name) { all.append(g.name) } }
        if let groups {
            for g in groups where !all.contains(g) { throw .unknownGroup(g) }
            self.groups = groups
        } else {
            self.groups = all
        }
        guard !self.groups.isEmpty else { throw .invalidOptions(reason: "no group to report") }
        try Self.checkHeatmapNames(runs: runs, groups: self.groups)
        self.runs = runs
        self.intervalStyle = intervalStyle
        self.routing = routing ?? RoutingStatistics.of(runs)
        self.heatmapDirectory = heatmapDirectory
        self.title = title
        self.digits = digits
    }

    var tasks: [String] { runs[0].tasks }

    func label(_ k: Int) -> String { Self.label(of: runs[k], index: k) }

    /// A run's name in the report: its label, or "run k" (1-based) for an unlabelled one.
    static func label(of run: InterferenceAnalysis, index k: Int) -> String {
        run.label.isEmpty ? "run \(k + 1)" : run.label
    }

    /// Every heatmap needs a file of its own: two with one name would silently overwrite each other.
    private static func checkHeatmapNames(runs: [InterferenceAnalysis], groups: [String]) throws(ReportError) {
        var labels = Set<String>()
        for run in runs where !run.label.isEmpty {
            guard labels.insert(run.label).inserted else { throw .sameLabel(run.label) }
        }
        var names = Set<String>()
        for (k, run) in runs.enumerated() {
            for group in groups where run.group(named: group) != nil {
                let name = HeatmapSVG.fileName(run: label(of: run, index: k), group: group)
                guard names.insert(name).inserted else { throw .clashingHeatmaps(fileName: name) }
            }
        }
    }

    /// The whole report, ending with a newline.
    public func render() -> String {
        var out: [String] = []
        out.append("# \(title)")
        out.append("")
        out.append(contentsOf: preamble())
        out.append("")
        out.append(contentsOf: summary())
        for group in groups {
            out.append("")
            out.append(contentsOf: section(for: group))
        }
        if runs.contains(where: { run in run.groups.contains { $0.lookAhead != nil } }) {
            out.append("")
            out.append(contentsOf: lookAheadSection())
        }
        if !routing.isEmpty {
            out.append("")
            out.append(contentsOf: routingSection())
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The heatmaps the report links to: one per run and shown group, named
    /// `HeatmapSVG.fileName(report:run:group:)`, each on the colour scale shared by all of them (the largest
    /// |I| shown that is not marked †, at least 1) so that colours compare across runs and layers.
    public func heatmaps() -> [(fileName: String, svg: String)] {
        // The shared scale leaves out values outside their own intervals (†): one sample can carry
        // such a value far beyond the rest, and every other cell would fade. They saturate instead.
        var largest = 1.0
        for run in runs {
            for name in groups {
                guard let g = run.group(named: name) else { continue }
                let misses = IntervalMiss.misses(in: g, digits: digits)
                for (i, row) in g.interference.values.enumerated() {
                    for (j, v) in row.enumerated() where v.isFinite && !misses.contains(where: { $0.i == i && $0.j == j }) {
                        largest = max(largest, abs(v))
                    }
                }
            }
        }
        var out: [(fileName: String, svg: String)] = []
        for (k, run) in runs.enumerated() {
            for name in groups {
                guard let g = run.group(named: name) else { continue }
                var map = HeatmapSVG(run: run, group: g, scale: largest, intervalDigits: digits)
                map.title = "\(label(k)) · \(name)"
                out.append((HeatmapSVG.fileName(report: heatmapPrefix, run: label(k), group: name), map.render()))
            }
        }
        return out
    }

    // MARK: - Parts

    private func preamble() -> [String] {
        let first = runs[0]
        var lines = [
            "Interference `I[i, j]` (Uni-Perceiver-MoE, Table 1): the \(first.metric.rawValue) change of task *i*'s "
                + "loss when task *j* takes a unit gradient step, divided per sample by the change from task *i*'s own "
                + "step, averaged over task *i*'s samples: the official notebook's procedure, except that a sample "
                + "whose own loss change is ≤ 0 is left out of its row and counted as *flagged*, where the notebook "
                + "would divide by it. Rows: the task whose "
                + "loss changes; columns: the task that steps. `I > 0`: *j* helps *i*; `I < 0`: *j* interferes with *i*; "
                + "the diagonal is 1. A sample's *own loss change* is how much a unit step along another same-task "
                + "mini-batch's normalised gradient lowers its loss to first order, `⟨g_i(a)/‖g_i(a)‖, g_i(b)⟩` "
                + "averaged over a ≠ b (loss units per unit step; ≤ 0: the step does not lower it). *Cross-task conflict fraction*: the share of pairs of gradients "
                + "from two different tasks whose cosine is negative, over all such pairs. *Flagged "
                + "denominators*: the flagged samples of all tasks together.",
            "",
            "Tasks: \(tasks.map { "`\($0)`" }.joined(separator: ", ")); samples per task: \(first.layout.samplesPerTask).",
            "",
        ]
        for (k, run) in runs.enumerated() {
            var parts = ["**\(label(k))**"]
            if !run.kind.isEmpty { parts.append("kind \(run.kind)") }
            if !run.probePath.isEmpty { parts.append("probe `\(run.probePath)`") }
            if !run.excludedSamples.isEmpty {
                parts.append(
                    "\(run.excludedSamples.count) mini-batch indices excluded from every task for "
                        + "non-finite gradients (\(run.excludedSamples.map(String.init).joined(separator: ", ")))"
                )
            }
            if run.bootstrapReplicates > 0 {
                let pct = fixed(run.confidence * 100, 0)
                parts.append(
                    "\(pct) % bootstrap percentile intervals, \(run.bootstrapReplicates) replicates, seed \(run.seed)"
                )
            } else {
                parts.append("no intervals")
            }
            lines.append("- " + parts.joined(separator: "; "))
        }
        switch intervalStyle {
        case .plusMinus:
            lines += [
                "",
                "Cells: `value ± half-width of the interval`. A percentile interval need not be centred on "
                    + "the value, so read `±` as a width, not as bounds: an interval can hold 0 although "
                    + "`value − half-width` is positive (`interference report --intervals bracket` prints it whole; "
                    + "the summary counts the intervals that exclude 0).",
            ]
        case .bracket: lines += ["", "Cells: `value [low, high]`."]
        }
        if runs.count > 1 {
            lines[lines.count - 1] +=
                " The differences between runs have no interval of their own: the runs are independent, so a "
                + "difference is only evidence of a change where it exceeds both runs' interval widths."
        }
        let shown = groups.flatMap { name in runs.compactMap { $0.group(named: name) } }
        if shown.contains(where: { !IntervalMiss.misses(in: $0, digits: digits).isEmpty }) {
            lines[lines.count - 1] +=
                " † marks a value outside its own interval (see the note under its table), and a summary mean or difference that includes one."
        }
        if shown.contains(where: { !influences($0).isEmpty }) {
            lines[lines.count - 1] +=
                " ‡ marks a value that rests on one sample (leaving it out moves the value by more than "
                + "\(fixed(OneSampleInfluence.threshold, 1)); see the note under its table), and a summary mean or difference that includes one."
        }
        return lines
    }

    private func summary() -> [String] {
        var lines = [
            "## Summary", "",
            "| group | run | mean off-diagonal I | most negative I (loss ← step) | off-diagonal intervals excluding 0 | cross-task conflict fraction | flagged denominators |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for name in groups {
            for k in runs.indices {
                guard let g = runs[k].group(named: name) else { continue }
                let m = g.interference
                let worst =
                    m.mostNegative.map {
                        "\(fixed($0.value, digits))\(dagger(g, $0.i, $0.j)) (\(tasks[$0.i]) ← \(tasks[$0.j]))"
                    } ?? "n/a"
                let flagged = m.nonPositiveDenominators.reduce(0, +)
                let meanMark = meanMarks(g)
                lines.append(
                    "| \(cell(name)) | \(cell(label(k))) | \(fixed(m.offDiagonalMean, digits))\(meanMark) | \(worst) | "
                        + "\(Self.excludingZero(g)) | \(fixed(g.agreement.meanCrossTaskConflict, digits)) | \(flagged) |")
            }
        }
        return lines
    }

    /// "k of m": the off-diagonal entries whose interval lies wholly above or below 0, of those with
    /// an interval; "–" without intervals. Which effects the data tell apart from none.
    static func excludingZero(_ g: GroupAnalysis) -> String {
        guard let ci = g.interval else { return "–" }
        var defined = 0
        var excluding = 0
        for i in ci.low.indices {
            for j in ci.low[i].indices where i != j && ci.low[i][j].isFinite && ci.high[i][j].isFinite {
                defined += 1
                if ci.low[i][j] > 0 || ci.high[i][j] < 0 { excluding += 1 }
            }
        }
        return "\(excluding) of \(defined)"
    }

    private func valueCell(_ g: GroupAnalysis, _ i: Int, _ j: Int) -> String {
        let v = g.interference[i, j]
        guard let ci = g.interval, i != j, v.isFinite else {
            return fixed(v, digits) + (i != j && v.isFinite ? dagger(g, i, j) : "")
        }
        switch intervalStyle {
        case .plusMinus:
            return "\(fixed(v, digits))\(dagger(g, i, j)) ± \(fixed((ci.high[i][j] - ci.low[i][j]) / 2, digits))"
        case .bracket:
            return
                "\(fixed(v, digits))\(dagger(g, i, j)) [\(fixed(ci.low[i][j], digits)), \(fixed(ci.high[i][j], digits))]"
        }
    }

    /// True when `flagged` of `n` own-task changes are non-positive at least about as often as they
    /// would be for gradients with no direction in common: each own change `s[i,i][b]` is then as
    /// likely negative as positive, so the count is roughly Binomial(n, ½) (roughly: the changes share
    /// gradients and are not independent; simulated at n = 50 its spread is about 1.25× the
    /// binomial's), and n/2 − √n is two of its standard deviations below half. A row with a shared
    /// direction flags fewer. Not for n < 10, where even none flagged fits that count, nor for a row
    /// whose every sample is flagged (it has no values).
    static func flaggedLikeNoise(_ flagged: Int, of n: Int) -> Bool {
        n >= 10 && flagged > 0 && flagged < n && Double(flagged) >= Double(n) / 2 - Double(n).squareRoot()
    }

    /// "†" when entry (i, j) of `g` lies outside its interval, else "‡" when it rests on one sample,
    /// else "".
    private func dagger(_ g: GroupAnalysis, _ i: Int, _ j: Int) -> String {
        if IntervalMiss.misses(in: g, digits: digits).contains(where: { $0.i == i && $0.j == j }) { return "†" }
        return influences(g).contains { $0.i == i && $0.j == j } ? "‡" : ""
    }

    /// The entries of `g` that rest on one sample and are not already † (whose note names the sample
    /// that carries a value outside its interval).
    private func influences(_ g: GroupAnalysis) -> [OneSampleInfluence] {
        let misses = IntervalMiss.misses(in: g, digits: digits)
        return OneSampleInfluence.find(in: g.interference).filter { r in
            !misses.contains { $0.i == r.i && $0.j == r.j }
        }
    }

    /// The marks of a summary mean over the off-diagonal entries: "†" and/or "‡" when one of them has it.
    private func meanMarks(_ g: GroupAnalysis) -> String {
        (IntervalMiss.misses(in: g, digits: digits).isEmpty ? "" : "†") + (influences(g).isEmpty ? "" : "‡")
    }

    private func section(for name: String) -> [String] {
        let present = runs.indices.filter { runs[$0].group(named: name) != nil }
        let first = present.first.flatMap { runs[$0].group(named: name) }
        var lines = ["## \(name)", ""]
        func shown(_ parameters: [String]) -> String { parameters.prefix(4).map { "`\($0)`" }.joined(separator: ", ") }
        func listed(_ parameters: [String]) -> String {
            shown(parameters) + (parameters.count > 4 ? ", … (\(parameters.count) in all)" : "")
        }
        // One list when the runs pool the same tensors; else each run's count (an MoE layer holds
        // its experts and gates where the dense layer holds one tensor), or each run's list.
        let lists = present.map { runs[$0].group(named: name)!.group.parameters }
        if let first, !first.group.parameters.isEmpty {
            let head = Array(first.group.parameters.prefix(4))
            if lists.allSatisfy({ $0 == first.group.parameters }) {
                lines.append("Parameters: \(listed(first.group.parameters)).")
            } else if lists.allSatisfy({ $0.count > 4 && Array($0.prefix(4)) == head }) {
                let counts = zip(present, lists).map { "\(label($0)): \($1.count) in all" }
                lines.append("Parameters: \(shown(head)), … (\(counts.joined(separator: "; "))).")
            } else {
                let each = zip(present, lists).map { "\(label($0)): \(listed($1))" }
                lines.append("Parameters: \(each.joined(separator: "; ")).")
            }
            lines.append("")
        }
        var header = ["loss ↓ / step →"]
        var align = ["---"]
        for k in present {
            for t in tasks {
                // Named whenever the report has several runs: a group only one of them holds must
                // still say whose values these are.
                header.append(runs.count > 1 ? "\(label(k)): \(t)" : t)
                align.append("---:")
            }
        }
        // Every later run minus the baseline, where both hold the group.
        let compared = present.first == 0 ? Array(present.dropFirst()) : []
        for k in compared {
            for t in tasks {
                header.append("\(label(k)) − \(label(0)): \(t)")
                align.append("---:")
            }
        }
        lines.append("| " + header.map(cell).joined(separator: " | ") + " |")
        lines.append("| " + align.joined(separator: " | ") + " |")
        for i in tasks.indices {
            var row = [tasks[i]]
            for k in present {
                let g = runs[k].group(named: name)!
                for j in tasks.indices { row.append(valueCell(g, i, j)) }
            }
            for k in compared {
                let a = runs[0].group(named: name)!.interference
                let b = runs[k].group(named: name)!.interference
                // A difference with a marked value in it inherits the mark: it is no more stable.
                let marks = { (j: Int) in
                    Set([self.dagger(self.runs[0].group(named: name)!, i, j), self.dagger(self.runs[k].group(named: name)!, i, j)])
                        .sorted().joined()
                }
                for j in tasks.indices { row.append(signed(b[i, j] - a[i, j], digits) + marks(j)) }
            }
            lines.append("| " + row.map(cell).joined(separator: " | ") + " |")
        }
        var notes: [String] = []
        for k in present {
            let g = runs[k].group(named: name)!
            let n = runs[k].layout.samplesPerTask
            for (i, count) in g.interference.nonPositiveDenominators.enumerated() where count > 0 {
                var note =
                    "\(label(k)): \(count) of \(n) `\(tasks[i])` samples had a "
                    + "non-positive own loss change and were left out of row `\(tasks[i])`."
                // Zero-norm rows (no gradient at all) are flagged too, but are not noise.
                let zero = i < g.agreement.zeroNormRows.count ? min(g.agreement.zeroNormRows[i], count) : 0
                if Self.flaggedLikeNoise(count - zero, of: n - zero) {
                    note +=
                        " Gradients with no direction in common would flag about half (within two standard "
                        + "deviations: N/2 − √N or more, here \(Int((Double(n - zero) / 2 - Double(n - zero).squareRoot()).rounded(.up))) "
                        + "or more), so the row's values are mostly noise; larger mini-batches "
                        + "(`probe --batch-size`) average more of it out."
                }
                notes.append(note)
            }
        }
        if !notes.isEmpty {
            lines.append("")
            lines.append(contentsOf: notes.map { "> **Flagged:** \($0)" })
        }
        var outside: [String] = []
        var carried = false
        for k in present {
            let g = runs[k].group(named: name)!
            for miss in IntervalMiss.misses(in: g, digits: digits) {
                var text =
                    "\(label(k)): `\(tasks[miss.i])` ← `\(tasks[miss.j])` is \(fixed(miss.value, digits)), its "
                    + "interval [\(fixed(miss.low, digits)), \(fixed(miss.high, digits))]"
                if let c = miss.carrier {
                    carried = true
                    text +=
                        "; sample \(c.sample) of `\(tasks[miss.i])`, whose own loss change is "
                        + "\(scientific(c.ownChange)) (median \(scientific(c.medianOwnChange))), has the ratio "
                        + "\(fixed(c.ratio, digits)); without it the mean is \(fixed(c.valueWithout, digits))"
                }
                outside.append(text)
            }
        }
        if !outside.isEmpty {
            lines.append("")
            lines.append(
                "> **†** Outside its own interval: " + outside.joined(separator: "; ") + ". "
                    + (carried
                        ? "The metric is a mean of per-sample ratios with no guard against a small own-task "
                            + "loss change (as in the official notebook), so one such sample can carry the mean. "
                            + "Resampling recomputes that sample's leave-one-out denominator over other samples, "
                            + "where it rarely stays as close to zero, so the bootstrap does not reproduce the "
                            + "value. Neither the value nor the interval is then a stable summary."
                        : "No single sample accounts for it; with few bootstrap replicates a value can miss "
                            + "its interval by chance."))
        }
        var resting: [String] = []
        for k in present {
            let g = runs[k].group(named: name)!
            for r in influences(g) {
                resting.append(
                    "\(label(k)): `\(tasks[r.i])` ← `\(tasks[r.j])` is \(fixed(r.value, digits)); without sample "
                        + "\(r.farthest.sample) of `\(tasks[r.i])` (own loss change \(scientific(r.farthest.ownChange)), median "
                        + "\(scientific(r.farthest.medianOwnChange))) it is \(fixed(r.farthest.valueWithout, digits))")
            }
        }
        if !resting.isEmpty {
            lines.append("")
            lines.append(
                "> **‡** Rests on one sample (leaving it out moves the value by more than "
                    + "\(fixed(OneSampleInfluence.threshold, 1)), half of a task's own effect): "
                    + resting.joined(separator: "; ") + ". A sample whose own change is close to 0 divides its "
                    + "cross-task changes by almost nothing, so in the mean of ratios it can outweigh all the others.")
        }
        var consistency: [String] = []
        for k in present {
            let g = runs[k].group(named: name)!
            let values = zip(tasks, g.agreement.consistency).map { "\($0) \(fixed($1, digits))" }
            consistency.append("\(label(k)): " + values.joined(separator: ", "))
        }
        lines.append("")
        lines.append(
            "Gradient consistency (mean within-task cosine): " + consistency.joined(separator: "; ")
                + ".")
        if let dir = heatmapDirectory {
            lines.append("")
            let images = present.map { k in
                "![\(label(k)) \(name)](\(dir.isEmpty ? "" : dir + "/")\(HeatmapSVG.fileName(report: heatmapPrefix, run: label(k), group: name)))"
            }
            lines.append(images.joined(separator: " "))
        }
        return lines
    }
}

import Foundation
import Interference
import Reporter
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite struct MarkdownReportTests {
    @Test func denseAndMoESideBySide() throws {
        let report = try MarkdownReport(
            runs: [ReportFixtures.dense(), ReportFixtures.moe()], routing: [ReportFixtures.routing],
            heatmapDirectory: "heatmaps")
        let text = report.render()
        expectSnapshot(text, named: "dense-vs-moe.md")
        #expect(text.contains("MoE − dense: cls"))
        #expect(text.contains("**Flagged:**"))
        #expect(text == report.render())
        // Every linked heatmap is produced, on one shared colour scale.
        let maps = report.heatmaps()
        #expect(
            maps.map(\.fileName) == [
                "dense-encoder.layers.3.svg", "dense-encoder.layers.11.svg",
                "MoE-encoder.layers.3.svg",
                "MoE-encoder.layers.11.svg",
            ])
        for map in maps { #expect(text.contains("heatmaps/\(map.fileName)")) }
        #expect(maps.allSatisfy { $0.svg.contains(">+2.22</text>") })
    }

    @Test("three runs: one block each, and each later run minus the first; the parameters per run when they differ")
    func threeRuns() throws {
        let dense = try ReportFixtures.dense()
        let moe = try ReportFixtures.moe()
        var other = try ReportFixtures.moe()
        other.label = "MoE-2"
        for k in other.groups.indices {
            other.groups[k].interference.values[2][0] += 0.25
            other.groups[k].group.parameters += ["\(other.groups[k].name).ffn.dense2.experts.0.weight"]
        }
        let text = try MarkdownReport(runs: [dense, moe, other]).render()
        let header = try #require(text.split(separator: "\n").first { $0.hasPrefix("| loss ↓ / step →") })
        for block in ["dense: cls", "MoE: cls", "MoE-2: cls", "MoE − dense: cls", "MoE-2 − dense: cls"] {
            #expect(header.contains(block), "\(header)")
        }
        #expect(!header.contains("MoE-2 − MoE"))
        // The third run's difference to the first is the second's plus what was added to it.
        let layer = dense.groups[0].name
        let d = dense.group(named: layer)!.interference[2, 0]
        let row = try #require(
            text.split(separator: "\n").first { $0.hasPrefix("| \(dense.tasks[2]) |") }?.split(separator: "|").map {
                $0.trimmingCharacters(in: .whitespaces)
            })
        let moeMinus = moe.group(named: layer)!.interference[2, 0] - d
        // (A difference inherits a † or ‡ of either value it is taken from.)
        #expect(row[row.count - 3].trimmingCharacters(in: CharacterSet(charactersIn: "†‡")) == String(format: "%+.3f", moeMinus + 0.25), "\(row)")
        #expect(text.contains("Parameters: dense: `\(layer).ffn.dense2.weight`; MoE: `\(layer).ffn.dense2.weight`; MoE-2: "), "\(text)")
        // Same first tensors, more of them in the MoE: one list, each run's count.
        var longDense = dense
        var longMoE = moe
        let names = (0..<5).map { "\(layer).t\($0)" }
        longDense.groups[0].group.parameters = names
        longMoE.groups[0].group.parameters = names + ["\(layer).experts.0", "\(layer).experts.1"]
        let counted = try MarkdownReport(runs: [longDense, longMoE], groups: [layer]).render()
        #expect(counted.contains("Parameters: `\(layer).t0`, `\(layer).t1`, `\(layer).t2`, `\(layer).t3`, … (dense: 5 in all; MoE: 7 in all)."), "\(counted)")
        var twin = other
        twin.label = "dense"
        #expect(throws: ReportError.sameLabel("dense")) { try MarkdownReport(runs: [dense, moe, twin]) }
    }

    @Test func oneRunWithBracketIntervals() throws {
        let report = try MarkdownReport(
            runs: [ReportFixtures.dense()], groups: ["encoder.layers.11"], intervalStyle: .bracket)
        expectSnapshot(report.render(), named: "dense-layer11-bracket.md")
    }

    /// A value outside its own bootstrap interval (the demo met one: -20.5 with the interval
    /// [-3.4, 3.5], which `± half-width` printed as "-20.537 ± 3.456") is marked in its cell and in
    /// the summary, and the note under its table gives the interval whole, in either style.
    @Test func valueOutsideItsIntervalIsMarked() throws {
        var dense = try ReportFixtures.dense()
        let plain = try MarkdownReport(runs: [dense]).render()
        #expect(!plain.contains("†"))
        var g = dense.groups[0]
        let ci = try #require(g.interval)
        // A miss the printed digits cannot show is not marked (it would read "0.120† [0.120, …]").
        var hairline = dense
        hairline.groups[0].interference.values[1][0] = ci.low[1][0] - 0.0004
        #expect(!(try MarkdownReport(runs: [hairline]).render().contains("†")))
        #expect(try MarkdownReport(runs: [hairline], digits: 4).render().contains("†"))
        g.interference.values[1][0] = ci.low[1][0] - 20  // the most negative entry, below its interval
        dense.groups[0] = g
        let value = String(format: "%.3f", g.interference[1, 0])
        let interval = String(format: "[%.3f, %.3f]", ci.low[1][0], ci.high[1][0])
        for style in MarkdownReport.IntervalStyle.allCases {
            let text = try MarkdownReport(runs: [dense], intervalStyle: style).render()
            let lines = text.split(separator: "\n").map(String.init)
            let row = try #require(lines.first { $0.hasPrefix("| mlm |") })
            #expect(row.contains("| \(value)† "), "\(row)")
            #expect(row.components(separatedBy: "†").count == 2, "only the moved cell: \(row)")
            let summary = try #require(lines.first { $0.hasPrefix("| encoder.layers.3 | dense |") })
            #expect(summary.contains("\(value)† (mlm ← cls)"), "\(summary)")
            #expect(summary.contains("| \(String(format: "%.3f", g.interference.offDiagonalMean))† |"), "\(summary)")
            let otherSummary = try #require(lines.first { $0.hasPrefix("| encoder.layers.11 | dense |") })
            #expect(!otherSummary.contains("†"), "\(otherSummary)")
            #expect(lines.contains { $0.hasPrefix("Cells:") && $0.contains("† marks a value outside its own interval (see the note under its table), and a summary mean or difference that includes one.") })
            let note = try #require(lines.first { $0.hasPrefix("> **†**") })
            #expect(note.contains("dense: `mlm` ← `cls` is \(value), its interval \(interval)"), "\(note)")
            // An edited value that no sample's ratio accounts for gets the neutral explanation.
            #expect(note.contains("No single sample accounts for it") && !note.contains("sample 0"), "\(note)")
            // Only under the group that holds it.
            #expect(text.components(separatedBy: "## encoder.layers.11").last?.contains("> **†**") == false)
        }
        // A report of the other group alone promises no †.
        #expect(!(try MarkdownReport(runs: [dense], groups: ["encoder.layers.11"]).render().contains("†")))
        // The heatmap marks the same cell, and says what † means; the other group's has none.
        let svg = HeatmapSVG(run: dense, group: dense.groups[0]).render()
        #expect(svg.contains(">\(String(format: "%.2f", g.interference[1, 0]))†</text>"), "\(svg)")
        #expect(svg.components(separatedBy: "†").count == 3 && svg.contains("†: outside its own bootstrap interval"))
        #expect(!HeatmapSVG(run: dense, group: dense.groups[1]).render().contains("†"))
        // The report's shared colour scale leaves the † value out (it saturates): the scale is the
        // largest |I| of the other cells, not the moved one's.
        let others = dense.groups.flatMap { $0.interference.values.flatMap { $0 } }.filter(\.isFinite)
            .filter { $0 != g.interference[1, 0] }.map(abs).max()!
        let maps = try MarkdownReport(runs: [dense]).heatmaps()
        #expect(maps.allSatisfy { $0.svg.contains(">\(String(format: "%+.2f", max(1, others)))</text>") }, "\(others)")
        // The heatmaps mark what the report marks at its own digits: a miss of 0.0004 is marked at
        // 4 decimals, in the table and in the picture, and left in neither at 3.
        #expect(try MarkdownReport(runs: [hairline], digits: 4).heatmaps()[0].svg.contains("†"))
        #expect(!(try MarkdownReport(runs: [hairline]).heatmaps()[0].svg.contains("†")))
        // So does a heatmap drawn alone on its own scale.
        let own = g.interference.values.flatMap { $0 }.filter { $0.isFinite && $0 != g.interference[1, 0] }.map(abs).max()!
        #expect(svg.contains(">\(String(format: "%+.2f", max(1, own)))</text>"), "\(own)")
    }

    /// The real case, built: one `mlm` sample nearly orthogonal to the other `mlm` samples (its own
    /// change `s[mlm,mlm][b]` tiny but positive) and leaning along `cls`. Its ratio carries `I[mlm, cls]`,
    /// resampling does not reproduce it, and the note names the sample and the mean without it.
    @Test func oneSampleCarryingTheMeanIsNamed() throws {
        let n = ReportFixtures.samples
        var rows = ReportFixtures.rows(seed: 100, capSign: -0.7)
        let width = rows[0].count
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        // u: the mean of the other mlm samples' unit rows, which sample 0 of mlm (row n) is divided by.
        var u = [Double](repeating: 0, count: width)
        for a in (n + 1)..<(2 * n) {
            let norm = dot(rows[a], rows[a]).squareRoot()
            for k in 0..<width { u[k] += rows[a][k] / norm / Double(n - 1) }
        }
        var w = [Double](repeating: 0, count: width)  // the cls samples' sum
        for a in 0..<n { for k in 0..<width { w[k] += rows[a][k] } }
        let (uu, uw) = (dot(u, u), dot(u, w))
        let epsilon = 1e-4 * (dot(w, w) * uu).squareRoot()  // ⟨u, row⟩ = ε: tiny, positive
        rows[n] = (0..<width).map { w[$0] - uw / uu * u[$0] + epsilon / uu * u[$0] }
        let layout = try TaskLayout(tasks: ReportFixtures.tasks, samplesPerTask: n)
        let group = try GroupAnalysis(
            group: ParameterGroup(name: "g", parameters: ["g.weight"], layer: 0, role: "ffn.dense2"),
            gram: try GramMatrix(rows: rows), layout: layout, bootstrapReplicates: 200, seed: 17)
        let ci = try #require(group.interval)
        let value = group.interference[1, 0]
        try #require(!ci.contains(value, i: 1, j: 0), "the fixture must reproduce the case: \(value) in [\(ci.low[1][0]), \(ci.high[1][0])]")
        let run = InterferenceAnalysis(
            layout: layout, probePath: "p.h5", kind: "dense", label: "dense", bootstrapReplicates: 200, seed: 17,
            groups: [group])
        let text = try MarkdownReport(runs: [run]).render()
        let note = try #require(text.split(separator: "\n").first { $0.hasPrefix("> **†**") })
        #expect(note.contains("dense: `mlm` ← `cls` is \(String(format: "%.3f", value))"), "\(note)")
        #expect(note.contains("sample 0 of `mlm`, whose own loss change is "), "\(note)")
        #expect(note.contains("so one such sample can carry the mean"), "\(note)")
        // The mean without it, computed here from the stored per-sample changes, lies in the interval.
        let own = group.interference.delta[1][1]
        let cross = group.interference.delta[1][0]
        let others = (1..<n).filter { own[$0] > 0 }.map { cross[$0] / own[$0] }
        let without = others.reduce(0, +) / Double(others.count)
        #expect(note.contains("without it the mean is \(String(format: "%.3f", without))"), "\(note)")
        #expect(ci.low[1][0] <= without && without <= ci.high[1][0])
        // Both of the row's columns are † here, so no ‡ note repeats them. Without intervals there is
        // no †: both values rest on the sample (‡), marked in the cells and the summary mean, and the
        // note names the sample with each value without it.
        #expect(!text.contains("> **‡**"), "\(text)")
        let bare = try GroupAnalysis(
            group: ParameterGroup(name: "g", parameters: ["g.weight"], layer: 0, role: "ffn.dense2"),
            gram: try GramMatrix(rows: rows), layout: layout, bootstrapReplicates: 0, seed: 17)
        let bareRun = InterferenceAnalysis(
            layout: layout, probePath: "p.h5", kind: "dense", label: "dense", bootstrapReplicates: 0, seed: 17,
            groups: [bare])
        let bareText = try MarkdownReport(runs: [bareRun]).render()
        let capCross = group.interference.delta[1][2]
        let capWithout = (1..<n).filter { own[$0] > 0 }.map { capCross[$0] / own[$0] }.reduce(0, +) / Double(others.count)
        let resting = try #require(bareText.split(separator: "\n").first { $0.hasPrefix("> **‡** Rests on one sample") })
        for (column, value, without) in [("cls", group.interference[1, 0], without), ("cap", group.interference[1, 2], capWithout)] {
            #expect(
                resting.contains(
                    "dense: `mlm` ← `\(column)` is \(String(format: "%.3f", value)); without sample 0 of `mlm` (own loss change "
                        + "7.7e-03, median 5.8e+00) it is \(String(format: "%.3f", without))"),
                "\(resting)")
            #expect(bareText.contains("| \(String(format: "%.3f", value))‡ |"), "\(bareText)")
        }
        #expect(bareText.contains("‡ marks a value that rests on one sample"), "\(bareText)")
        let summaryRow = try #require(bareText.split(separator: "\n").first { $0.hasPrefix("| g | dense |") })
        #expect(summaryRow.contains("‡ |"), "\(summaryRow)")
        #expect(try MarkdownReport(runs: [bareRun]).heatmaps()[0].svg.contains("‡: rests on one sample"))
        // A column the sample does not move (exactly 0 with or without it, as an MoE's disjoint
        // experts give) is not marked.
        var still = bareRun
        for b in 0..<n { still.groups[0].interference.delta[1][2][b] = 0 }
        still.groups[0].interference.values[1][2] = 0
        let stillNote = try #require(
            try MarkdownReport(runs: [still]).render().split(separator: "\n").first { $0.hasPrefix("> **‡**") })
        #expect(stillNote.contains("`mlm` ← `cls`") && !stillNote.contains("`mlm` ← `cap`"), "\(stillNote)")
    }

    /// Row `mlm` of the first group rebuilt from hand-set per-sample changes: the first
    /// `ratios.count` samples with own change 1, cross change to `cls` the given ratio and to `cap` 1;
    /// the rest with own change −1 (left out of every mean).
    static func handSetRow(_ ratios: [Double]) throws -> InterferenceAnalysis {
        var dense = try ReportFixtures.dense()
        let n = ReportFixtures.samples
        var m = dense.groups[0].interference
        for j in 0..<3 {
            m.delta[1][j] = (0..<n).map { b in b < ratios.count ? (j == 0 ? ratios[b] : 1) : (j == 1 ? -1 : 0) }
            m.values[1][j] = j == 0 ? ratios.reduce(0, +) / Double(ratios.count) : 1
        }
        dense.groups[0].interference = m
        return dense
    }

    /// ‡ needs three kept samples: with two, "without the farthest" is one sample's ratio.
    @Test func restingOnOneSampleNeedsThreeKept() throws {
        var three = try Self.handSetRow([3, 1, 1])  // 5/3; without sample 0: 1
        three.groups[0].interval = nil
        let note = try #require(
            try MarkdownReport(runs: [three], groups: [three.groups[0].name]).render().split(separator: "\n")
                .first { $0.hasPrefix("> **‡**") })
        #expect(note.contains("`mlm` ← `cls` is 1.667; without sample 0 of `mlm`"), "\(note)")
        var two = try Self.handSetRow([3, 1])
        two.groups[0].interval = nil
        let text = try MarkdownReport(runs: [two], groups: [two.groups[0].name]).render()
        #expect(!text.contains("> **‡**") && !text.contains("2.000‡"), "\(text.split(separator: "\n").filter { $0.contains("‡") })")
    }

    /// A value outside its interval is put down to one sample only when the mean without that sample
    /// falls inside the interval, above as below.
    @Test func outsideItsIntervalBecauseOfOneSampleOnlyWhenTheRestIsInside() throws {
        // [3, 1, 1]: 1.667, without sample 0: 1. [−3, 1, 1]: −0.333, without sample 0: 1.
        for (ratios, low, high, named) in [
            ([3.0, 1, 1], 0.8, 1.2, true), ([3, 1, 1], 0.2, 0.5, false), ([3, 1, 1], 2, 2.5, false),
            ([-3, 1, 1], 0.8, 1.2, true), ([-3, 1, 1], 1.5, 2, false),
        ] {
            var run = try Self.handSetRow(ratios)
            var ci = try #require(run.groups[0].interval)
            (ci.low[1][0], ci.high[1][0]) = (low, high)
            run.groups[0].interval = ci
            let note = try #require(
                try MarkdownReport(runs: [run], groups: [run.groups[0].name]).render().split(separator: "\n")
                    .first { $0.hasPrefix("> **†**") })
            #expect(note.contains("`mlm` ← `cls` is \(String(format: "%.3f", ratios.reduce(0, +) / 3))"), "\(note)")
            #expect(note.contains("sample 0 of `mlm`") == named, "[\(low), \(high)]: \(note)")
            #expect(note.contains("No single sample accounts for it") == !named, "[\(low), \(high)]: \(note)")
        }
    }

    /// The summary counts the off-diagonal intervals that lie wholly on one side of 0.
    @Test func summaryCountsIntervalsExcludingZero() throws {
        var dense = try ReportFixtures.dense()
        var ci = try #require(dense.groups[0].interval)
        for i in 0..<3 { for j in 0..<3 where i != j { (ci.low[i][j], ci.high[i][j]) = (-1, 1) } }
        (ci.low[0][1], ci.high[0][1]) = (0.1, 0.3)
        (ci.low[2][0], ci.high[2][0]) = (-0.4, -0.01)
        (ci.low[1][2], ci.high[1][2]) = (.nan, .nan)
        // An interval that reaches 0 does not tell the effect from none.
        (ci.low[1][0], ci.high[1][0]) = (0, 0.5)
        (ci.low[2][1], ci.high[2][1]) = (-0.3, 0)
        dense.groups[0].interval = ci
        let text = try MarkdownReport(runs: [dense], groups: ["encoder.layers.3"]).render()
        #expect(text.contains("| 2 of 5 |"), "\(text)")
        dense.groups[0].interval = nil
        #expect(try MarkdownReport(runs: [dense], groups: ["encoder.layers.3"]).render().contains("| – |"))
    }

    /// A row flagged about as often as gradients with no shared direction would be (Binomial(N, ½):
    /// at least N/2 − √N of N) is called noise; one flagged less often is not.
    @Test func rowsFlaggedLikeNoiseAreCalledNoise() throws {
        var dense = try ReportFixtures.dense()
        dense.layout = try TaskLayout(tasks: ReportFixtures.tasks, samplesPerTask: 100)
        dense.groups[0].interference.nonPositiveDenominators = [40, 39, 0]
        let text = try MarkdownReport(runs: [dense], groups: ["encoder.layers.3"]).render()
        let notes = text.split(separator: "\n").filter { $0.hasPrefix("> **Flagged:**") }
        #expect(notes.count == 2, "\(notes)")
        let cls = try #require(notes.first { $0.contains("40 of 100 `cls`") })
        let mlm = try #require(notes.first { $0.contains("39 of 100 `mlm`") })
        #expect(cls.contains("no direction in common") && cls.contains("`probe --batch-size`"), "\(cls)")
        #expect(!mlm.contains("no direction in common"), "\(mlm)")
        // Not for a row with every sample flagged (it has no values), nor below 10 samples.
        dense.groups[0].interference.nonPositiveDenominators = [100, 0, 0]
        let all = try MarkdownReport(runs: [dense], groups: ["encoder.layers.3"]).render()
        #expect(all.contains("100 of 100 `cls`") && !all.contains("no direction in common"), "\(all)")
        var small = try ReportFixtures.dense()
        small.layout = try TaskLayout(tasks: ReportFixtures.tasks, samplesPerTask: 9)
        small.groups[0].interference.nonPositiveDenominators = [5, 0, 0]
        let nine = try MarkdownReport(runs: [small], groups: ["encoder.layers.3"]).render()
        #expect(nine.contains("5 of 9 `cls`") && !nine.contains("no direction in common"), "\(nine)")
        // From 10 samples on: N/2 − √N = 1.84, so 2 of 10 reads as noise and 1 of 10 does not.
        small.layout = try TaskLayout(tasks: ReportFixtures.tasks, samplesPerTask: 10)
        small.groups[0].interference.nonPositiveDenominators = [2, 1, 0]
        let ten = try MarkdownReport(runs: [small], groups: ["encoder.layers.3"]).render().split(separator: "\n")
        let two = try #require(ten.first { $0.contains("2 of 10 `cls`") })
        let one = try #require(ten.first { $0.contains("1 of 10 `mlm`") })
        #expect(two.contains("no direction in common") && !one.contains("no direction in common"), "\(ten)")
        dense.groups[0].interference.nonPositiveDenominators = [40, 39, 0]
        // Rows with no gradient at all are flagged but are not noise: 40 flagged, 30 of them zero.
        dense.groups[0].agreement.zeroNormRows = [30, 0, 0]
        let zeros = try MarkdownReport(runs: [dense], groups: ["encoder.layers.3"]).render()
        let clsZeros = try #require(zeros.split(separator: "\n").first { $0.contains("40 of 100 `cls`") })
        #expect(!clsZeros.contains("no direction in common"), "\(clsZeros)")
    }

    @Test func refusesIncompatibleRuns() throws {
        let dense = try ReportFixtures.dense()
        var other = try ReportFixtures.moe()
        other.layout = try TaskLayout(
            tasks: ["cls", "cap", "mlm"], samplesPerTask: ReportFixtures.samples)
        #expect(throws: ReportError.self) { try MarkdownReport(runs: [dense, other]) }
        #expect(throws: ReportError.unknownGroup("encoder.layers.5")) {
            try MarkdownReport(runs: [dense], groups: ["encoder.layers.5"])
        }
        #expect(throws: ReportError.self) { try MarkdownReport(runs: []) }
    }
}

/// Collects parse errors; `XMLParser` validates well-formedness.
final class XMLCheck: NSObject, XMLParserDelegate {
    var elements: [String] = []
    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?,
        attributes: [String: String] = [:]
    ) { elements.append(name) }
}

@Suite struct HeatmapTests {
    @Test func snapshotAndWellFormed() throws {
        let dense = try ReportFixtures.dense()
        let svg = HeatmapSVG(run: dense, group: dense.groups[0]).render()
        expectSnapshot(svg, named: "dense-encoder.layers.3.svg")
        let parser = XMLParser(data: Data(svg.utf8))
        let check = XMLCheck()
        parser.delegate = check
        #expect(parser.parse(), "SVG is not well-formed XML")
        #expect(check.elements.first == "svg")
        #expect(check.elements.filter { $0 == "rect" }.count == 9 + 2)
        #expect(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""))
        for task in ReportFixtures.tasks { #expect(svg.contains(">\(task)</text>")) }
    }

    /// The demo's task names: the row names start right of the vertical axis title (they were cut
    /// at the left edge), the column names slant instead of running into each other, and the
    /// picture is wide enough for the last one.
    @Test func longTaskNamesFit() throws {
        let tasks = ["image-classification", "mlm", "captioning"]
        let svg = HeatmapSVG(title: "t", tasks: tasks, values: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]).render()
        func number(_ name: String, in line: Substring) -> Int? {
            line.components(separatedBy: "\(name)=\"").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
        }
        let lines = svg.split(separator: "\n")
        let width = try #require(lines.first { $0.hasPrefix("<svg") }.flatMap { number("width", in: $0) })
        let rowName = try #require(lines.first { $0.contains("text-anchor=\"end\">image-classification<") })
        let rowEnd = try #require(number("x", in: rowName))
        // 20 characters at 7 px (more than Helvetica's ≈ 6.1) still clear the axis title at x = 16 + 8.
        #expect(rowEnd - 20 * 7 >= 24, "\(rowName)")
        let slanted = lines.filter { $0.contains("rotate(-45") }
        #expect(slanted.count == 3, "\(slanted)")
        let last = try #require(slanted.last.flatMap { number("x", in: $0) })
        #expect(width >= last + Int(Double(10 * 7) * 0.71), "width \(width), last column name at \(last)")
        // Short names keep the compact layout (the snapshot above).
        #expect(!HeatmapSVG(title: "t", tasks: ["a", "b"], values: [[1, 0], [0, 1]]).render().contains("rotate(-45"))
    }

    @Test func coloursAreCentredOnZero() {
        let map = HeatmapSVG(title: "t", tasks: ["a", "b"], values: [[1, -1], [0, .nan]])
        let svg = map.render()
        #expect(svg.contains("fill=\"#ffffff\" stroke=\"#ffffff\""))  // the 0 cell is white
        #expect(svg.contains("fill=\"#2166ac\""))  // +1 = full blue
        #expect(svg.contains("fill=\"#b2182b\""))  // −1 = full red
        #expect(svg.contains(">n/a</text>"))
        #expect(
            HeatmapSVG.fileName(run: "MoE (attr)", group: "encoder.layers.3")
                == "MoE__attr_-encoder.layers.3.svg")
        #expect(
            HeatmapSVG.fileName(report: "dense vs moe", run: "MoE", group: "encoder.layers.3")
                == "dense_vs_moe-MoE-encoder.layers.3.svg")
        // A label like "../x" cleans to ".._x": the name must not start with a dot (a hidden file).
        #expect(HeatmapSVG.fileName(run: "../x", group: "g") == "_._x-g.svg")
        #expect(HeatmapSVG.fileName(report: ".r", run: "x", group: "g") == "_r-x-g.svg")
    }
}

@Suite struct LookAheadAndRoutingReportTests {
    /// A run whose first group carries a look-ahead check whose measured changes are the first-order
    /// ones scaled by 1.05: the report shows λ, the pair count and a 5 % difference.
    @Test func lookAheadSectionShowsLambdaPairsAndDifference() throws {
        var dense = try ReportFixtures.dense()
        let layout = dense.layout
        let gram = try GramMatrix(rows: ReportFixtures.rows(seed: 100, capSign: -0.7))
        let pairs = LookAheadPlan.pairs(layout: layout, lossSamples: 2, stepSamples: 2, seed: 1)
        let firstOrder = try LookAheadPlan.firstOrder(pairs, gram: gram, layout: layout, stepSize: 0.002)
        let exact = firstOrder.map { m -> LookAheadMeasurement in
            var copy = m
            copy.lossChange *= 1.05
            return copy
        }
        dense.groups[0].lookAhead = try LookAheadCheck(
            stepSize: 0.002, seed: 1, exactChanges: exact, firstOrderChanges: firstOrder, layout: layout)
        let text = try MarkdownReport(runs: [dense]).render()
        #expect(text.contains("## Look-ahead check"))
        #expect(text.contains("| \(dense.groups[0].name) | dense | 0.002 | \(pairs.count) | "))
        // Scaling every change by 1.05 scales numerators and denominators alike: I is unchanged,
        // the loss changes differ by exactly 5 %.
        #expect(text.contains("| 0.0 % | 5.0 % |"), "\(text)")
        #expect(!text.contains("**\(dense.groups[1].name)**"))
        // Each row rests on its measured loss mini-batches whose own change is > 0: counted, and a
        // row with none left reads n/a.
        #expect(text.contains("Loss mini-batches behind each row (own change > 0, exact and first-order, of those measured): dense: cls 2 of 2, mlm 2 of 2, cap 2 of 2."), "\(text)")
        let mlmOwn = firstOrder.map { m -> LookAheadMeasurement in
            var copy = m
            if m.lossTask == 1 && m.stepTask == 1 { copy.lossChange = -abs(m.lossChange) }
            return copy
        }
        dense.groups[0].lookAhead = try LookAheadCheck(
            stepSize: 0.002, seed: 1, exactChanges: mlmOwn, firstOrderChanges: firstOrder, layout: layout)
        let flagged = try MarkdownReport(runs: [dense]).render()
        #expect(flagged.contains("dense: cls 2 of 2, mlm 0 of 2, cap 2 of 2."), "\(flagged)")
        // Flagged by the first-order side alone counts the same: a row needs both denominators.
        dense.groups[0].lookAhead = try LookAheadCheck(
            stepSize: 0.002, seed: 1, exactChanges: firstOrder, firstOrderChanges: mlmOwn, layout: layout)
        let flaggedFirstOrder = try MarkdownReport(runs: [dense]).render()
        #expect(flaggedFirstOrder.contains("dense: cls 2 of 2, mlm 0 of 2, cap 2 of 2."), "\(flaggedFirstOrder)")
        #expect(flagged.contains("| mlm ← cls | n/a |"), "\(flagged)")
        // A first-order value that prints as 0 (an MoE's disjoint experts): no relative difference.
        let orthogonal = firstOrder.map { m -> LookAheadMeasurement in
            var copy = m
            if m.lossTask == 0 && m.stepTask == 1 { copy.lossChange = 0 }
            return copy
        }
        dense.groups[0].lookAhead = try LookAheadCheck(
            stepSize: 0.002, seed: 1, exactChanges: orthogonal, firstOrderChanges: orthogonal, layout: layout)
        let zero = try MarkdownReport(runs: [dense]).render()
        #expect(zero.contains("| cls ← mlm | 0.000 | 0.000 | — |"), "\(zero)")
        let plain = try MarkdownReport(runs: [try ReportFixtures.dense()]).render()
        #expect(!plain.contains("Look-ahead"))
    }

    @Test func routingWithSegmentsAndGateEntropy() throws {
        let stats = RoutingStatistics(
            run: "moe", routing: "attribute", experts: 2,
            entries: [
                .init(layer: 0, task: "mlm", load: [0.75, 0.25], decision: "ffn", segment: "input 0", gateEntropy: 0.5)
            ])
        let text = try MarkdownReport(runs: [try ReportFixtures.moe()], routing: [stats]).render()
        #expect(text.contains("| layer | decision | task | segment | e0 | e1 | load entropy | gate entropy |"))
        #expect(text.contains("| 0 | ffn | mlm | input 0 | 75.0 % | 25.0 % | 0.81 | 0.50 |"), "\(text)")
    }

    @Test("a run's routing table from its file: gate entropy divided by ln E, n/a without tokens, the report's run name")
    func routingFromTheRunsTable() throws {
        var moe = try ReportFixtures.moe()
        moe.label = ""
        moe.routing = RoutingTable(
            routing: "attribute", experts: 2,
            rows: [
                .init(layer: 0, decision: "ffn", task: "mlm", side: "input", segment: 0, tokens: 8,
                      weightShare: [0.75, 0.25], meanEntropy: 0.5 * log(2.0)),
                .init(layer: 0, decision: "ffn", task: "mlm", side: "input", segment: 1, tokens: 0,
                      weightShare: [0, 0], meanEntropy: 0),
            ])
        let stats = RoutingStatistics.of([try ReportFixtures.dense(), moe])
        #expect(stats.map(\.run) == ["run 2"])  // unlabelled: named as the report names the run
        #expect(stats[0].entries.map(\.segment) == ["input 0", "input 1"])
        #expect(abs(stats[0].entries[0].gateEntropy! - 0.5) < 1e-15)
        #expect(stats[0].entries[1].gateEntropy == nil)
    }
}

extension MarkdownReportTests {
    @Test func refusesHeatmapsThatWouldShareAFile() throws {
        let dense = try ReportFixtures.dense()
        var twin = try ReportFixtures.moe()
        twin.label = dense.label
        #expect(throws: ReportError.sameLabel("dense")) { try MarkdownReport(runs: [dense, twin]) }
        // Different labels that a file name spells alike.
        var slashed = dense
        slashed.label = "a/b"
        var underscored = try ReportFixtures.moe()
        underscored.label = "a_b"
        #expect(throws: ReportError.clashingHeatmaps(fileName: "a_b-encoder.layers.3.svg")) {
            try MarkdownReport(runs: [slashed, underscored])
        }
    }
}

extension MarkdownReportTests {
    @Test func refusesNothingToShow() throws {
        var empty = try ReportFixtures.dense()
        empty.groups = []
        #expect(throws: ReportError.invalidOptions(reason: "no group to report")) { try MarkdownReport(runs: [empty]) }
        var renamed = try ReportFixtures.moe()
        for k in renamed.groups.indices { renamed.groups[k].group.name += ".moe" }
        #expect(throws: ReportError.self) { try MarkdownReport(runs: [try ReportFixtures.dense(), renamed]) }
    }
}

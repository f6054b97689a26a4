import Interference

/// A standalone SVG heatmap of one interference matrix.
///
/// Diverging colours centred on 0: red for negative (task j interferes with task i), white at 0, blue
/// for positive (j helps i), saturating at ±`scale` (default: the largest |I| of the matrix, at least
/// 1 since the diagonal is 1; for a run's group, of the cells not marked †). Rows are the task whose loss changes, columns the task that steps;
/// each cell prints its value (with "†" when `marked`: a value outside its own bootstrap interval,
/// or "‡" when `resting`: a value that rests on one sample, as the report marks them); a vertical legend shows the colour scale. NaN cells are grey, "n/a".
/// The text depends only on the inputs (fixed-point numbers, integer geometry), so it snapshots.
public struct HeatmapSVG: Sendable {
    public var title: String
    public var tasks: [String]
    public var values: [[Double]]
    /// Colour saturation: |value| ≥ scale gets the full colour.
    public var scale: Double
    public var digits: Int
    /// Cells (i, j) printed with "†".
    public var marked: [[Int]]
    /// Cells (i, j) printed with "‡" (a value that rests on one sample, as the report marks it).
    public var resting: [[Int]] = []

    /// A heatmap of arbitrary values.
    public init(
        title: String, tasks: [String], values: [[Double]], scale: Double? = nil, digits: Int = 2,
        marked: [[Int]] = []
    ) {
        self.title = title
        self.tasks = tasks
        self.values = values
        let largest = values.flatMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1
        self.scale = scale ?? max(1, largest)
        self.digits = digits
        self.marked = marked
    }

    /// The heatmap of one group of a run; title "<label> · <group>".
    /// Without `scale`, the largest |I| of the cells not marked † (a marked value saturates), at least 1.
    /// `intervalDigits`: the decimals of the report beside it, which decide what counts as outside
    /// an interval (`IntervalMiss`), so that both mark the same cells.
    public init(run: InterferenceAnalysis, group: GroupAnalysis, scale: Double? = nil, intervalDigits: Int = 3) {
        let label = run.label.isEmpty ? "run" : run.label
        let marked = IntervalMiss.misses(in: group, digits: intervalDigits).map { [$0.i, $0.j] }
        let values = group.interference.values
        let unmarked = values.indices.flatMap { i in
            values[i].indices.filter { !marked.contains([i, $0]) }.map { values[i][$0] }
        }
        self.init(
            title: "\(label) · \(group.name)", tasks: run.tasks, values: values,
            scale: scale ?? max(1, unmarked.filter(\.isFinite).map(abs).max() ?? 1), marked: marked)
        resting = OneSampleInfluence.find(in: group.interference).map { [$0.i, $0.j] }.filter { !marked.contains($0) }
    }

    /// The file name used by the CLI and linked from `MarkdownReport`: `<report>-<run>-<group>.svg`
    /// (`<run>-<group>.svg` without a report name), with every character outside
    /// `[A-Za-z0-9._-]` replaced by `_`, and a leading dot too (`../x` would make a hidden file).
    /// The report's name keeps two reports in one folder from replacing each other's heatmaps.
    public static func fileName(report: String = "", run: String, group: String) -> String {
        func clean(_ s: String) -> String {
            String(
                s.map { ch in
                    ch.isASCII
                        && (ch.isLetter || ch.isNumber || ch == "." || ch == "_" || ch == "-")
                        ? ch : "_"
                })
        }
        let name = (report.isEmpty ? "" : clean(report) + "-") + "\(clean(run))-\(clean(group)).svg"
        return name.hasPrefix(".") ? "_" + name.dropFirst() : name
    }

    // Geometry (pixels). The margins grow with the longest task name, and column names slant at 45°
    // when one is wider than its cell, so that names like `image-classification` are neither cut
    // at the left edge nor run into each other.
    private let cellSize = 64
    private let legendGap = 28
    private let legendWidth = 16
    /// The longest task name's width at font-size 12, over-estimated at 6.5 px a character
    /// (Helvetica averages about 6.1).
    private var labelWidth: Int { tasks.map { ($0.count * 13 + 1) / 2 }.max() ?? 0 }
    private var slanted: Bool { labelWidth > cellSize - 8 }
    private var left: Int { max(120, 48 + labelWidth) }
    private var top: Int { slanted ? 60 + (labelWidth + 12) * 71 / 100 : 84 }

    /// sRGB colour of a value: white → #2166ac (positive) or → #b2182b (negative), linear in |v|/scale.
    func colour(_ value: Double) -> (r: Int, g: Int, b: Int) {
        guard value.isFinite else { return (204, 204, 204) }
        let t = min(1, abs(value) / scale)
        let end = value >= 0 ? (r: 33.0, g: 102.0, b: 172.0) : (r: 178.0, g: 24.0, b: 43.0)
        func mix(_ e: Double) -> Int { Int((255 + (e - 255) * t).rounded()) }
        return (mix(end.r), mix(end.g), mix(end.b))
    }

    private func hex(_ c: (r: Int, g: Int, b: Int)) -> String {
        let digits = Array("0123456789abcdef")
        return "#" + [c.r, c.g, c.b].map { "\(digits[$0 / 16])\(digits[$0 % 16])" }.joined()
    }

    /// The SVG document, ending with a newline.
    public func render() -> String {
        let n = tasks.count
        let gridSize = n * cellSize
        let legendX = left + gridSize + legendGap
        // A slanted last name reaches right of its column by its width·cos 45°.
        let width = max(
            legendX + legendWidth + 64,
            slanted ? left + gridSize - cellSize / 2 + labelWidth * 71 / 100 + 12 : 0)
        // A line saying what † and ‡ mean, when a cell has one.
        let height = top + gridSize + 56 + (marked.isEmpty && resting.isEmpty ? 0 : 16)
        var s: [String] = []
        s.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        s.append(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
                + "viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">"
        )
        s.append("  <title>\(xmlEscaped(title))</title>")
        s.append("  <defs>")
        s.append("    <linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">")
        s.append("      <stop offset=\"0\" stop-color=\"\(hex(colour(-scale)))\"/>")
        s.append("      <stop offset=\"0.5\" stop-color=\"#ffffff\"/>")
        s.append("      <stop offset=\"1\" stop-color=\"\(hex(colour(scale)))\"/>")
        s.append("    </linearGradient>")
        s.append("  </defs>")
        s.append("  <rect width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>")
        s.append(
            "  <text x=\"\(left + gridSize / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(xmlEscaped(title))</text>"
        )
        s.append(
            "  <text x=\"\(left + gridSize / 2)\" y=\"44\" text-anchor=\"middle\">task that steps (j) →</text>"
        )
        let axisY = top + gridSize / 2
        s.append(
            "  <text x=\"16\" y=\"\(axisY)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(axisY))\">← task whose loss changes (i)</text>"
        )
        for (j, task) in tasks.enumerated() {
            let x = left + j * cellSize + cellSize / 2
            s.append(
                slanted
                    ? "  <text x=\"\(x)\" y=\"\(top - 8)\" transform=\"rotate(-45 \(x) \(top - 8))\">\(xmlEscaped(task))</text>"
                    : "  <text x=\"\(x)\" y=\"\(top - 10)\" text-anchor=\"middle\">\(xmlEscaped(task))</text>"
            )
        }
        for (i, task) in tasks.enumerated() {
            s.append(
                "  <text x=\"\(left - 8)\" y=\"\(top + i * cellSize + cellSize / 2 + 4)\" text-anchor=\"end\">\(xmlEscaped(task))</text>"
            )
        }
        for i in 0..<n {
            for j in 0..<n {
                let v = i < values.count && j < values[i].count ? values[i][j] : .nan
                let x = left + j * cellSize
                let y = top + i * cellSize
                let dark = v.isFinite && abs(v) / scale > 0.6
                s.append(
                    "  <rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellSize)\" height=\"\(cellSize)\" fill=\"\(hex(colour(v)))\" stroke=\"#ffffff\"/>"
                )
                s.append(
                    "  <text x=\"\(x + cellSize / 2)\" y=\"\(y + cellSize / 2 + 4)\" text-anchor=\"middle\" fill=\"\(dark ? "#ffffff" : "#000000")\">\(fixed(v, digits))\(marked.contains([i, j]) ? "†" : resting.contains([i, j]) ? "‡" : "")</text>"
                )
            }
        }
        s.append(
            "  <rect x=\"\(legendX)\" y=\"\(top)\" width=\"\(legendWidth)\" height=\"\(gridSize)\" fill=\"url(#scale)\" stroke=\"#888888\"/>"
        )
        let ticks: [(Double, Int)] = [
            (scale, top), (0, top + gridSize / 2), (-scale, top + gridSize),
        ]
        for (value, y) in ticks {
            s.append(
                "  <line x1=\"\(legendX + legendWidth)\" y1=\"\(y)\" x2=\"\(legendX + legendWidth + 4)\" y2=\"\(y)\" stroke=\"#888888\"/>"
            )
            s.append(
                "  <text x=\"\(legendX + legendWidth + 7)\" y=\"\(y + 4)\">\(signed(value, digits))</text>"
            )
        }
        s.append(
            "  <text x=\"\(left + gridSize / 2)\" y=\"\(top + gridSize + 24)\" text-anchor=\"middle\" fill=\"#444444\">blue: j helps i · red: j interferes with i · diagonal = 1</text>"
        )
        let legend = (marked.isEmpty ? [] : ["†: outside its own bootstrap interval"])
            + (resting.isEmpty ? [] : ["‡: rests on one sample"])
        if !legend.isEmpty {
            s.append(
                "  <text x=\"\(left + gridSize / 2)\" y=\"\(top + gridSize + 40)\" text-anchor=\"middle\" fill=\"#444444\">\(legend.joined(separator: " · "))</text>"
            )
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }
}

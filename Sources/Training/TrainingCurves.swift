import Foundation
import UniPerceiver

/// Loss-per-task curves of a training log as a self-contained SVG (no scripts, no fonts beyond
/// the viewer's sans-serif).
///
/// Each task's losses are smoothed by an exponential moving average over that task's own steps
/// (`smoothing` is the weight of the newest value; bias-corrected like Adam's moments, so the curve
/// starts at the first loss rather than at 0) and drawn against the global step.
public enum TrainingCurves {
    /// Reads `log.jsonl` records (`step`, `task`, `loss`); lines that are not such records are skipped.
    public static func records(fromLog text: String) -> [(step: Int, task: TaskKind, loss: Double)] {
        text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let step = object["step"] as? Int, let name = object["task"] as? String,
                let task = TaskKind(rawValue: name), let loss = object["loss"] as? Double
            else { return nil }
            return (step, task, loss)
        }
    }

    /// The SVG document.
    public static func svg(
        _ records: [(step: Int, task: TaskKind, loss: Double)], title: String, smoothing: Double = 0.05
    ) -> String {
        let (width, height) = (760.0, 400.0)
        let (left, right, top, bottom) = (60.0, 180.0, 40.0, 50.0)
        let plotW = width - left - right
        let plotH = height - top - bottom
        var series: [TaskKind: [(Int, Double)]] = [:]
        for task in TaskKind.allCases {
            var average = 0.0
            var weight = 0.0
            for record in records where record.task == task && record.loss.isFinite {
                average = (1 - smoothing) * average + smoothing * record.loss
                weight = (1 - smoothing) * weight + smoothing
                series[task, default: []].append((record.step, average / weight))
            }
        }
        let maxStep = max(1, records.map(\.step).max() ?? 1)
        let maxLoss = niceCeiling(series.values.flatMap { $0.map(\.1) }.max() ?? 1)
        func x(_ step: Int) -> Double { left + plotW * Double(step) / Double(maxStep) }
        func y(_ loss: Double) -> Double { top + plotH * (1 - loss / maxLoss) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        let colors: [TaskKind: String] = [
            .imageClassification: "#1f77b4", .mlm: "#d62728", .captioning: "#2ca02c", .retrieval: "#9467bd",
        ]
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(left))" y="22" font-size="14">\(escape(title))</text>

            """
        for i in 0...5 {
            let loss = maxLoss * Double(i) / 5
            svg += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(y(loss)))\" y2=\"\(f(y(loss)))\" stroke=\"#e0e0e0\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y(loss) + 4))\" text-anchor=\"end\">\(trim(loss))</text>\n"
            let step = Int((Double(maxStep) * Double(i) / 5).rounded())
            svg += "<text x=\"\(f(x(step)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(step)</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">step</text>\n"
        svg += "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">loss (EMA \(trim(smoothing)))</text>\n"
        for (row, task) in TaskKind.allCases.enumerated() {
            let color = colors[task]!
            if let points = series[task], !points.isEmpty {
                let path = points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            }
            let ly = top + 10 + Double(row) * 20
            svg += "<line x1=\"\(f(left + plotW + 14))\" x2=\"\(f(left + plotW + 34))\" y1=\"\(f(ly))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(f(left + plotW + 40))\" y=\"\(f(ly + 4))\">\(task.rawValue)</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func niceCeiling(_ value: Double) -> Double {
        guard value.isFinite, value > 0 else { return 1 }
        let magnitude = pow(10, Foundation.floor(log10(value)))
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func trim(_ v: Double) -> String {
        var s = String(format: "%.2f", v)
        while s.contains(".") && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

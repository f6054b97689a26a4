/// The report's "Routing" section: each MoE run's expert shares and entropies per layer, decision,
/// task and segment (`RoutingStatistics`).
extension MarkdownReport {
    func routingSection() -> [String] {
        var lines = ["## Routing"]
        for stats in routing {
            let decisions = stats.entries.contains { !$0.decision.isEmpty }
            let segments = stats.entries.contains { !$0.segment.isEmpty }
            let gate = stats.entries.contains { $0.gateEntropy != nil }
            lines.append("")
            lines.append(
                "**\(stats.run)** — routing: \(stats.routing), \(stats.experts) experts. Each expert's mean gate weight per token of the task and segment (the top-k weights renormalised, so a row sums to 100 %); entropy normalised to 1 = uniform."
                    + (gate ? " *Load entropy*: of the shares; *gate entropy*: the router's softmax per token, averaged." : "")
            )
            lines.append("")
            let experts = (0..<stats.experts).map { "e\($0)" }
            var header = ["layer"]
            if decisions { header.append("decision") }
            header.append("task")
            if segments { header.append("segment") }
            header += experts
            header += gate ? ["load entropy", "gate entropy"] : ["entropy"]
            lines.append("| " + header.joined(separator: " | ") + " |")
            var align = ["---:"]
            if decisions { align.append("---") }
            align.append("---")
            if segments { align.append("---") }
            align += experts.map { _ in "---:" }
            align += gate ? ["---:", "---:"] : ["---:"]
            lines.append("| " + align.joined(separator: " | ") + " |")
            for e in stats.entries {
                let loads = (0..<stats.experts).map { k in
                    k < e.load.count ? fixed(e.load[k] * 100, 1) + " %" : "n/a"
                }
                var row = ["\(e.layer)"]
                if decisions { row.append(cell(e.decision)) }
                row.append(cell(e.task))
                if segments { row.append(cell(e.segment)) }
                row += loads
                row.append(fixed(e.normalizedEntropy, 2))
                if gate { row.append(e.gateEntropy.map { fixed($0, 2) } ?? "n/a") }
                lines.append("| " + row.joined(separator: " | ") + " |")
            }
        }
        return lines
    }
}

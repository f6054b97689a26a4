import Interference

/// The report's "Look-ahead check" section: the exact loss change of a real step beside the paper's
/// first-order value, per group and run, then entry by entry (`ExactLookAhead`).
extension MarkdownReport {
    /// Percent with `digits − 1` decimals (`1.8 %`), `n/a` when undefined.
    func percent(_ x: Double) -> String {
        x.isFinite ? fixed(x * 100, max(digits - 2, 1)) + " %" : "n/a"
    }

    func lookAheadSection() -> [String] {
        var lines = [
            "## Look-ahead check", "",
            "The paper's value is first-order: task *j*'s step changes task *i*'s loss by "
                + "`λ·⟨g_j/‖g_j‖, g_i⟩`. Here, on a seeded subsample of pairs (task *i*'s mini-batch *b*, task "
                + "*j*'s mini-batch *a* ≠ *b*), only the group's parameters were actually stepped by "
                + "`−λ·g_j(a)/‖g_j(a)‖` and task *i*'s loss on its rebuilt mini-batch *b* (same gate noise) "
                + "evaluated again; the measured changes are divided exactly as the metric divides (*exact*), "
                + "beside the first-order values of the same pairs. Method *difference*: the two Float32 "
                + "losses subtracted; *integral*: the same change as the integral of the directional "
                + "derivative along the step (2-node Gauss–Legendre), which does not subtract two losses, "
                + "so small λ stays above round-off. Relative difference: "
                + "`‖I_exact − I_first-order‖ / ‖I_first-order‖` over the off-diagonal entries defined in both, "
                + "and the same over the pairs' loss changes before any division; entry by entry, — where the "
                + "first-order value rounds to 0. Each row of *I* rests on the "
                + "loss mini-batches measured for its task whose own change is > 0 (counted under each group's "
                + "table); n/a marks a row where none is.",
            "",
            "| group | run | λ | pairs | method | off-diagonal I: exact vs first-order | loss changes: exact vs first-order |",
            "| --- | --- | ---: | ---: | --- | ---: | ---: |",
        ]
        for name in groups {
            for k in runs.indices {
                guard let c = runs[k].group(named: name)?.lookAhead else { continue }
                lines.append(
                    "| \(cell(name)) | \(cell(label(k))) | \(String(format: "%g", c.stepSize)) | \(c.pairCount) | "
                        + "\(c.method.rawValue) | \(percent(c.offDiagonalRelativeDifference)) | "
                        + "\(percent(c.lossChangeRelativeDifference)) |")
            }
        }
        for name in groups {
            let present = runs.indices.filter { runs[$0].group(named: name)?.lookAhead != nil }
            guard !present.isEmpty else { continue }
            lines += ["", "**\(name)**", ""]
            var header = ["loss ← step"]
            for k in present {
                header += ["\(label(k)): exact", "\(label(k)): first-order", "\(label(k)): relative difference"]
            }
            lines.append("| " + header.map(cell).joined(separator: " | ") + " |")
            lines.append("| --- | " + header.dropFirst().map { _ in "---:" }.joined(separator: " | ") + " |")
            for i in tasks.indices {
                for j in tasks.indices where i != j {
                    var row = ["\(tasks[i]) ← \(tasks[j])"]
                    for k in present {
                        let c = runs[k].group(named: name)!.lookAhead!
                        row += [
                            fixed(c.exact[i, j], digits), fixed(c.firstOrder[i, j], digits),
                            // Relative to a first-order value that prints as 0 the ratio is noise
                            // (an MoE's disjoint experts give exactly orthogonal gradients).
                            fixed(c.firstOrder[i, j], digits) == fixed(0, digits) ? "—" : percent(c.relativeDifference[i][j]),
                        ]
                    }
                    lines.append("| " + row.map(cell).joined(separator: " | ") + " |")
                }
            }
            let counts = present.map { k in
                let c = runs[k].group(named: name)!.lookAhead!
                let rows = tasks.indices.map { i in
                    let measured = Set(c.exactChanges.filter { $0.lossTask == i }.map(\.lossSample)).count
                    func flaggedSet(_ m: InterferenceMatrix) -> Set<Int> {
                        m.flaggedSamples.indices.contains(i) ? Set(m.flaggedSamples[i]) : []
                    }
                    let flagged = flaggedSet(c.exact).union(flaggedSet(c.firstOrder)).count
                    return "\(tasks[i]) \(measured - flagged) of \(measured)"
                }
                return "\(label(k)): " + rows.joined(separator: ", ")
            }
            lines += ["", "Loss mini-batches behind each row (own change > 0, exact and first-order, of those measured): "
                + counts.joined(separator: "; ") + "."]
        }
        return lines
    }
}

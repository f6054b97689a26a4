/// The paper's interference matrix for one group of parameters, with the per-sample values it is made of.
///
/// `values[i][j] = I[i, j]`: the effect of task j's unit step on task i's loss, divided per sample by
/// the effect of task i's own unit step (uniperceiver-model.md §6). Rows `i` = task whose loss changes,
/// columns `j` = task that steps; the diagonal is exactly 1.
///
/// A sample `b` of task `i` whose own loss change `s[i,i][b]` is not positive (≤ 0, or undefined) cannot
/// be a denominator: it is left out of row `i`'s mean for every column and counted in
/// `nonPositiveDenominators[i]`, and its index is listed in `flaggedSamples[i]`. The notebook has no such
/// guard, so a flagged matrix differs from the notebook's (which would average the wild ratios in); an
/// unflagged one equals it. A row whose every denominator is flagged is NaN, diagonal included.
public struct InterferenceMatrix: Sendable, Equatable {
    /// Tasks and samples per task.
    public var layout: TaskLayout
    /// `I[i][j]`, `T × T`.
    public var values: [[Double]]
    /// Per-sample first-order loss changes: `delta[i][j][b] = s[j,i][b]` =
    /// mean over the other task-j samples `a ≠ b` of `⟨g_j(a)/‖g_j(a)‖, g_i(b)⟩` (loss change of task i's
    /// sample b per unit step of task j, divided by the step size λ). `T × T × N`.
    public var delta: [[[Double]]]
    /// Per task i: how many samples b had `s[i,i][b] ≤ 0` (or undefined) and were left out of row i.
    public var nonPositiveDenominators: [Int]
    /// Per task i: the indices b of those samples.
    public var flaggedSamples: [[Int]]

    /// Memberwise; `InterferenceMatrix(gram:layout:)` is the usual way to make one.
    public init(
        layout: TaskLayout, values: [[Double]], delta: [[[Double]]], nonPositiveDenominators: [Int],
        flaggedSamples: [[Int]]
    ) {
        self.layout = layout
        self.values = values
        self.delta = delta
        self.nonPositiveDenominators = nonPositiveDenominators
        self.flaggedSamples = flaggedSamples
    }

    /// Task names, in row (and column) order.
    public var tasks: [String] { layout.tasks }

    /// `I[i, j]`.
    public subscript(i: Int, j: Int) -> Double { values[i][j] }

    /// True when any denominator was left out (the result is not the notebook's unguarded value).
    public var isFlagged: Bool { nonPositiveDenominators.contains { $0 > 0 } }

    /// Mean of the finite off-diagonal entries (NaN when there is none).
    public var offDiagonalMean: Double {
        var sum = 0.0
        var count = 0
        for i in values.indices {
            for j in values[i].indices where i != j && values[i][j].isFinite {
                sum += values[i][j]
                count += 1
            }
        }
        return count > 0 ? sum / Double(count) : .nan
    }

    /// The most negative finite off-diagonal entry `(i, j, I[i, j])`; ties go to the first in row-major order.
    public var mostNegative: (i: Int, j: Int, value: Double)? {
        var best: (i: Int, j: Int, value: Double)?
        for i in values.indices {
            for j in values[i].indices where i != j && values[i][j].isFinite {
                if best == nil || values[i][j] < best!.value { best = (i, j, values[i][j]) }
            }
        }
        return best
    }
}

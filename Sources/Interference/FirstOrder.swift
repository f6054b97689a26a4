// The notebook's first-order procedure (uniperceiver-model.md §6.2), written on the Gram matrix.
//
// Dimension letters: T tasks, N samples per task, R = T·N Gram rows (task-major: row t·N + a).
// The notebook forms U[j] = G[j]/rownorm and M = U[j]·G[i]ᵀ; on the Gram matrix the same entry is
//     M[a, b] = ⟨g_j(a)/‖g_j(a)‖, g_i(b)⟩ = Gram[j_a, i_b] / sqrt(Gram[j_a, j_a]),
// so `StepProjections` stores that R × R matrix once, and every estimate (the point estimate and each
// bootstrap replicate) is a weighted sum over it.

/// `P[r, c] = Gram[r, c] / ‖g_r‖`: the projection of gradient c on the unit step of gradient r.
///
/// A row with zero norm (a parameter the task never touched, e.g. an expert that got no tokens) is a
/// zero step: its projections are 0 rather than 0/0. `zeroRows` counts such rows per task.
struct StepProjections: Sendable {
    let layout: TaskLayout
    let values: [Double]  // R × R row-major
    let zeroRows: [Int]  // per task

    init(gram: GramMatrix, layout: TaskLayout, name: String) throws(InterferenceError) {
        guard gram.size == layout.rowCount else {
            throw .shapeMismatch(
                name: name, expected: [layout.rowCount, layout.rowCount],
                found: [gram.size, gram.size])
        }
        try gram.validateFinite(name: name)
        let size = gram.size
        var values = [Double](repeating: 0, count: size * size)
        var zeroRows = [Int](repeating: 0, count: layout.taskCount)
        for r in 0..<size {
            let squaredNorm = gram[r, r]
            guard squaredNorm > 0 else {
                zeroRows[r / layout.samplesPerTask] += 1
                continue
            }
            let norm = squaredNorm.squareRoot()
            for c in 0..<size { values[r * size + c] = gram[r, c] / norm }
        }
        self.layout = layout
        self.values = values
        self.zeroRows = zeroRows
    }

    /// Per-sample loss changes `delta[i][j][b] = s[j,i][b]` for a multiset of samples.
    ///
    /// `counts[t][a]` = how many times sample a of task t is in the set (all 1 = the data as logged).
    /// With the original indices `a` of task j and `b` of task i:
    ///     s[j,i](b) = (Σ_a counts[j][a]·P[j_a, i_b] − counts[j][b]·P[j_b, i_b]) / (N − counts[j][b]),
    /// i.e. the mean over the set's task-j members whose original index differs from b. With all counts
    /// 1 this is the notebook's `(Σ_a M[a,b] − M[b,b]) / (N − 1)`. Entries for b with `counts[i][b] = 0`
    /// are not needed and left NaN; a b whose every task-j member has index b gives NaN.
    func delta(counts: [[Int]]) -> [[[Double]]] {
        let taskCount = layout.taskCount
        let n = layout.samplesPerTask
        let size = layout.rowCount
        var delta = [[[Double]]](
            repeating: [[Double]](repeating: [Double](repeating: .nan, count: n), count: taskCount),
            count: taskCount)
        var sums = [Double](repeating: 0, count: n)
        values.withUnsafeBufferPointer { p in
            for i in 0..<taskCount {
                for j in 0..<taskCount {
                    let cj = counts[j]
                    // Σ_a counts[j][a]·P[j_a, i_b] for every b at once: row j_a of P is contiguous in b.
                    for b in 0..<n { sums[b] = 0 }
                    for a in 0..<n where cj[a] > 0 {
                        let weight = Double(cj[a])
                        let row = (j * n + a) * size + i * n
                        for b in 0..<n { sums[b] += weight * p[row + b] }
                    }
                    for b in 0..<n where counts[i][b] > 0 {
                        let leftOut = cj[b]
                        let remaining = n - leftOut
                        guard remaining > 0 else { continue }
                        var sum = sums[b]
                        if leftOut > 0 {
                            sum -= Double(leftOut) * p[(j * n + b) * size + i * n + b]
                        }
                        delta[i][j][b] = sum / Double(remaining)
                    }
                }
            }
        }
        return delta
    }
}

/// Row i of I: `I[i][j] = Σ_b w_b · s[j,i][b]/s[i,i][b] / Σ_b w_b` over the b with `s[i,i][b] > 0`,
/// weights `w_b = counts[i][b]`. Returns the matrix, the flagged weight per task and the flagged indices.
func meanOfRatios(delta: [[[Double]]], counts: [[Int]]) -> (
    values: [[Double]], nonPositive: [Int], flagged: [[Int]]
) {
    let taskCount = delta.count
    var values = [[Double]](
        repeating: [Double](repeating: .nan, count: taskCount), count: taskCount)
    var nonPositive = [Int](repeating: 0, count: taskCount)
    var flagged = [[Int]](repeating: [], count: taskCount)
    for i in 0..<taskCount {
        let own = delta[i][i]
        var weight = 0
        var sums = [Double](repeating: 0, count: taskCount)
        for b in own.indices where counts[i][b] > 0 {
            // `> 0` is false for NaN too: an undefined denominator is flagged, never divided by.
            guard own[b] > 0 else {
                nonPositive[i] += counts[i][b]
                flagged[i].append(b)
                continue
            }
            weight += counts[i][b]
            for j in 0..<taskCount {
                sums[j] += Double(counts[i][b]) * (delta[i][j][b] / own[b])
            }
        }
        guard weight > 0 else { continue }
        for j in 0..<taskCount { values[i][j] = sums[j] / Double(weight) }
        values[i][i] = 1  // s/s is exactly 1 already; written out so no rounding can ever show
    }
    return (values, nonPositive, flagged)
}

extension InterferenceMatrix {
    /// The notebook's first-order interference matrix from a Gram matrix.
    ///
    /// `s[j,i][b] = mean_{a≠b} Gram[j_a, i_b] / sqrt(Gram[j_a, j_a])` (leave-one-out on every block, as
    /// the notebook does) and `I[i,j] = mean_b s[j,i][b] / s[i,i][b]` (a mean of ratios). Samples with
    /// `s[i,i][b] ≤ 0` are left out of row i and counted (see the type's documentation); zero-norm
    /// gradient rows are zero steps.
    ///
    /// - Parameters:
    ///   - gram: `[T·N, T·N]`, rows task-major.
    ///   - layout: the tasks and `N`.
    ///   - name: used in error messages (a parameter or group name).
    /// - Throws: `.shapeMismatch` when the Gram is not `T·N` square, `.nonFinite` for NaN/∞.
    ///
    /// ### References
    /// Uni-Perceiver-MoE (Zhu et al., NeurIPS 2022) §3 and `tools/calinterference.ipynb`;
    /// `uniperceiver-model.md` §6.2; `Tests/InterferenceTests/Fixtures/notebook_reference.py`.
    public init(gram: GramMatrix, layout: TaskLayout, name: String = "gram")
        throws(InterferenceError)
    {
        let projections = try StepProjections(gram: gram, layout: layout, name: name)
        self.init(projections: projections)
    }

    /// The same from raw gradient rows `[T·N][P]` (task-major), through their Gram matrix in `Double`.
    public init(rows: [[Double]], layout: TaskLayout, name: String = "rows")
        throws(InterferenceError)
    {
        for (r, row) in rows.enumerated() {
            for (c, v) in row.enumerated() where !v.isFinite {
                throw .nonFinite(name: name, row: r, column: c)
            }
        }
        try self.init(gram: GramMatrix(rows: rows), layout: layout, name: name)
    }

    init(projections: StepProjections) {
        let layout = projections.layout
        let ones = [[Int]](
            repeating: [Int](repeating: 1, count: layout.samplesPerTask), count: layout.taskCount)
        let delta = projections.delta(counts: ones)
        let (values, nonPositive, flagged) = meanOfRatios(delta: delta, counts: ones)
        self.init(
            layout: layout, values: values, delta: delta, nonPositiveDenominators: nonPositive,
            flaggedSamples: flagged)
    }
}

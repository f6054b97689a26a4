/// How the tasks' gradients point relative to each other: mean cosine and the share of conflicting pairs.
///
/// - Cross-task `(i ≠ j)`: over all `N·N` pairs `(g_i(a), g_j(b))`.
/// - Within a task `(i = j)`: over the pairs `a ≠ b`. The diagonal of `cosine` is the task's
///   **gradient consistency**: a task whose mini-batch gradients agree has large `s[i,i]` denominators,
///   which is why `I` is asymmetric and can exceed 1.
/// Pairs involving a zero-norm gradient have no direction and are skipped (counted in `zeroNormRows`).
/// An entry with no usable pair is NaN.
public struct GradientAgreement: Sendable, Equatable {
    /// Mean cosine, `T × T`, symmetric.
    public var cosine: [[Double]]
    /// Fraction of the same pairs with cosine < 0, `T × T`, symmetric.
    public var conflictFraction: [[Double]]
    /// Per task: rows of the Gram with zero norm.
    public var zeroNormRows: [Int]

    /// Memberwise.
    public init(cosine: [[Double]], conflictFraction: [[Double]], zeroNormRows: [Int]) {
        self.cosine = cosine
        self.conflictFraction = conflictFraction
        self.zeroNormRows = zeroNormRows
    }

    /// Each task's gradient consistency: the diagonal of `cosine`.
    public var consistency: [Double] { cosine.indices.map { cosine[$0][$0] } }

    /// Mean of the finite off-diagonal conflict fractions (NaN when there is none).
    public var meanCrossTaskConflict: Double {
        var sum = 0.0
        var count = 0
        for i in conflictFraction.indices {
            for j in conflictFraction[i].indices where i != j && conflictFraction[i][j].isFinite {
                sum += conflictFraction[i][j]
                count += 1
            }
        }
        return count > 0 ? sum / Double(count) : .nan
    }

    /// Cosine statistics of a Gram matrix.
    /// - Throws: `.shapeMismatch`, `.nonFinite`.
    public init(gram: GramMatrix, layout: TaskLayout, name: String = "gram")
        throws(InterferenceError)
    {
        guard gram.size == layout.rowCount else {
            throw .shapeMismatch(
                name: name, expected: [layout.rowCount, layout.rowCount],
                found: [gram.size, gram.size])
        }
        try gram.validateFinite(name: name)
        let taskCount = layout.taskCount
        let n = layout.samplesPerTask
        let norms = (0..<gram.size).map { gram[$0, $0] > 0 ? gram[$0, $0].squareRoot() : 0 }
        var cosine = [[Double]](
            repeating: [Double](repeating: .nan, count: taskCount), count: taskCount)
        var conflict = cosine
        var zero = [Int](repeating: 0, count: taskCount)
        for r in 0..<gram.size where norms[r] == 0 { zero[r / n] += 1 }
        for i in 0..<taskCount {
            for j in i..<taskCount {
                var sum = 0.0
                var negative = 0
                var pairs = 0
                for a in 0..<n {
                    let r = i * n + a
                    guard norms[r] > 0 else { continue }
                    for b in 0..<n where !(i == j && a == b) {
                        let c = j * n + b
                        guard norms[c] > 0 else { continue }
                        let cos = gram[r, c] / (norms[r] * norms[c])
                        sum += cos
                        if cos < 0 { negative += 1 }
                        pairs += 1
                    }
                }
                guard pairs > 0 else { continue }
                cosine[i][j] = sum / Double(pairs)
                cosine[j][i] = cosine[i][j]
                conflict[i][j] = Double(negative) / Double(pairs)
                conflict[j][i] = conflict[i][j]
            }
        }
        self.init(cosine: cosine, conflictFraction: conflict, zeroNormRows: zero)
    }
}

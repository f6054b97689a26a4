/// The inner products of T·N gradient rows: `G[r, c] = ⟨g_r, g_c⟩`, rows task-major.
///
/// Row `t·N + a` is sample (mini-batch) `a` of task `t`. This is all the metric needs: every norm,
/// cosine and projection in the notebook's procedure is a Gram entry or a ratio of them, and a group of
/// parameters has the Gram that is the sum of its members' (the rows are concatenations).
/// Stored as one row-major `[Double]` of `size · size` values.
public struct GramMatrix: Sendable, Equatable {
    /// Number of rows (= columns) = tasks · samples per task.
    public let size: Int
    /// Row-major values, `values[r · size + c] = G[r, c]`.
    public private(set) var values: [Double]

    /// A Gram matrix over existing values; `values.count` must be `size · size`.
    public init(size: Int, values: [Double]) throws(InterferenceError) {
        guard size >= 0, values.count == size * size else {
            throw .shapeMismatch(name: "gram", expected: [size, size], found: [values.count])
        }
        self.size = size
        self.values = values
    }

    /// The zero matrix (the neutral element of `+`).
    public init(zerosOfSize size: Int) {
        precondition(size >= 0, "GramMatrix: negative size \(size)")
        self.size = size
        self.values = [Double](repeating: 0, count: size * size)
    }

    /// `G = R · Rᵀ` of raw gradient rows, accumulated in `Double`.
    ///
    /// - Parameter rows: `[T·N]` rows of equal length `P`, task-major.
    /// - Throws: `InterferenceError.shapeMismatch` for rows of unequal length.
    public init(rows: [[Double]]) throws(InterferenceError) {
        let n = rows.count
        let width = rows.first?.count ?? 0
        for (r, row) in rows.enumerated() where row.count != width {
            throw .shapeMismatch(name: "rows[\(r)]", expected: [width], found: [row.count])
        }
        var values = [Double](repeating: 0, count: n * n)
        for r in 0..<n {
            for c in r..<n {
                var dot = 0.0
                rows[r].withUnsafeBufferPointer { a in
                    rows[c].withUnsafeBufferPointer { b in
                        for k in 0..<width { dot += a[k] * b[k] }
                    }
                }
                values[r * n + c] = dot
                values[c * n + r] = dot
            }
        }
        self.size = n
        self.values = values
    }

    /// `G[row, column]`.
    public subscript(row: Int, column: Int) -> Double {
        values[row * size + column]
    }

    /// The Gram of the same rows with row `row` multiplied by `factor` (row and column scale).
    public func scalingRow(_ row: Int, by factor: Double) -> GramMatrix {
        var copy = self
        for c in 0..<size {
            copy.values[row * size + c] *= factor
            copy.values[c * size + row] *= factor
        }
        return copy
    }

    /// The Gram of the same samples kept in every task: rows `t·N + kept[k]` for each task t (task-major,
    /// `kept` in the given order), so the result is `[T·K, T·K]` with `K = kept.count`.
    public func keepingSamples(_ kept: [Int], of layout: TaskLayout) -> GramMatrix {
        precondition(
            size == layout.rowCount,
            "GramMatrix.keepingSamples: size \(size), layout \(layout.rowCount)")
        let rows = (0..<layout.taskCount).flatMap { t in
            kept.map { layout.row(task: t, sample: $0) }
        }
        var values = [Double](repeating: 0, count: rows.count * rows.count)
        for (r, source) in rows.enumerated() {
            for (c, column) in rows.enumerated() {
                values[r * rows.count + c] = self[source, column]
            }
        }
        return try! GramMatrix(size: rows.count, values: values)  // count is size² by construction
    }

    /// The Gram of the rows' concatenation: the element-wise sum.
    public static func + (lhs: GramMatrix, rhs: GramMatrix) -> GramMatrix {
        precondition(lhs.size == rhs.size, "GramMatrix +: sizes \(lhs.size) and \(rhs.size)")
        var sum = lhs
        for k in sum.values.indices { sum.values[k] += rhs.values[k] }
        return sum
    }

    /// The sum of several Grams of equal size (a group's Gram).
    /// - Throws: `.emptyGroup` for no matrices, `.shapeMismatch` for unequal sizes.
    public static func sum(_ grams: [GramMatrix], name: String = "group") throws(InterferenceError)
        -> GramMatrix
    {
        guard let first = grams.first else { throw .emptyGroup(name: name) }
        var total = GramMatrix(zerosOfSize: first.size)
        for gram in grams {
            guard gram.size == first.size else {
                throw .shapeMismatch(
                    name: name, expected: [first.size, first.size], found: [gram.size, gram.size])
            }
            for k in total.values.indices { total.values[k] += gram.values[k] }
        }
        return total
    }

    /// Throws `.nonFinite` at the first NaN or infinity.
    public func validateFinite(name: String) throws(InterferenceError) {
        for (k, v) in values.enumerated() where !v.isFinite {
            throw .nonFinite(name: name, row: k / max(size, 1), column: k % max(size, 1))
        }
    }
}

import Interference
import Kernels
import TestSupport
import Testing

/// Seeded structured gradient rows: a shared direction, one per task, noise and a random row scale.
func structuredRows(tasks: Int, samples: Int, width: Int, seed: UInt64) -> [[Double]] {
    var rng = SeededRNG(seed: seed)
    let shared = (0..<width).map { _ in rng.nextGaussian() }
    let own = (0..<tasks).map { _ in (0..<width).map { _ in rng.nextGaussian() } }
    var rows: [[Double]] = []
    for t in 0..<tasks {
        let sign: Double = t == tasks - 1 ? -0.6 : 0.8
        for _ in 0..<samples {
            let scale = 0.3 + 3 * rng.nextDouble()
            rows.append(
                (0..<width).map { k in
                    scale * (sign * shared[k] + own[t][k] + 0.5 * rng.nextGaussian())
                })
        }
    }
    return rows
}

@Suite struct MetricPropertyTests {
    static let layout = try! TaskLayout(tasks: ["cls", "mlm", "cap"], samplesPerTask: 6)

    @Test func diagonalIsExactlyOne() throws {
        let rows = structuredRows(tasks: 3, samples: 6, width: 30, seed: 1)
        let matrix = try InterferenceMatrix(rows: rows, layout: Self.layout)
        for i in 0..<3 { #expect(matrix[i, i] == 1) }
        #expect(!matrix.isFlagged)
    }

    @Test(arguments: [0, 4, 7, 17])
    func scalingOneRowLeavesIUnchanged(row: Int) throws {
        let gram = try GramMatrix(rows: structuredRows(tasks: 3, samples: 6, width: 30, seed: 2))
        let before = try InterferenceMatrix(gram: gram, layout: Self.layout)
        for factor in [1e-3, 0.37, 25.0] {
            let after = try InterferenceMatrix(
                gram: gram.scalingRow(row, by: factor), layout: Self.layout)
            expectClose(
                after.values.flat, before.values.flat, rtol: 1e-12, atol: 1e-12,
                "row \(row) × \(factor)")
        }
    }

    @Test func orthogonalTasksGiveZero() throws {
        // Task 0 lives in coordinates 0..<8, task 1 in 8..<16: every cross inner product is 0.
        var rng = SeededRNG(seed: 3)
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 5)
        let rows: [[Double]] = (0..<10).map { r in
            let base = r < 5 ? 0 : 8
            return (0..<16).map { k in (base..<base + 8).contains(k) ? 1 + rng.nextDouble() : 0 }
        }
        let matrix = try InterferenceMatrix(rows: rows, layout: layout)
        #expect(matrix.values == [[1, 0], [0, 1]])
        let agreement = try GradientAgreement(gram: GramMatrix(rows: rows), layout: layout)
        #expect(agreement.cosine[0][1] == 0)
        #expect(agreement.conflictFraction[0][1] == 0)
    }

    /// The summaries the report prints: the mean conflict leaves out each task's conflicts with
    /// itself, and the most negative entry is an off-diagonal one, the first in row order on a tie.
    @Test func summariesReadOffTheDiagonalOnly() throws {
        // Each task's two samples point against each other (own conflict 1); across tasks half the
        // pairs conflict.
        let rows: [[Double]] = [[1, 0], [-1, 0.1], [1, 1], [-1, -0.5]]
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 2)
        let agreement = try GradientAgreement(gram: GramMatrix(rows: rows), layout: layout)
        #expect(agreement.conflictFraction == [[1, 0.5], [0.5, 1]])
        #expect(agreement.meanCrossTaskConflict == 0.5)

        var matrix = try InterferenceMatrix(
            rows: structuredRows(tasks: 3, samples: 6, width: 10, seed: 8), layout: Self.layout)
        matrix.values = [[1, -0.5, 0.2], [-0.5, 1, -0.5], [-9, -0.1, 1]]
        #expect(matrix.mostNegative! == (2, 0, -9))
        matrix.values[2][0] = .nan
        #expect(matrix.mostNegative! == (0, 1, -0.5))
        // Every task helped by every other: the least entry still comes from off the diagonal.
        matrix.values = [[1, 3, 2], [4, 1, 5], [6, 7, 1]]
        #expect(matrix.mostNegative! == (0, 2, 2))
    }

    @Test func identicalGradientsGiveOne() throws {
        let one = structuredRows(tasks: 1, samples: 5, width: 12, seed: 4)
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 5)
        let matrix = try InterferenceMatrix(rows: one + one, layout: layout)
        expectClose(matrix.values.flat, [1, 1, 1, 1], rtol: 0, atol: 1e-14, "identical tasks")
    }

    @Test func zeroGradientRowsAreZeroStepsNotNaN() throws {
        var rows = structuredRows(tasks: 3, samples: 6, width: 20, seed: 5)
        // Task 2, sample 1: a parameter the batch never touched.
        rows[13] = [Double](repeating: 0, count: 20)
        let matrix = try InterferenceMatrix(rows: rows, layout: Self.layout)
        #expect(matrix.values.flat.allSatisfy { $0.isFinite })
        // Its own denominator is 0 (⟨ĝ, 0⟩ summed) → flagged, not divided by.
        #expect(matrix.flaggedSamples[2] == [1])
        let agreement = try GradientAgreement(gram: GramMatrix(rows: rows), layout: Self.layout)
        #expect(agreement.zeroNormRows == [0, 0, 1])
    }

    @Test func everyDenominatorFlaggedGivesNaNRow() throws {
        var rows = structuredRows(tasks: 2, samples: 3, width: 8, seed: 6)
        for r in 3..<6 { rows[r] = [Double](repeating: 0, count: 8) }
        let matrix = try InterferenceMatrix(
            rows: rows, layout: TaskLayout(tasks: ["a", "b"], samplesPerTask: 3))
        #expect(matrix.nonPositiveDenominators == [0, 3])
        #expect(matrix.values[1].allSatisfy { $0.isNaN })
        #expect(matrix.values[0][0] == 1)
    }

    /// A row undefined at the point estimate gets no interval either, although bootstrap replicates
    /// that avoid the flag define it (task b's three samples cancel at the estimate: every
    /// leave-one-out denominator is ≤ 0, yet a replicate holding {0, 2, 2} gives sample 0 a positive one).
    @Test func undefinedRowHasNoInterval() throws {
        let rows: [[Double]] = [[0.3, 1], [0.5, 0.8], [0.2, 1.1], [1, 0], [-1, 0], [0.1, 0]]
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 3)
        let gram = try GramMatrix(rows: rows)
        let raw = try BootstrapInterval(gram: gram, layout: layout, replicates: 400, seed: 3)
        try #require(raw.low[1].contains { $0.isFinite }, "the fixture must have replicates that define row b")
        // Replicates that leave row b undefined drop both its entries, and are counted: some, not all.
        #expect(raw.undefinedValues > 0 && raw.undefinedValues < 2 * 400 && raw.undefinedValues % 2 == 0, "\(raw.undefinedValues)")
        let group = try GroupAnalysis(
            group: ParameterGroup(name: "g", parameters: ["g.weight"], layer: 0, role: "ffn.dense2"),
            gram: gram, layout: layout, bootstrapReplicates: 400, seed: 3)
        #expect(group.interference.values[1].allSatisfy { $0.isNaN })
        let ci = try #require(group.interval)
        #expect(ci.low[1].allSatisfy { $0.isNaN } && ci.high[1].allSatisfy { $0.isNaN })
        #expect(ci.low[0] == raw.low[0] && ci.high[0] == raw.high[0])
    }

    @Test func badInputsAreRefused() throws {
        let gram = try GramMatrix(rows: structuredRows(tasks: 3, samples: 6, width: 10, seed: 7))
        #expect(
            throws: InterferenceError.shapeMismatch(
                name: "gram", expected: [15, 15], found: [18, 18])
        ) {
            try InterferenceMatrix(
                gram: gram, layout: TaskLayout(tasks: ["a", "b", "c"], samplesPerTask: 5))
        }
        #expect(throws: InterferenceError.tooFewSamples(name: "tasks [\"a\"]", samplesPerTask: 1)) {
            try TaskLayout(tasks: ["a"], samplesPerTask: 1)
        }
        #expect(throws: InterferenceError.samplesNotDivisible(name: "gram", size: 18, tasks: 4)) {
            try TaskLayout(tasks: ["a", "b", "c", "d"], gramSize: 18)
        }
        #expect(throws: InterferenceError.duplicateName("a")) {
            try TaskLayout(tasks: ["a", "a"], samplesPerTask: 3)
        }
        var values = gram.values
        values[20] = .nan
        #expect(throws: InterferenceError.nonFinite(name: "p", row: 1, column: 2)) {
            try InterferenceMatrix(
                gram: GramMatrix(size: 18, values: values), layout: Self.layout, name: "p")
        }
        let message = InterferenceError.nonFinite(name: "p", row: 1, column: 2).description
        #expect(!message.contains("\n"))
    }
}

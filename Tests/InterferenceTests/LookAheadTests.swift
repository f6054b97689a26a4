import Interference
import TestSupport
import Testing

@Suite struct LookAheadTests {
    static let layout = try! TaskLayout(tasks: ["cls", "mlm", "cap"], samplesPerTask: 5)
    static let gram = try! GramMatrix(
        rows: structuredRows(tasks: 3, samples: 5, width: 25, seed: 21))

    /// Exact loss changes that happen to equal the first-order ones, over every pair a ≠ b, divide
    /// exactly as the first-order metric does.
    @Test func firstOrderMeasurementsOfAllPairsReproduceTheMetric() throws {
        let all = LookAheadPlan.pairs(layout: Self.layout, lossSamples: 5, stepSamples: 4, seed: 1)
        #expect(all.count == 3 * 5 * 3 * 4)
        let lambda = 1e-3
        let measured = try LookAheadPlan.firstOrder(
            all, gram: Self.gram, layout: Self.layout, stepSize: lambda)
        let lookAhead = try InterferenceMatrix(
            lookAhead: measured, layout: Self.layout, stepSize: lambda)
        let firstOrder = try InterferenceMatrix(gram: Self.gram, layout: Self.layout)
        expectClose(lookAhead.values.flat, firstOrder.values.flat, rtol: 1e-12, atol: 1e-12, "I")
        expectClose(lookAhead.delta.flat, firstOrder.delta.flat, rtol: 1e-12, atol: 1e-12, "delta")
        #expect(
            lookAhead.relativeDifference(from: firstOrder).flat.allSatisfy {
                $0 < 1e-12 || $0.isNaN
            })
    }

    /// The two numbers the reports print for the check. Exact cross-task changes 1.5 times the
    /// first-order ones, own changes equal: every off-diagonal I is 1.5 times, so the off-diagonal
    /// difference is 0.5 (the diagonals, 1 in both, must not dilute it).
    @Test func summaryDifferences() throws {
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 2)
        var exact: [LookAheadMeasurement] = []
        var firstOrder: [LookAheadMeasurement] = []
        for i in 0..<2 {
            for b in 0..<2 {
                for j in 0..<2 {
                    let change = i == j ? 0.2 + 0.1 * Double(b) : 0.05 * Double(i + 1) - 0.01 * Double(b)
                    let pair = LookAheadMeasurement(
                        lossTask: i, lossSample: b, stepTask: j, stepSample: 1 - b, lossChange: change)
                    firstOrder.append(pair)
                    exact.append(pair)
                    if i != j { exact[exact.count - 1].lossChange *= 1.5 }
                }
            }
        }
        let check = try LookAheadCheck(
            stepSize: 0.1, seed: 0, exactChanges: exact, firstOrderChanges: firstOrder, layout: layout)
        expectClose([check.offDiagonalRelativeDifference], [0.5], rtol: 1e-12, atol: 0, "off-diagonal")
        let squared = { (m: [LookAheadMeasurement]) in m.map { $0.lossChange * $0.lossChange }.reduce(0, +) }
        let moved = zip(exact, firstOrder).map { $0.lossChange - $1.lossChange }.map { $0 * $0 }.reduce(0, +)
        expectClose(
            [check.lossChangeRelativeDifference], [(moved / squared(firstOrder)).squareRoot()],
            rtol: 1e-12, atol: 0, "loss changes")
    }

    @Test func subsampleIsSeededAndLeavesOneOut() {
        let a = LookAheadPlan.pairs(layout: Self.layout, lossSamples: 2, stepSamples: 2, seed: 9)
        let b = LookAheadPlan.pairs(layout: Self.layout, lossSamples: 2, stepSamples: 2, seed: 9)
        #expect(a == b)
        #expect(a.count == 3 * 2 * 3 * 2)
        #expect(a.allSatisfy { $0.lossSample != $0.stepSample })
    }

    @Test func refusesTheSameSampleAndBadStep() {
        let m = LookAheadMeasurement(
            lossTask: 0, lossSample: 1, stepTask: 1, stepSample: 1, lossChange: 0.1)
        #expect(throws: InterferenceError.self) {
            try InterferenceMatrix(lookAhead: [m], layout: Self.layout, stepSize: 0.1)
        }
        #expect(throws: InterferenceError.self) {
            try InterferenceMatrix(lookAhead: [], layout: Self.layout, stepSize: 0)
        }
    }

    @Test func negativeOwnChangeIsFlagged() throws {
        let ms = [
            LookAheadMeasurement(
                lossTask: 0, lossSample: 0, stepTask: 0, stepSample: 1, lossChange: -0.2),
            LookAheadMeasurement(
                lossTask: 0, lossSample: 0, stepTask: 1, stepSample: 1, lossChange: 0.1),
            LookAheadMeasurement(
                lossTask: 0, lossSample: 2, stepTask: 0, stepSample: 1, lossChange: 0.4),
            LookAheadMeasurement(
                lossTask: 0, lossSample: 2, stepTask: 1, stepSample: 3, lossChange: -0.1),
        ]
        let m = try InterferenceMatrix(lookAhead: ms, layout: Self.layout, stepSize: 0.5)
        #expect(m.nonPositiveDenominators == [1, 0, 0])
        #expect(m.flaggedSamples[0] == [0])
        expectClose([m[0, 1]], [-0.25], rtol: 1e-15, atol: 0)
        #expect(m[1, 0].isNaN)
    }
}

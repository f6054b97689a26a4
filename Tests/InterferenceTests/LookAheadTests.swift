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

import Interference
import TestSupport
import Testing

@Suite struct BootstrapTests {
    static let layout = try! TaskLayout(tasks: ["cls", "mlm", "cap"], samplesPerTask: 12)
    static let gram = try! GramMatrix(
        rows: structuredRows(tasks: 3, samples: 12, width: 40, seed: 11))

    @Test func deterministicForASeed() throws {
        let a = try BootstrapInterval(
            gram: Self.gram, layout: Self.layout, replicates: 200, seed: 42)
        let b = try BootstrapInterval(
            gram: Self.gram, layout: Self.layout, replicates: 200, seed: 42)
        let c = try BootstrapInterval(
            gram: Self.gram, layout: Self.layout, replicates: 200, seed: 43)
        #expect(a == b)
        #expect(a.low != c.low)
    }

    @Test func intervalContainsPointEstimateOnWellBehavedData() throws {
        let point = try InterferenceMatrix(gram: Self.gram, layout: Self.layout)
        let interval = try BootstrapInterval(gram: Self.gram, layout: Self.layout, seed: 7)
        #expect(interval.replicates == 1000)
        #expect(interval.undefinedValues == 0)
        for i in 0..<3 {
            for j in 0..<3 {
                #expect(
                    interval.contains(point[i, j], i: i, j: j),
                    "I[\(i),\(j)] = \(point[i, j]) outside [\(interval.low[i][j]), \(interval.high[i][j])]"
                )
                if i != j { #expect(interval.low[i][j] < interval.high[i][j]) }
            }
            #expect(interval.low[i][i] == 1 && interval.high[i][i] == 1)
        }
    }

    @Test func refusesBadSettings() {
        #expect(throws: InterferenceError.self) {
            try BootstrapInterval(gram: Self.gram, layout: Self.layout, replicates: 0, seed: 1)
        }
        #expect(throws: InterferenceError.self) {
            try BootstrapInterval(gram: Self.gram, layout: Self.layout, seed: 1, confidence: 1)
        }
    }

    @Test func percentileMatchesNumPyLinear() {
        // numpy.percentile([1, 2, 4, 8], [2.5, 50, 97.5]) = [1.075, 3.0, 7.7]
        let sorted: [Double] = [1, 2, 4, 8]
        expectClose(
            [
                percentile(sorted: sorted, q: 0.025), percentile(sorted: sorted, q: 0.5),
                percentile(sorted: sorted, q: 0.975),
            ], [1.075, 3.0, 7.7], rtol: 1e-12, atol: 1e-12)
        #expect(percentile(sorted: [], q: 0.5).isNaN)
    }
}

import Kernels
import Testing

@testable import GradientProbe

@Suite struct GramAccumulatorTests {
    /// 150 rows (three row tiles, the last partial) of 5000 values (two column blocks).
    static let count = 150
    static let width = 5000
    static let rows: [Float] = {
        var rng = SeededRNG(seed: 3)
        return (0..<(count * width)).map { _ in Float(rng.nextGaussian()) * (1 + Float(rng.nextInt(below: 3))) }
    }()

    func gram(superRows: Int) -> [Double] {
        let rows = Self.rows
        let width = Self.width
        return GramAccumulator.gram(rowCount: Self.count, width: width, superRows: superRows) { range in
            Array(rows[(range.lowerBound * width)..<(range.upperBound * width)])
        }
    }

    @Test func equalsExplicitDotProductsInDouble() {
        let fast = gram(superRows: Self.count)
        let naive = naiveGram(Self.rows, count: Self.count, width: Self.width)
        // Relative to the entry's scale √(G_aa G_bb): cross entries of random rows nearly cancel.
        var worst = 0.0
        for a in 0..<Self.count {
            for b in 0..<Self.count {
                let scale = (naive[a * Self.count + a] * naive[b * Self.count + b]).squareRoot()
                worst = max(worst, abs(fast[a * Self.count + b] - naive[a * Self.count + b]) / scale)
            }
        }
        #expect(worst < 1e-13)
    }

    @Test func exactlySymmetric() {
        let g = gram(superRows: 64)
        for a in 0..<Self.count {
            for b in 0..<a { #expect(g[a * Self.count + b] == g[b * Self.count + a]) }
        }
    }

    @Test func rowsLoadedPerCallDoNotChangeABit() {
        let whole = gram(superRows: Self.count)
        #expect(gram(superRows: 64) == whole)
        #expect(gram(superRows: 128) == whole)
        #expect(gram(superRows: 1) == whole)  // rounded up to one tile
        #expect(gram(superRows: 10_000) == whole)
    }

    @Test func budgetGivesWholeTilesAndAtLeastOne() {
        #expect(GramAccumulator.superRows(width: 1000, budget: 0) == 64)
        let rows = GramAccumulator.superRows(width: 1000, budget: 100 << 20)
        #expect(rows % 64 == 0)
        #expect(rows * 2 * (4 * 1000 + 8 * 1000) <= 100 << 20)
    }
}

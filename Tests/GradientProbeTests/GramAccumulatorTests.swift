import Kernels
import Testing

@testable import GradientProbe

/// `GramAccumulator.gram` of in-memory rows, `superRows` of them handed over per load.
func accumulatedGram(_ rows: [Float], count: Int, width: Int, superRows: Int) -> [Double] {
    GramAccumulator.gram(rowCount: count, width: width, superRows: superRows) { range in
        Array(rows[(range.lowerBound * width)..<(range.upperBound * width)])
    }
}

@Suite struct GramAccumulatorTests {
    /// 150 rows (three row tiles, the last partial) of 5000 values (two column blocks).
    static let count = 150
    static let width = 5000
    static let rows: [Float] = {
        var rng = SeededRNG(seed: 3)
        return (0..<(count * width)).map { _ in Float(rng.nextGaussian()) * (1 + Float(rng.nextInt(below: 3))) }
    }()

    func gram(superRows: Int) -> [Double] {
        accumulatedGram(Self.rows, count: Self.count, width: Self.width, superRows: superRows)
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

/// Rows that are zero in a column block (an MoE expert no mini-batch routed to) are skipped: the
/// Gram must still equal the explicit dot products, zero rows give exact zeros, and the result must
/// not depend on how rows are loaded.
@Suite struct GramAccumulatorZeroRowTests {
    /// 150 rows × 5000 (two column blocks). Zero: every third row entirely; rows 64..<128 (one
    /// whole tile) in the first block; row 5 in the second block only.
    static let count = 150
    static let width = 5000
    static let rows: [Float] = {
        var rng = SeededRNG(seed: 4)
        var values = (0..<(count * width)).map { _ in Float(rng.nextGaussian()) }
        for r in 0..<count {
            let zeroColumns: Range<Int>? =
                r % 3 == 0 ? 0..<width
                : (64..<128).contains(r) ? 0..<GramAccumulator.columnBlock
                : r == 5 ? GramAccumulator.columnBlock..<width : nil
            if let zeroColumns { for c in zeroColumns { values[r * width + c] = 0 } }
        }
        return values
    }()

    func gram(superRows: Int) -> [Double] {
        accumulatedGram(Self.rows, count: Self.count, width: Self.width, superRows: superRows)
    }

    @Test func equalsExplicitDotProductsAndZeroRowsGiveZeros() {
        let n = Self.count
        let fast = gram(superRows: n)
        let naive = naiveGram(Self.rows, count: n, width: Self.width)
        var worst = 0.0
        for a in 0..<n where a % 3 != 0 {
            for b in 0..<n where b % 3 != 0 {
                let scale = (naive[a * n + a] * naive[b * n + b]).squareRoot()
                worst = max(worst, abs(fast[a * n + b] - naive[a * n + b]) / scale)
            }
        }
        #expect(worst < 1e-13)
        var nonZero = 0
        for a in stride(from: 0, to: n, by: 3) {
            for b in 0..<n where fast[a * n + b] != 0 || fast[b * n + a] != 0 { nonZero += 1 }
        }
        #expect(nonZero == 0, "entries of all-zero rows are exactly 0")
        #expect(fast[5 * n + 5] > 0 && fast[70 * n + 70] > 0, "rows zero in one block only still count their other block")
    }

    @Test func rowsLoadedPerCallDoNotChangeABit() {
        let whole = gram(superRows: Self.count)
        #expect(gram(superRows: 64) == whole)
        #expect(gram(superRows: 128) == whole)
    }

    /// The skipping itself: a packed column block holds only the rows that are not zero in it.
    @Test func packedTilesLeaveOutTheRowsThatAreZeroInTheirBlock() {
        let n = Self.count
        let width = Self.width
        let block = GramAccumulator.columnBlock
        var packed = GramAccumulator.PackedBlock()
        packed.pack(Self.rows, rows: 0..<n, width: width, columns: 0..<block)
        let kept = packed.tiles.map(\.rows)
        #expect(packed.tiles.map(\.index) == [0, 1, 2])
        #expect(kept[0] == (0..<64).filter { $0 % 3 != 0 })
        #expect(kept[1].isEmpty, "rows 64..<128 are zero in the first block")
        #expect(kept[2] == (128..<n).filter { $0 % 3 != 0 })
        let second = packed.tiles[2]
        #expect(packed.values[second.offset * block] == Double(Self.rows[second.rows[0] * width]))
        packed.pack(Self.rows, rows: 0..<n, width: width, columns: block..<width)
        #expect(packed.tiles[0].rows == (0..<64).filter { $0 % 3 != 0 && $0 != 5 }, "row 5 is zero in the second block")
        #expect(packed.tiles[1].rows == (64..<128).filter { $0 % 3 != 0 })
    }
}

import Kernels
import TestSupport
import Testing

/// The dispatched experts' row kernels against their naive twins, at widths around the 8-lane SIMD
/// width (vector body, scalar tail, both) and the model's 128 and 512; outputs start as NaN where
/// they must be overwritten and as random values where they accumulate.
@Suite("Dispatched expert row kernels vs naive twins")
struct ExpertDispatchTests {
    @Test(arguments: [1, 7, 8, 13, 128, 515])
    func pairSumAndAdd(_ n: Int) {
        var rng = SeededRNG(seed: 41)
        let a = rng.gaussianFloats(count: n)
        let b = rng.gaussianFloats(count: n)
        let start = rng.gaussianFloats(count: n)
        var fast = [Float](repeating: .nan, count: n)
        var naive = [Float](repeating: .nan, count: n)
        fast.withUnsafeMutableBufferPointer { weightedPairSum(output: $0.baseAddress!, a, 0.3, b, 0.7, count: n) }
        naive.withUnsafeMutableBufferPointer { weightedPairSumNaive(output: $0.baseAddress!, a, 0.3, b, 0.7, count: n) }
        expectClose(fast, naive, tolerance: .fastVersusNaive, "weighted pair n=\(n)")

        var fastSum = start
        var naiveSum = start
        fastSum.withUnsafeMutableBufferPointer { addPair(into: $0.baseAddress!, a, b, count: n) }
        naiveSum.withUnsafeMutableBufferPointer { addPairNaive(into: $0.baseAddress!, a, b, count: n) }
        // Same additions in the same order: equal bit for bit.
        #expect(fastSum == naiveSum, "addPair n=\(n)")
    }

    @Test(arguments: [(1, 1), (3, 7), (5, 8), (17, 13), (40, 128), (9, 515), (0, 16)])
    func rowSums(_ shape: (rows: Int, width: Int)) {
        var rng = SeededRNG(seed: 42)
        let rows = rng.gaussianFloats(count: shape.rows * shape.width)
        let start = rng.gaussianFloats(count: shape.width)
        var fast = start
        var naive = start
        fast.withUnsafeMutableBufferPointer {
            addRows(into: $0.baseAddress!, rows: rows, count: shape.rows, width: shape.width)
        }
        naive.withUnsafeMutableBufferPointer {
            addRowsNaive(into: $0.baseAddress!, rows: rows, count: shape.rows, width: shape.width)
        }
        #expect(fast == naive, "addRows \(shape)")
        // A lane's share: columns 3..<width+3 of rows 5 wider, against the same sums taken whole.
        let stride = shape.width + 5
        var wide = [Float](repeating: .nan, count: shape.rows * stride)
        for r in 0..<shape.rows {
            for i in 0..<shape.width { wide[r * stride + 3 + i] = rows[r * shape.width + i] }
        }
        var share = start
        share.withUnsafeMutableBufferPointer { y in
            wide.withUnsafeBufferPointer {
                addRows(into: y.baseAddress!, rows: $0.baseAddress! + 3, count: shape.rows, width: shape.width, stride: stride)
            }
        }
        #expect(share == naive, "addRows \(shape), stride \(stride)")
    }
}

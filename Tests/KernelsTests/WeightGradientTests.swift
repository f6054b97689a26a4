import Kernels
import TestSupport
import Testing

/// `linearWeightGradient` over output ranges: the encoder's lanes each write one range of a weight
/// gradient over every row of a batch, so the ranges must tile `linearBackward`'s `dW` exactly,
/// overwrite must ignore what the buffer held, and rows outside the range must stay untouched.
@Suite("Linear weight gradient by output ranges")
struct WeightGradientTests {
    static let (rows, inF, outF) = (9, 6, 7)

    static func operands() -> (dy: [Float], x: [Float], w: [Float]) {
        var rng = SeededRNG(seed: 53)
        return (
            rng.gaussianFloats(count: rows * outF), rng.gaussianFloats(count: rows * inF),
            rng.gaussianFloats(count: outF * inF))
    }

    /// `dW` over `ranges`, each written by its own call, starting from `start`.
    static func byRanges(_ ranges: [Range<Int>], start: [Float], accumulate: Bool) -> [Float] {
        let (dy, x, _) = operands()
        var dw = start
        dw.withUnsafeMutableBufferPointer { p in
            for r in ranges {
                linearWeightGradient(
                    dWeight: p.baseAddress!, dOutput: dy, input: x, rows: rows, inFeatures: inF,
                    outFeatures: outF, outputs: r, accumulate: accumulate)
            }
        }
        return dw
    }

    @Test(arguments: [[0..<7], [0..<3, 3..<7], [0..<1, 1..<4, 4..<7]])
    func rangesTileTheBackwardsWeightGradient(_ ranges: [Range<Int>]) {
        let (dy, x, w) = Self.operands()
        var dx: [Float]? = nil
        var db: [Float]? = nil
        var expected = zeros(Self.outF * Self.inF)
        linearBack(dy: dy, x: x, w: w, rows: Self.rows, inF: Self.inF, outF: Self.outF, dx: &dx, dw: &expected, db: &db)
        #expect(expected.contains { $0 != 0 })
        let overwritten = Self.byRanges(ranges, start: [Float](repeating: .nan, count: expected.count), accumulate: false)
        expectClose(overwritten, expected, tolerance: .accumulate, "overwrite over \(ranges) from NaN")
        let start = (0..<expected.count).map { Float($0) / 10 }
        let accumulated = Self.byRanges(ranges, start: start, accumulate: true)
        expectClose(accumulated, adding(start, expected), tolerance: .accumulate, "accumulate over \(ranges)")
    }

    @Test func rowsOutsideTheRangeAreUntouched() {
        let start = [Float](repeating: .nan, count: Self.outF * Self.inF)
        let dw = Self.byRanges([2..<5], start: start, accumulate: false)
        for o in 0..<Self.outF {
            let row = dw[(o * Self.inF)..<((o + 1) * Self.inF)]
            if (2..<5).contains(o) {
                #expect(row.allSatisfy { $0.isFinite }, "row \(o) inside the range was not written")
            } else {
                #expect(row.allSatisfy { $0.isNaN }, "row \(o) outside the range was written")
            }
        }
    }
}

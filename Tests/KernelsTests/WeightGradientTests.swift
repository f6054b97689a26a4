@testable import Kernels
import TestSupport
import Synchronization
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

    /// Outside lanes a large weight gradient is cut into one share of output rows per BLAS thread,
    /// each computed in a lane on single-threaded BLAS (OpenBLAS's own worker, once woken, spins and
    /// slows the lanes that follow); the shares tile the outputs, and a small product is one call,
    /// single-threaded as well.
    @Test func largeProductsSplitIntoLanesOnSingleThreadedBLAS() {
        let calls = Mutex<[(Range<Int>, Int)]>([])
        splitOutputs(512, rows: 136, inner: 128, threads: 2) { share in
            calls.withLock { $0.append((share, BLASThreads.count)) }
        }
        let seen = calls.withLock { $0 }.sorted { $0.0.lowerBound < $1.0.lowerBound }
        #expect(seen.map(\.0) == [0..<256, 256..<512])
        #expect(seen.allSatisfy { $0.1 == 1 }, "BLAS threads inside the shares: \(seen.map(\.1))")
        calls.withLock { $0 = [] }
        splitOutputs(64, rows: 9, inner: 6, threads: 2) { share in calls.withLock { $0.append((share, BLASThreads.count)) } }
        #expect(calls.withLock { $0.map(\.0) } == [0..<64])
        #expect(calls.withLock { $0.map(\.1) } == [1], "a product too small to cut runs on single-threaded BLAS too")
    }

    /// `linearBackward`'s split weight gradient equals one BLAS call over every output: bit for bit
    /// with OpenBLAS's `Cooperlake` kernels (the Zen 4 host), within rounding with others (`Prescott`
    /// rounds a row by where it falls in its blocking); a lost or doubled share is off by O(1).
    @Test func splitWeightGradientEqualsTheWholeProduct() {
        let (rows, inF, outF) = (136, 128, 512)
        var rng = SeededRNG(seed: 71)
        let dy = rng.gaussianFloats(count: rows * outF)
        let x = rng.gaussianFloats(count: rows * inF)
        var whole = [Float](repeating: 0, count: outF * inF)
        linearWeightGradient(
            dWeight: &whole, dOutput: dy, input: x, rows: rows, inFeatures: inF, outFeatures: outF,
            outputs: 0..<outF, accumulate: true)
        var split = [Float](repeating: 0, count: outF * inF)
        split.withUnsafeMutableBufferPointer { p in
            splitOutputs(outF, rows: rows, inner: inF, threads: 2) { share in
                linearWeightGradient(
                    dWeight: p.baseAddress!, dOutput: dy, input: x, rows: rows, inFeatures: inF,
                    outFeatures: outF, outputs: share, accumulate: true)
            }
        }
        expectClose(split, whole, tolerance: .fastVersusNaive(reduction: rows), "dW split in two shares")
    }
}

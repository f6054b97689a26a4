import Kernels
import TestSupport
import Testing

/// The one-pass MoE merge kernels against their naive twins: lengths around the 8-lane SIMD width
/// (so the vector body, the scalar tail and both together are hit), top-1, top-2 and top-3, and
/// gradients that start non-zero so the accumulation is compared too.
@Suite("Expert merge kernels vs naive twins")
struct ExpertMergeTests {
    static let cases: [(count: Int, k: Int)] = [
        (1, 2), (7, 2), (8, 2), (13, 2), (1003, 2), (4096, 2), (13, 1), (1003, 1), (13, 3), (1003, 3),
    ]

    @Test(arguments: cases)
    func mergeAndBackward(_ c: (count: Int, k: Int)) {
        var rng = SeededRNG(seed: 31)
        let n = c.count
        let experts = (0..<c.k).map { _ in rng.gaussianFloats(count: n) }
        let raw = rng.uniformFloats(count: c.k, in: 0.1...1)
        let gates = raw.map { $0 / raw.reduce(0, +) }
        let dMerged = rng.gaussianFloats(count: n)
        let start = (0..<c.k).map { _ in rng.uniformFloats(count: n) }

        var fastMerged = [Float](repeating: .nan, count: n)  // overwritten whole, never read
        var naiveMerged = [Float](repeating: 0, count: n)
        withPointers(experts) { x in
            fastMerged.withUnsafeMutableBufferPointer {
                expertMerge(merged: $0.baseAddress!, experts: x, gates: gates, count: n)
            }
            naiveMerged.withUnsafeMutableBufferPointer {
                expertMergeNaive(merged: $0.baseAddress!, experts: x, gates: gates, count: n)
            }
        }
        expectClose(fastMerged, naiveMerged, tolerance: .fastVersusNaive, "merged n=\(n) k=\(c.k)")

        var fastGrads = start
        var naiveGrads = start
        var fastDots: [Double] = []
        var naiveDots: [Double] = []
        withPointers(experts) { x in
            dMerged.withUnsafeBufferPointer { d in
                fastDots = withMutablePointers(&fastGrads) { g in
                    expertMergeBackward(dExperts: g, dMerged: d.baseAddress!, experts: x, gates: gates, count: n)
                }
                naiveDots = withMutablePointers(&naiveGrads) { g in
                    expertMergeBackwardNaive(dExperts: g, dMerged: d.baseAddress!, experts: x, gates: gates, count: n)
                }
            }
        }
        for j in 0..<c.k {
            expectClose(fastGrads[j], naiveGrads[j], tolerance: .fastVersusNaive, "dExpert \(j) n=\(n) k=\(c.k)")
        }
        // Both accumulate exact Float products in Double; only the summation order differs.
        expectClose(fastDots, naiveDots, rtol: 1e-12, atol: 1e-12, "gate dots n=\(n) k=\(c.k)")
    }

    /// First writes (`overwrite`) never read the gradient (it starts as NaN here) and equal the
    /// naive twin's zero-then-accumulate, flag by flag.
    @Test(arguments: [(13, [true, false]), (1003, [false, true]), (40_003, [true, true]), (40_003, [false, false]), (40_003, [true])])
    func overwrite(_ c: (count: Int, overwrite: [Bool])) {
        var rng = SeededRNG(seed: 32)
        let n = c.count
        let k = c.overwrite.count
        let experts = (0..<k).map { _ in rng.gaussianFloats(count: n) }
        let gates = k == 1 ? [Float(1)] : [0.7, 0.3]
        let dMerged = rng.gaussianFloats(count: n)
        let start = (0..<k).map { j in c.overwrite[j] ? [Float](repeating: .nan, count: n) : rng.uniformFloats(count: n) }
        var naiveGrads = start
        var fastGrads = start
        var dots: [[Double]] = []
        withPointers(experts) { x in
            dMerged.withUnsafeBufferPointer { d in
                dots.append(withMutablePointers(&naiveGrads) { g in
                    expertMergeBackwardNaive(
                        dExperts: g, dMerged: d.baseAddress!, experts: x, gates: gates, count: n, overwrite: c.overwrite)
                })
                dots.append(withMutablePointers(&fastGrads) { g in
                    expertMergeBackward(
                        dExperts: g, dMerged: d.baseAddress!, experts: x, gates: gates, count: n, overwrite: c.overwrite)
                })
            }
        }
        for j in 0..<k {
            #expect(fastGrads[j].allSatisfy { $0.isFinite }, "NaN read back from an overwritten gradient, n=\(n)")
            expectClose(fastGrads[j], naiveGrads[j], tolerance: .fastVersusNaive, "overwrite dExpert \(j) n=\(n)")
        }
        expectClose(dots[1], dots[0], rtol: 1e-12, atol: 1e-12, "gate dots n=\(n)")
    }

    private func withMutablePointers<R>(
        _ arrays: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>]) -> R
    ) -> R {
        // Separate storage per expert (as the experts' gradient ranges are), copied back after.
        let buffers = arrays.map { a in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(a.count, 1))
            p.initialize(from: a, count: a.count)
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        let result = body(buffers)
        for j in arrays.indices { arrays[j] = Array(UnsafeBufferPointer(start: buffers[j], count: arrays[j].count)) }
        return result
    }
}

@Suite("Dispatched expert row backward vs naive twin")
struct ExpertRowBackwardTests {
    @Test(arguments: [1, 7, 8, 13, 128, 515])
    func rowBackward(_ n: Int) {
        var rng = SeededRNG(seed: 32)
        let dy = rng.gaussianFloats(count: n)
        let y = rng.gaussianFloats(count: n)
        var fast = [Float](repeating: .nan, count: n)
        var naive = [Float](repeating: .nan, count: n)
        var fastDot = 0.0
        var naiveDot = 0.0
        dy.withUnsafeBufferPointer { d in
            y.withUnsafeBufferPointer { e in
                fastDot = fast.withUnsafeMutableBufferPointer {
                    expertRowBackward(
                        output: $0.baseAddress!, dOutput: d.baseAddress!, gate: 0.37, expertOutput: e.baseAddress!,
                        count: n)
                }
                naiveDot = naive.withUnsafeMutableBufferPointer {
                    expertRowBackwardNaive(
                        output: $0.baseAddress!, dOutput: d.baseAddress!, gate: 0.37, expertOutput: e.baseAddress!,
                        count: n)
                }
            }
        }
        expectClose(fast, naive, tolerance: .fastVersusNaive, "scaled row n=\(n)")
        expectClose([fastDot], [naiveDot], rtol: 1e-12, atol: 1e-12, "gate dot n=\(n)")
    }
}

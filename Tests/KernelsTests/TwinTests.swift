import Kernels
import TestSupport
import Testing

/// Every non-GEMM fast kernel against its naive Double twin (Reference.swift), forward and
/// backward, on odd shapes. Backwards start from a non-zero buffer so the twins' accumulation is
/// compared too.
@Suite("Fast kernels vs naive twins")
struct TwinTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 1), (3, 7), (13, 17), (5, 64)]

    @Test(arguments: shapes)
    func layerNorm(_ s: (rows: Int, cols: Int)) {
        var rng = SeededRNG(seed: 11)
        let x = layerNormInput(rows: s.rows, cols: s.cols, rng: &rng)
        let w = rng.uniformFloats(count: s.cols, in: 0.5...1.5)
        let b = rng.uniformFloats(count: s.cols)
        let dy = rng.gaussianFloats(count: s.rows * s.cols)
        let fast = KernelsTests.layerNorm(x: x, w: w, b: b, rows: s.rows, cols: s.cols)
        let naive = KernelsTests.layerNorm(
            x: x, w: w, b: b, rows: s.rows, cols: s.cols, naive: true)
        expectClose(fast.y, naive.y, tolerance: .fastVersusNaive, "layernorm y")
        expectClose(fast.mean, naive.mean, tolerance: .fastVersusNaive, "layernorm mean")
        expectClose(fast.rstd, naive.rstd, tolerance: .fastVersusNaive, "layernorm rstd")

        let dx0 = rng.uniformFloats(count: x.count)
        let dw0 = rng.uniformFloats(count: s.cols)
        let db0 = rng.uniformFloats(count: s.cols)
        var (dxF, dwF, dbF) = (dx0, dw0, db0)
        var (dxN, dwN, dbN) = (dx0, dw0, db0)
        layerNormBack(dy: dy, x: x, w: w, rows: s.rows, cols: s.cols, dx: &dxF, dw: &dwF, db: &dbF)
        layerNormBack(
            dy: dy, x: x, w: w, rows: s.rows, cols: s.cols, dx: &dxN, dw: &dwN, db: &dbN,
            naive: true)
        expectClose(dxF, dxN, tolerance: .fastVersusNaive, "layernorm dx")
        expectClose(dwF, dwN, tolerance: .fastVersusNaive, "layernorm dweight")
        expectClose(dbF, dbN, tolerance: .fastVersusNaive, "layernorm dbias")
    }

    @Test func gelu() {
        // Include the tails and zero, where erf saturates or the derivative is ½.
        var rng = SeededRNG(seed: 12)
        let x = rng.uniformFloats(count: 61, in: -6...6) + [0, -0.0, 1e-4, -8, 8]
        let dy = rng.gaussianFloats(count: x.count)
        expectClose(
            KernelsTests.gelu(x), KernelsTests.gelu(x, naive: true), tolerance: .fastVersusNaive,
            "gelu y")
        let start = rng.uniformFloats(count: x.count)
        var fast = start
        var naive = start
        geluBack(dy: dy, x: x, dx: &fast)
        geluBack(dy: dy, x: x, dx: &naive, naive: true)
        expectClose(fast, naive, tolerance: .fastVersusNaive, "gelu dx")
    }

    @Test(arguments: shapes)
    func maskedSoftmax(_ s: (rows: Int, cols: Int)) {
        var rng = SeededRNG(seed: 13)
        let z = maskedLogits(rows: s.rows, cols: s.cols, rng: &rng)
        let dp = rng.gaussianFloats(count: z.count)
        let fast = softmax(z, rows: s.rows, cols: s.cols)
        expectClose(
            fast, softmax(z, rows: s.rows, cols: s.cols, naive: true), tolerance: .fastVersusNaive,
            "softmax probs")
        for i in z.indices where z[i] == -.infinity {
            #expect(fast[i] == 0, "masked prob \(i) is \(fast[i])")
        }
        let start = rng.uniformFloats(count: z.count)
        var dzF = start
        var dzN = start
        softmaxBack(dp: dp, z: z, rows: s.rows, cols: s.cols, dz: &dzF)
        softmaxBack(dp: dp, z: z, rows: s.rows, cols: s.cols, dz: &dzN, naive: true)
        expectClose(dzF, dzN, tolerance: .fastVersusNaive, "softmax dlogits")
        for i in z.indices where z[i] == -.infinity {
            #expect(dzF[i] == start[i], "masked dlogit \(i) changed")
        }
    }

    /// Logits far above `expf`'s range (e^89 overflows Float): only the max subtraction keeps the
    /// row finite (mutant K35 survived: every tested logit was of order 1).
    @Test func softmaxOfLargeLogits() {
        let (rows, cols) = (3, 7)
        var rng = SeededRNG(seed: 16)
        var z = rng.gaussianFloats(count: rows * cols, std: 2).map { $0 + 300 }
        z[3] = -.infinity
        z[cols + 1] = 95
        let fast = softmax(z, rows: rows, cols: cols)
        #expect(fast.allSatisfy { $0.isFinite }, "probs \(fast)")
        expectClose(fast, softmax(z, rows: rows, cols: cols, naive: true), tolerance: .fastVersusNaive, "softmax probs")
    }

    /// GELU far out, where `−x²/2` is below −87 and `fastExp` must clamp before it builds 2ⁿ (at
    /// |x| ≥ 13.3 an unclamped n wraps the exponent bits): the slope is Φ(x), 1 or 0. Nine values,
    /// so both the SIMD body and its tail see them (mutant K31 survived: no tested |x| exceeded 8).
    @Test func geluFarTails() {
        let x: [Float] = [14, -14, 20, -20, 13.5, -50, 1e4, -1e4, -13.4]
        expectClose(KernelsTests.gelu(x), KernelsTests.gelu(x, naive: true), tolerance: .fastVersusNaive, "gelu y")
        let dy = [Float](repeating: 1, count: x.count)
        var fast = [Float](repeating: 0, count: x.count)
        var naive = fast
        geluBack(dy: dy, x: x, dx: &fast)
        geluBack(dy: dy, x: x, dx: &naive, naive: true)
        expectClose(fast, naive, tolerance: .fastVersusNaive, "gelu slope")
        let expected: [Float] = [1, 0, 1, 0, 1, 0, 1, 0, 0]
        #expect(zip(fast, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "slopes \(fast)")
    }

    @Test(arguments: [Float(0), 0.1])
    func crossEntropy(_ smoothing: Float) {
        let (rows, classes) = (6, 11)
        var rng = SeededRNG(seed: 14)
        let z = rng.gaussianFloats(count: rows * classes, std: 2)
        var targets = rng.integers(count: rows, below: classes)
        targets[2] = -1  // an ignored row
        let fast = KernelsTests.crossEntropy(
            z, targets: targets, rows: rows, classes: classes, smoothing: smoothing)
        let naive = KernelsTests.crossEntropy(
            z, targets: targets, rows: rows, classes: classes, smoothing: smoothing, naive: true)
        #expect(fast.counted == rows - 1 && naive.counted == rows - 1)
        expectClose(
            [fast.mean], [naive.mean], tolerance: .fastVersusNaive,
            "cross-entropy loss, ε \(smoothing)")
        let start = rng.uniformFloats(count: z.count)
        var dzF = start
        var dzN = start
        let scale = 1 / Float(fast.counted)
        crossEntropyBack(
            z, targets: targets, rows: rows, classes: classes, smoothing: smoothing, scale: scale,
            dz: &dzF)
        crossEntropyBack(
            z, targets: targets, rows: rows, classes: classes, smoothing: smoothing, scale: scale,
            dz: &dzN, naive: true)
        expectClose(dzF, dzN, tolerance: .fastVersusNaive, "cross-entropy dlogits, ε \(smoothing)")
        #expect(
            Array(dzF[(2 * classes)..<(3 * classes)])
                == Array(start[(2 * classes)..<(3 * classes)]), "ignored row changed")
    }

    @Test(arguments: shapes)
    func l2Normalize(_ s: (rows: Int, cols: Int)) {
        var rng = SeededRNG(seed: 15)
        let x = rng.gaussianFloats(count: s.rows * s.cols, std: 3)
        let dy = rng.gaussianFloats(count: x.count)
        let fast = KernelsTests.l2Normalize(x, rows: s.rows, cols: s.cols)
        let naive = KernelsTests.l2Normalize(x, rows: s.rows, cols: s.cols, naive: true)
        expectClose(fast.y, naive.y, tolerance: .fastVersusNaive, "l2normalize y")
        expectClose(fast.norms, naive.norms, tolerance: .fastVersusNaive, "l2normalize norms")
        let start = rng.uniformFloats(count: x.count)
        var dxF = start
        var dxN = start
        l2NormalizeBack(dy: dy, x: x, rows: s.rows, cols: s.cols, dx: &dxF)
        l2NormalizeBack(dy: dy, x: x, rows: s.rows, cols: s.cols, dx: &dxN, naive: true)
        expectClose(dxF, dxN, tolerance: .fastVersusNaive, "l2normalize dx")
    }
}

// MARK: - Shared input recipes

/// LayerNorm inputs with non-tiny variance (house-style §6: small variance is ill-conditioned):
/// per-row offsets and scales around Gaussian noise.
func layerNormInput(rows: Int, cols: Int, rng: inout SeededRNG) -> [Float] {
    var x: [Float] = []
    for _ in 0..<rows {
        let offset = Double(rng.uniformFloats(count: 1, in: -2...2)[0])
        let scale = Double(rng.uniformFloats(count: 1, in: 0.5...2)[0])
        x += rng.gaussianFloats(count: cols, mean: offset, std: scale)
    }
    return x
}

/// Gaussian logits with about a quarter masked to -inf, never a whole row (column 0 stays open,
/// as the model's `<SPE>` prefix does).
func maskedLogits(rows: Int, cols: Int, rng: inout SeededRNG) -> [Float] {
    var z = rng.gaussianFloats(count: rows * cols, std: 1.5)
    for r in 0..<rows {
        for c in 1..<max(cols, 1) where rng.nextInt(below: 4) == 0 { z[r * cols + c] = -.infinity }
    }
    return z
}

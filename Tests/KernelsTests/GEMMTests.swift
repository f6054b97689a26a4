import Kernels
import TestSupport
import Testing

/// The BLAS-backed `gemm` against its naive twin on odd shapes, every transpose combination,
/// padded leading dimensions, overwrite (beta 0) and accumulate (beta 1) modes.
@Suite("GEMM fast vs naive")
struct GEMMTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (7, 5, 3), (1, 1, 1), (13, 17, 9), (4, 1, 6), (1, 9, 2),
    ]
    static let cases: [GEMMCase] = shapes.flatMap { s in
        [(false, false), (false, true), (true, false), (true, true)].flatMap { t in
            [0, 3].map { pad in
                GEMMCase(m: s.m, n: s.n, k: s.k, transposeA: t.0, transposeB: t.1, padding: pad)
            }
        }
    }

    @Test(arguments: cases)
    func overwriteAndAccumulate(_ g: GEMMCase) {
        var rng = SeededRNG(seed: UInt64(g.m * 10_000 + g.n * 100 + g.k))
        let a = rng.uniformFloats(count: g.aCount)
        let b = rng.uniformFloats(count: g.bCount)
        let start = rng.uniformFloats(count: g.cCount)

        // beta = 0 must overwrite: start from NaN so any read of C shows up.
        var fast = [Float](repeating: .nan, count: g.cCount)
        var naive = fast
        runGemm(g, alpha: 1, a: a, b: b, beta: 0, c: &fast, naive: false)
        runGemm(g, alpha: 1, a: a, b: b, beta: 0, c: &naive, naive: true)
        expectClose(
            rowsOnly(fast, g), rowsOnly(naive, g), tolerance: .fastVersusNaive, "beta 0, \(g)")

        // alpha 0.5, beta 1 accumulates onto a non-zero C; padding columns stay untouched.
        var fastAcc = start
        var naiveAcc = start
        runGemm(g, alpha: 0.5, a: a, b: b, beta: 1, c: &fastAcc, naive: false)
        runGemm(g, alpha: 0.5, a: a, b: b, beta: 1, c: &naiveAcc, naive: true)
        expectClose(fastAcc, naiveAcc, tolerance: .fastVersusNaive, "alpha 0.5 beta 1, \(g)")
        for i in 0..<g.m {
            for j in g.n..<g.ldc {
                #expect(
                    fastAcc[i * g.ldc + j] == start[i * g.ldc + j], "padding written at \(i),\(j)")
            }
        }
    }

    /// The naive twin itself against an independent Double product built from explicit op(A), op(B).
    @Test(arguments: cases.filter { $0.padding == 0 })
    func naiveMatchesDefinition(_ g: GEMMCase) {
        var rng = SeededRNG(seed: 99)
        let a = rng.uniformFloats(count: g.aCount)
        let b = rng.uniformFloats(count: g.bCount)
        // op(A)[i][p], op(B)[p][j] from the stored layouts.
        func opA(_ i: Int, _ p: Int) -> Double {
            Double(g.transposeA ? a[p * g.m + i] : a[i * g.k + p])
        }
        func opB(_ p: Int, _ j: Int) -> Double {
            Double(g.transposeB ? b[j * g.k + p] : b[p * g.n + j])
        }
        var expected = [Double](repeating: 0, count: g.m * g.n)
        for i in 0..<g.m {
            for j in 0..<g.n { for p in 0..<g.k { expected[i * g.n + j] += opA(i, p) * opB(p, j) } }
        }
        var c = [Float](repeating: 0, count: g.cCount)
        runGemm(g, alpha: 1, a: a, b: b, beta: 0, c: &c, naive: true)
        expectClose(c, expected, shape: [g.m, g.n], tolerance: .kernel, "\(g)")
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func stridedBatched(_ t: (Bool, Bool)) {
        let (m, n, k, count) = (5, 3, 7, 4)
        let g = GEMMCase(m: m, n: n, k: k, transposeA: t.0, transposeB: t.1, padding: 1)
        // Strides leave a gap after each operand, as heads interleaved in a wider buffer do.
        let strideA = g.aCount + 2
        let strideB = g.bCount + 5
        let strideC = g.cCount + 1
        var rng = SeededRNG(seed: 2024)
        let a = rng.uniformFloats(count: strideA * count)
        let b = rng.uniformFloats(count: strideB * count)
        let start = rng.uniformFloats(count: strideC * count)
        for beta: Float in [0, 1] {
            var fast = start
            var naive = start
            gemmStridedBatched(
                transposeA: g.transposeA, transposeB: g.transposeB, m: m, n: n, k: k, alpha: 0.75,
                a: a, lda: g.lda, strideA: strideA, b: b, ldb: g.ldb, strideB: strideB,
                beta: beta, c: &fast, ldc: g.ldc, strideC: strideC, count: count)
            gemmStridedBatchedNaive(
                transposeA: g.transposeA, transposeB: g.transposeB, m: m, n: n, k: k, alpha: 0.75,
                a: a, lda: g.lda, strideA: strideA, b: b, ldb: g.ldb, strideB: strideB,
                beta: beta, c: &naive, ldc: g.ldc, strideC: strideC, count: count)
            expectClose(
                fast, naive, tolerance: .fastVersusNaive, "strided batched beta \(beta), \(g)")
            // And batch i equals a single gemm on the i-th operands.
            for i in 0..<count {
                var single = Array(start[(i * strideC)..<(i * strideC + g.cCount)])
                runGemm(
                    g, alpha: 0.75, a: Array(a[(i * strideA)...]), b: Array(b[(i * strideB)...]),
                    beta: beta, c: &single, naive: false)
                expectClose(
                    Array(fast[(i * strideC)..<(i * strideC + g.cCount)]), single, rtol: 0, atol: 0,
                    "batch \(i) vs single gemm")
            }
            // The gap between C blocks is untouched.
            for i in 0..<count {
                #expect(fast[i * strideC + g.cCount] == start[i * strideC + g.cCount])
            }
        }
    }

    /// Linear forward/backward (three GEMMs and a column sum) against the naive loops.
    @Test(arguments: [(7, 5, 3), (1, 1, 1), (13, 17, 9)])
    func linearFastVersusNaive(_ size: (rows: Int, inF: Int, outF: Int)) {
        let (rows, inF, outF) = size
        var rng = SeededRNG(seed: 31)
        let x = rng.uniformFloats(count: rows * inF)
        let w = rng.uniformFloats(count: outF * inF)
        let b = rng.uniformFloats(count: outF)
        let dy = rng.uniformFloats(count: rows * outF)
        for bias in [b, nil] {
            expectClose(
                linear(x: x, w: w, b: bias, rows: rows, inF: inF, outF: outF),
                linear(x: x, w: w, b: bias, rows: rows, inF: inF, outF: outF, naive: true),
                tolerance: .fastVersusNaive, "linear forward, bias \(bias != nil)")
        }
        let dx0 = rng.uniformFloats(count: rows * inF)
        let dw0 = rng.uniformFloats(count: outF * inF)
        let db0 = rng.uniformFloats(count: outF)
        var dxF: [Float]? = dx0
        var dwF = dw0
        var dbF: [Float]? = db0
        var dxN: [Float]? = dx0
        var dwN = dw0
        var dbN: [Float]? = db0
        linearBack(
            dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &dxF, dw: &dwF, db: &dbF)
        linearBack(
            dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &dxN, dw: &dwN, db: &dbN,
            naive: true)
        expectClose(dxF!, dxN!, tolerance: .fastVersusNaive, "linear dX")
        expectClose(dwF, dwN, tolerance: .fastVersusNaive, "linear dW")
        expectClose(dbF!, dbN!, tolerance: .fastVersusNaive, "linear db")

        // dInput = nil and dBias = nil: only dW is touched, and it matches.
        var noDX: [Float]? = nil
        var noDB: [Float]? = nil
        var dwOnly = dw0
        linearBack(
            dy: dy, x: x, w: w, rows: rows, inF: inF, outF: outF, dx: &noDX, dw: &dwOnly, db: &noDB)
        expectClose(dwOnly, dwN, tolerance: .fastVersusNaive, "linear dW without dX/db")
    }
}

/// The `[m, n]` block of a C buffer with row stride `ldc` (drops padding columns).
func rowsOnly(_ c: [Float], _ g: GEMMCase) -> [Float] {
    (0..<g.m).flatMap { i in c[(i * g.ldc)..<(i * g.ldc + g.n)] }
}

// Array-in, array-out wrappers around the pointer kernels (fast and naive), so each test reads as
// the maths it checks. Backward wrappers take the gradient buffers `inout` and, like the kernels,
// accumulate into them.

import Kernels
import Testing

// MARK: - GEMM

/// Operand sizes and leading dimensions of one `gemm` call; `padding` extra columns per stored row
/// make the leading dimensions larger than the minimum, as in attention's strided views.
struct GEMMCase: Sendable, CustomStringConvertible {
    var m: Int, n: Int, k: Int
    var transposeA: Bool, transposeB: Bool
    var padding: Int = 0

    var lda: Int { (transposeA ? m : k) + padding }
    var ldb: Int { (transposeB ? k : n) + padding }
    var ldc: Int { n + padding }
    var aCount: Int { (transposeA ? k : m) * lda }
    var bCount: Int { (transposeB ? n : k) * ldb }
    var cCount: Int { m * ldc }

    var description: String {
        "\(m)×\(n)×\(k) \(transposeA ? "Aᵀ" : "A")·\(transposeB ? "Bᵀ" : "B") pad \(padding)"
    }
}

func runGemm(
    _ g: GEMMCase, alpha: Float, a: [Float], b: [Float], beta: Float, c: inout [Float], naive: Bool
) {
    if naive {
        gemmNaive(
            transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k,
            alpha: alpha,
            a: a, lda: g.lda, b: b, ldb: g.ldb, beta: beta, c: &c, ldc: g.ldc)
    } else {
        gemm(
            transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k,
            alpha: alpha,
            a: a, lda: g.lda, b: b, ldb: g.ldb, beta: beta, c: &c, ldc: g.ldc)
    }
}

// MARK: - Linear

func linear(
    x: [Float], w: [Float], b: [Float]?, rows: Int, inF: Int, outF: Int, naive: Bool = false
) -> [Float] {
    var y = [Float](repeating: .nan, count: rows * outF)
    let call = { (pb: UnsafePointer<Float>?) in
        y.withUnsafeMutableBufferPointer { py in
            if naive {
                linearForwardNaive(
                    output: py.baseAddress!, input: x, weight: w, bias: pb, rows: rows,
                    inFeatures: inF,
                    outFeatures: outF)
            } else {
                linearForward(
                    output: py.baseAddress!, input: x, weight: w, bias: pb, rows: rows,
                    inFeatures: inF,
                    outFeatures: outF)
            }
        }
    }
    if let b { b.withUnsafeBufferPointer { call($0.baseAddress!) } } else { call(nil) }
    return y
}

/// Accumulates the linear backward into `dx` (nil: not requested), `dw`, `db` (nil: no bias).
func linearBack(
    dy: [Float], x: [Float], w: [Float], rows: Int, inF: Int, outF: Int,
    dx: inout [Float]?, dw: inout [Float], db: inout [Float]?, naive: Bool = false
) {
    var dxBuffer = dx ?? []
    var dbBuffer = db ?? []
    let wantDX = dx != nil
    let wantDB = db != nil
    dxBuffer.withUnsafeMutableBufferPointer { pdx in
        dbBuffer.withUnsafeMutableBufferPointer { pdb in
            dw.withUnsafeMutableBufferPointer { pdw in
                let dxp = wantDX ? pdx.baseAddress : nil
                let dbp = wantDB ? pdb.baseAddress : nil
                if naive {
                    linearBackwardNaive(
                        dInput: dxp, dWeight: pdw.baseAddress!, dBias: dbp, dOutput: dy, input: x,
                        weight: w, rows: rows, inFeatures: inF, outFeatures: outF)
                } else {
                    linearBackward(
                        dInput: dxp, dWeight: pdw.baseAddress!, dBias: dbp, dOutput: dy, input: x,
                        weight: w, rows: rows, inFeatures: inF, outFeatures: outF)
                }
            }
        }
    }
    if wantDX { dx = dxBuffer }
    if wantDB { db = dbBuffer }
}

// MARK: - LayerNorm

func layerNorm(x: [Float], w: [Float], b: [Float], rows: Int, cols: Int, naive: Bool = false)
    -> (y: [Float], mean: [Float], rstd: [Float])
{
    var y = [Float](repeating: .nan, count: rows * cols)
    var mean = [Float](repeating: .nan, count: rows)
    var rstd = [Float](repeating: .nan, count: rows)
    if naive {
        layerNormForwardNaive(
            output: &y, mean: &mean, rstd: &rstd, input: x, weight: w, bias: b, rows: rows,
            cols: cols)
    } else {
        layerNormForward(
            output: &y, mean: &mean, rstd: &rstd, input: x, weight: w, bias: b, rows: rows,
            cols: cols)
    }
    return (y, mean, rstd)
}

/// Accumulates the LayerNorm backward; the fast kernel uses the forward's cached statistics.
func layerNormBack(
    dy: [Float], x: [Float], w: [Float], rows: Int, cols: Int,
    dx: inout [Float], dw: inout [Float], db: inout [Float], naive: Bool = false
) {
    if naive {
        layerNormBackwardNaive(
            dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dy, input: x, weight: w, rows: rows,
            cols: cols)
    } else {
        let zeros = [Float](repeating: 0, count: cols)
        let cache = layerNorm(x: x, w: w, b: zeros, rows: rows, cols: cols)
        layerNormBackward(
            dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dy, input: x, weight: w,
            mean: cache.mean, rstd: cache.rstd, rows: rows, cols: cols)
    }
}

// MARK: - GELU

func gelu(_ x: [Float], naive: Bool = false) -> [Float] {
    var y = [Float](repeating: .nan, count: x.count)
    if naive {
        geluForwardNaive(output: &y, input: x, count: x.count)
    } else {
        geluForward(output: &y, input: x, count: x.count)
        // With the slope the forward's values must not change.
        var withSlope = [Float](repeating: .nan, count: x.count)
        var slope = [Float](repeating: .nan, count: x.count)
        geluForward(output: &withSlope, slope: &slope, input: x, count: x.count)
        #expect(withSlope == y, "geluForward: the slope variant changed the output")
    }
    return y
}

func geluBack(dy: [Float], x: [Float], dx: inout [Float], naive: Bool = false) {
    if naive {
        geluBackwardNaive(dInput: &dx, dOutput: dy, input: x, count: x.count)
    } else {
        // The fast backward reads the slope its forward stored.
        var y = [Float](repeating: .nan, count: x.count)
        var slope = [Float](repeating: .nan, count: x.count)
        geluForward(output: &y, slope: &slope, input: x, count: x.count)
        geluBackward(dInput: &dx, dOutput: dy, slope: slope, count: x.count)
    }
}

// MARK: - Softmax

func softmax(_ z: [Float], rows: Int, cols: Int, naive: Bool = false) -> [Float] {
    var p = [Float](repeating: .nan, count: z.count)
    if naive {
        softmaxForwardNaive(probs: &p, logits: z, rows: rows, cols: cols)
    } else {
        softmaxForward(probs: &p, logits: z, rows: rows, cols: cols)
    }
    return p
}

/// Accumulates the softmax backward (the fast kernel from the forward's probabilities, the naive
/// twin from the logits).
func softmaxBack(
    dp: [Float], z: [Float], rows: Int, cols: Int, dz: inout [Float], naive: Bool = false
) {
    if naive {
        softmaxBackwardNaive(dLogits: &dz, dProbs: dp, logits: z, rows: rows, cols: cols)
    } else {
        let p = softmax(z, rows: rows, cols: cols)
        softmaxBackward(dLogits: &dz, dProbs: dp, probs: p, rows: rows, cols: cols)
    }
}

// MARK: - Cross-entropy

/// Mean loss over counted rows (the model's convention) and the counted-row count.
func crossEntropy(
    _ z: [Float], targets: [Int], rows: Int, classes: Int, smoothing: Float, naive: Bool = false
) -> (mean: Double, counted: Int) {
    let r: (lossSum: Double, counted: Int)
    if naive {
        r = crossEntropyForwardNaive(
            logits: z, targets: targets, rows: rows, classes: classes, labelSmoothing: smoothing)
    } else {
        var p = [Float](repeating: .nan, count: z.count)
        r = crossEntropyForward(
            probs: &p, logits: z, targets: targets, rows: rows, classes: classes,
            labelSmoothing: smoothing)
    }
    return (r.counted == 0 ? 0 : r.lossSum / Double(r.counted), r.counted)
}

/// Accumulates `d(scale · Σ ℓ)/dz` into `dz`.
func crossEntropyBack(
    _ z: [Float], targets: [Int], rows: Int, classes: Int, smoothing: Float, scale: Float,
    dz: inout [Float], naive: Bool = false
) {
    if naive {
        crossEntropyBackwardNaive(
            dLogits: &dz, logits: z, targets: targets, scale: scale, rows: rows, classes: classes,
            labelSmoothing: smoothing)
    } else {
        var p = [Float](repeating: .nan, count: z.count)
        _ = crossEntropyForward(
            probs: &p, logits: z, targets: targets, rows: rows, classes: classes,
            labelSmoothing: smoothing)
        crossEntropyBackward(
            dLogits: &dz, probs: p, targets: targets, scale: scale, rows: rows, classes: classes,
            labelSmoothing: smoothing)
    }
}

// MARK: - L2 normalisation

func l2Normalize(_ x: [Float], rows: Int, cols: Int, naive: Bool = false) -> (
    y: [Float], norms: [Float]
) {
    var y = [Float](repeating: .nan, count: x.count)
    var n = [Float](repeating: .nan, count: rows)
    if naive {
        l2NormalizeForwardNaive(output: &y, norms: &n, input: x, rows: rows, cols: cols)
    } else {
        l2NormalizeForward(output: &y, norms: &n, input: x, rows: rows, cols: cols)
    }
    return (y, n)
}

func l2NormalizeBack(
    dy: [Float], x: [Float], rows: Int, cols: Int, dx: inout [Float], naive: Bool = false
) {
    if naive {
        l2NormalizeBackwardNaive(dInput: &dx, dOutput: dy, input: x, rows: rows, cols: cols)
    } else {
        let f = l2Normalize(x, rows: rows, cols: cols)
        l2NormalizeBackward(
            dInput: &dx, dOutput: dy, output: f.y, norms: f.norms, rows: rows, cols: cols)
    }
}

// MARK: - Small helpers

/// Element-wise sum, for "starting buffer + one backward" expectations.
func adding(_ a: [Float], _ b: [Float]) -> [Float] {
    zip(a, b).map { Double($0) + Double($1) }.map { Float($0) }
}

/// Element-wise scale.
func scaled(_ a: [Float], _ s: Float) -> [Float] { a.map { $0 * s } }

/// Seeded inputs of a small linear layer for the finite-difference checks: `x [rows, inF]`,
/// `w [outF, inF]` (std 0.5), `b [outF]`, drawn in that order.
func linearInputs(rows: Int, inF: Int, outF: Int, seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
    var rng = SeededRNG(seed: seed)
    let x = rng.gaussianFloats(count: rows * inF)
    let w = rng.gaussianFloats(count: outF * inF, std: 0.5)
    return (x, w, rng.gaussianFloats(count: outF))
}

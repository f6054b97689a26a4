import Foundation

// Naive twins of the fast kernels (llm.c's `matmul_forward_naive` pattern).
//
// Each twin is the textbook formula written as plain loops with every sum accumulated in Double,
// so it shares no code and no rounding behaviour with the fast path: tests run both on odd shapes
// and compare. Backward twins recompute what they need from the inputs in Double (the fast
// kernels reuse Float caches) and, like the fast ones, **accumulate** (`+=`) into every gradient.
// Where a Jacobian is small (softmax, L2 normalisation) the twin multiplies by the full Jacobian
// instead of the fast kernel's closed form, so an algebra slip in either shows up as a mismatch.
// None of this is meant to be fast; it is for tests and for debugging a layer.
//
// Dimension letters as in the fast files: N rows, D features, K classes/columns, I/O linear widths.

// MARK: - GEMM

/// Naive `C = alpha · op(A) · op(B) + beta · C` with the same row-major conventions as `gemm`.
///
/// `op(A)` is `[m, k]` (stored `[k, m]` with row stride `lda` when `transposeA`), `op(B)` is
/// `[k, n]`, `C` is `[m, n]`. The dot product of each output is summed in Double. As in BLAS,
/// `beta = 0` overwrites `C` without reading it (so uninitialised or NaN contents do not leak).
public func gemmNaive(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemmNaive: negative size m=\(m) n=\(n) k=\(k)")
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                // op(A)[i, p] and op(B)[p, j] read through the stored layout.
                let aip = transposeA ? a[p * lda + i] : a[i * lda + p]
                let bpj = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(aip) * Double(bpj)
            }
            let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            c[i * ldc + j] = Float(Double(alpha) * sum + old)
        }
    }
}

/// Naive twin of `gemmStridedBatched`: `count` calls of `gemmNaive` at fixed operand strides.
public func gemmStridedBatchedNaive(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, strideA: Int,
    b: UnsafePointer<Float>, ldb: Int, strideB: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, count: Int
) {
    for batch in 0..<count {
        gemmNaive(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a + batch * strideA, lda: lda, b: b + batch * strideB, ldb: ldb,
            beta: beta, c: c + batch * strideC, ldc: ldc)
    }
}

// MARK: - Linear

/// Naive `Y[n, o] = Σ_i X[n, i] · W[o, i] + b[o]` (PyTorch `[out, in]` weights).
///
/// Shapes: `output [N, O]`, `input [N, I]`, `weight [O, I]`, `bias [O]` or nil.
public func linearForwardNaive(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    for r in 0..<rows {
        for o in 0..<outFeatures {
            var sum = bias.map { Double($0[o]) } ?? 0
            for i in 0..<inFeatures {
                sum += Double(input[r * inFeatures + i]) * Double(weight[o * inFeatures + i])
            }
            output[r * outFeatures + o] = Float(sum)
        }
    }
}

/// Naive backward of the linear layer; **accumulates**
/// `dX[n, i] += Σ_o dY[n, o]·W[o, i]`, `dW[o, i] += Σ_n dY[n, o]·X[n, i]`, `db[o] += Σ_n dY[n, o]`.
public func linearBackwardNaive(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
    dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    if let dInput {
        for r in 0..<rows {
            for i in 0..<inFeatures {
                var sum = 0.0
                for o in 0..<outFeatures {
                    sum += Double(dOutput[r * outFeatures + o]) * Double(weight[o * inFeatures + i])
                }
                dInput[r * inFeatures + i] += Float(sum)
            }
        }
    }
    for o in 0..<outFeatures {
        for i in 0..<inFeatures {
            var sum = 0.0
            for r in 0..<rows {
                sum += Double(dOutput[r * outFeatures + o]) * Double(input[r * inFeatures + i])
            }
            dWeight[o * inFeatures + i] += Float(sum)
        }
    }
    if let dBias {
        for o in 0..<outFeatures {
            var sum = 0.0
            for r in 0..<rows { sum += Double(dOutput[r * outFeatures + o]) }
            dBias[o] += Float(sum)
        }
    }
}

// MARK: - LayerNorm

/// Naive LayerNorm statistics of one row in Double: `(μ, 1/√(σ² + eps))`, σ² the biased variance.
private func layerNormStatisticsNaive(
    _ x: UnsafePointer<Float>, cols: Int, eps: Float
) -> (mean: Double, rstd: Double) {
    var sum = 0.0
    for c in 0..<cols { sum += Double(x[c]) }
    let mean = sum / Double(cols)
    var sq = 0.0
    for c in 0..<cols { sq += (Double(x[c]) - mean) * (Double(x[c]) - mean) }
    return (mean, 1 / (sq / Double(cols) + Double(eps)).squareRoot())
}

/// Naive twin of `layerNormForward`: `y = (x − μ)·rstd·w + b` with Double statistics.
///
/// Shapes: `output [N, D]`, `mean [N]`, `rstd [N]` (written, as the fast kernel does),
/// `input [N, D]`, `weight [D]`, `bias [D]`.
public func layerNormForwardNaive(
    output: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
    rstd: UnsafeMutablePointer<Float>,
    input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float = 1e-5
) {
    for r in 0..<rows {
        let x = input + r * cols
        let (m, s) = layerNormStatisticsNaive(x, cols: cols, eps: eps)
        for c in 0..<cols {
            output[r * cols + c] = Float(
                (Double(x[c]) - m) * s * Double(weight[c]) + Double(bias[c]))
        }
        mean[r] = Float(m)
        rstd[r] = Float(s)
    }
}

/// Naive backward of LayerNorm; **accumulates** into `dInput`, `dWeight`, `dBias`.
///
/// Recomputes μ and rstd from `input` in Double (no cache argument) and applies
/// `dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`, `g = dy ⊙ w`; `dw += Σ dy ⊙ x̂`, `db += Σ dy`.
public func layerNormBackwardNaive(
    dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
    dBias: UnsafeMutablePointer<Float>,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float = 1e-5
) {
    for r in 0..<rows {
        let x = input + r * cols
        let dy = dOutput + r * cols
        let (m, s) = layerNormStatisticsNaive(x, cols: cols, eps: eps)
        var meanG = 0.0
        var meanGX = 0.0
        for c in 0..<cols {
            let xh = (Double(x[c]) - m) * s
            let g = Double(dy[c]) * Double(weight[c])
            meanG += g
            meanGX += g * xh
        }
        meanG /= Double(cols)
        meanGX /= Double(cols)
        for c in 0..<cols {
            let xh = (Double(x[c]) - m) * s
            let g = Double(dy[c]) * Double(weight[c])
            dInput[r * cols + c] += Float(s * (g - meanG - xh * meanGX))
        }
    }
    for c in 0..<cols {
        var dw = 0.0
        var db = 0.0
        for r in 0..<rows {
            let (m, s) = layerNormStatisticsNaive(input + r * cols, cols: cols, eps: eps)
            let xh = (Double(input[r * cols + c]) - m) * s
            dw += Double(dOutput[r * cols + c]) * xh
            db += Double(dOutput[r * cols + c])
        }
        dWeight[c] += Float(dw)
        dBias[c] += Float(db)
    }
}

// MARK: - GELU

/// Naive exact GELU in Double: `y = ½ x (1 + erf(x/√2))`.
public func geluForwardNaive(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count {
        let x = Double(input[i])
        output[i] = Float(0.5 * x * (1 + erf(x / 2.0.squareRoot())))
    }
}

/// Naive GELU backward in Double; **accumulates** `dx += dy · (Φ(x) + x·φ(x))`.
public func geluBackwardNaive(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int
) {
    for i in 0..<count {
        let x = Double(input[i])
        let cdf = 0.5 * (1 + erf(x / 2.0.squareRoot()))
        let pdf = exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        dInput[i] += Float(Double(dOutput[i]) * (cdf + x * pdf))
    }
}

// MARK: - Softmax

/// Naive masked softmax in Double: `p_k = exp(z_k − max) / Σ_j exp(z_j − max)`, `-inf` → 0.
///
/// Shapes: `probs [N, K]`, `logits [N, K]`. A NaN logit, or no logit above `-inf` (overflowing
/// weights), makes its row NaN.
public func softmaxForwardNaive(
    probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let z = logits + r * cols
        var maxValue = -Double.infinity
        for c in 0..<cols { maxValue = max(maxValue, Double(z[c])) }
        if (0..<cols).contains(where: { z[$0].isNaN }) || maxValue == -Double.infinity {
            for c in 0..<cols { probs[r * cols + c] = .nan }
            continue
        }
        var sum = 0.0
        for c in 0..<cols { sum += exp(Double(z[c]) - maxValue) }
        for c in 0..<cols { probs[r * cols + c] = Float(exp(Double(z[c]) - maxValue) / sum) }
    }
}

/// Naive softmax backward through the full Jacobian; **accumulates**
/// `dz_i += Σ_j dp_j · p_j · (δ_ij − p_i)`, with `p` recomputed from `logits` in Double.
public func softmaxBackwardNaive(
    dLogits: UnsafeMutablePointer<Float>, dProbs: UnsafePointer<Float>,
    logits: UnsafePointer<Float>, rows: Int, cols: Int
) {
    var p = [Double](repeating: 0, count: cols)
    for r in 0..<rows {
        let z = logits + r * cols
        var maxValue = -Double.infinity
        for c in 0..<cols { maxValue = max(maxValue, Double(z[c])) }
        var sum = 0.0
        for c in 0..<cols { sum += exp(Double(z[c]) - maxValue) }
        for c in 0..<cols { p[c] = exp(Double(z[c]) - maxValue) / sum }
        for i in 0..<cols {
            var dz = 0.0
            for j in 0..<cols {
                // ∂p_j/∂z_i = p_j (δ_ij − p_i)
                dz += Double(dProbs[r * cols + j]) * p[j] * ((i == j ? 1 : 0) - p[i])
            }
            dLogits[r * cols + i] += Float(dz)
        }
    }
}

// MARK: - Cross-entropy

/// Naive label-smoothed cross-entropy in Double; returns `(Σ counted ℓ_r, counted rows)`.
///
/// `ℓ = −Σ_k q_k log p_k` with the smoothed target `q = (1−ε)·onehot(t) + ε/K`, which equals the
/// fast kernel's `(1−ε)(−log p_t) + ε·mean_k(−log p_k)`. Rows with `targets[r] == ignoreIndex`
/// are skipped. Shapes: `logits [N, K]`, `targets [N]`.
public func crossEntropyForwardNaive(
    logits: UnsafePointer<Float>, targets: UnsafePointer<Int>,
    rows: Int, classes: Int, labelSmoothing: Float = 0, ignoreIndex: Int = -1
) -> (lossSum: Double, counted: Int) {
    var total = 0.0
    var counted = 0
    for r in 0..<rows {
        let t = targets[r]
        if t == ignoreIndex { continue }
        precondition(
            t >= 0 && t < classes, "crossEntropyForwardNaive: target \(t) outside 0..<\(classes)")
        let logP = logSoftmaxNaive(logits + r * classes, classes: classes)
        let eps = Double(labelSmoothing)
        for k in 0..<classes {
            let q = (k == t ? 1 - eps : 0) + eps / Double(classes)
            total -= q * logP[k]
        }
        counted += 1
    }
    return (total, counted)
}

/// Naive backward of `scale · Σ_rows ℓ_r`; **accumulates** `dz += scale · (p − q)` on counted rows,
/// with `p` recomputed from `logits` in Double and `q` the smoothed target.
public func crossEntropyBackwardNaive(
    dLogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
    targets: UnsafePointer<Int>, scale: Float,
    rows: Int, classes: Int, labelSmoothing: Float = 0, ignoreIndex: Int = -1
) {
    for r in 0..<rows {
        let t = targets[r]
        if t == ignoreIndex { continue }
        let logP = logSoftmaxNaive(logits + r * classes, classes: classes)
        let eps = Double(labelSmoothing)
        for k in 0..<classes {
            let q = (k == t ? 1 - eps : 0) + eps / Double(classes)
            dLogits[r * classes + k] += Float(Double(scale) * (exp(logP[k]) - q))
        }
    }
}

/// `log softmax` of one row in Double.
private func logSoftmaxNaive(_ z: UnsafePointer<Float>, classes: Int) -> [Double] {
    var maxValue = -Double.infinity
    for c in 0..<classes { maxValue = max(maxValue, Double(z[c])) }
    var sum = 0.0
    for c in 0..<classes { sum += exp(Double(z[c]) - maxValue) }
    let logSum = maxValue + log(sum)
    return (0..<classes).map { Double(z[$0]) - logSum }
}

// MARK: - L2 normalisation

/// Naive row-wise `y = x / max(‖x‖, 1e-12)` in Double; writes the clamped norm to `norms`.
///
/// Shapes: `output [N, D]`, `norms [N]`, `input [N, D]`.
public func l2NormalizeForwardNaive(
    output: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
    input: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        var sq = 0.0
        for c in 0..<cols { sq += Double(input[r * cols + c]) * Double(input[r * cols + c]) }
        let n = max(sq.squareRoot(), 1e-12)
        norms[r] = Float(n)
        for c in 0..<cols { output[r * cols + c] = Float(Double(input[r * cols + c]) / n) }
    }
}

/// Naive backward through the full Jacobian `∂y_j/∂x_i = (δ_ij − y_i y_j) / ‖x‖`, recomputed from
/// `input` in Double; **accumulates** into `dInput`.
public func l2NormalizeBackwardNaive(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
    input: UnsafePointer<Float>, rows: Int, cols: Int
) {
    var y = [Double](repeating: 0, count: cols)
    for r in 0..<rows {
        var sq = 0.0
        for c in 0..<cols { sq += Double(input[r * cols + c]) * Double(input[r * cols + c]) }
        let n = max(sq.squareRoot(), 1e-12)
        for c in 0..<cols { y[c] = Double(input[r * cols + c]) / n }
        for i in 0..<cols {
            var dx = 0.0
            for j in 0..<cols {
                dx += Double(dOutput[r * cols + j]) * ((i == j ? 1 : 0) - y[i] * y[j]) / n
            }
            dInput[r * cols + i] += Float(dx)
        }
    }
}

// Dimension letters: N rows (tokens), I input features, O output features.

/// Linear layer with PyTorch `[out, in]` weights: `Y = X · Wᵀ + b`.
///
/// Shapes: `output [N, O]`, `input [N, I]`, `weight [O, I]`, `bias [O]` (optional).
/// ### References
/// `torch.nn.Linear`.
public func linearForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    if let bias {
        // Seed every row with the bias, then accumulate the product on top (beta = 1).
        for r in 0..<rows { (output + r * outFeatures).update(from: bias, count: outFeatures) }
    }
    gemm(
        transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
        a: input, lda: inFeatures, b: weight, ldb: inFeatures,
        beta: bias == nil ? 0 : 1, c: output, ldc: outFeatures)
}

/// Backward of `linearForward`; **accumulates**: `dX += dY · W`, `dW += dYᵀ · X`, `db += Σ_rows dY`.
///
/// Shapes as in the forward; `dInput` may be nil when the input needs no gradient.
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
    dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    if let dInput {
        gemm(
            transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
            a: dOutput, lda: outFeatures, b: weight, ldb: inFeatures,
            beta: 1, c: dInput, ldc: inFeatures)
    }
    gemm(
        transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
        a: dOutput, lda: outFeatures, b: input, ldb: inFeatures,
        beta: 1, c: dWeight, ldc: inFeatures)
    if let dBias {
        for r in 0..<rows {
            let row = dOutput + r * outFeatures
            for o in 0..<outFeatures { dBias[o] += row[o] }
        }
    }
}

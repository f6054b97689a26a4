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
/// Shapes as in the forward; `dInput` may be nil when the input needs no gradient, `dWeight` when
/// the caller computes it later with `linearWeightGradient` (the encoder's lanes do).
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
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
    if let dWeight {
        linearWeightGradient(
            dWeight: dWeight, dOutput: dOutput, input: input, rows: rows, inFeatures: inFeatures,
            outFeatures: outFeatures, outputs: 0..<outFeatures, accumulate: true)
    }
    if let dBias {
        for r in 0..<rows {
            let row = dOutput + r * outFeatures
            for o in 0..<outFeatures { dBias[o] += row[o] }
        }
    }
}

/// The weight gradient of `linearForward` for the output features `outputs` only:
/// `dW[outputs, :] (+)= dY[:, outputs]ᵀ · X`, accumulated (`accumulate`) or overwritten.
///
/// Shapes: `dWeight [O, I]` (rows outside `outputs` untouched), `dOutput [N, O]`, `input [N, I]`.
/// Why a range: two lanes can write disjoint halves of one weight gradient over every row of a batch,
/// with no per-lane copy to zero and add afterwards (`Encoder.backward`).
public func linearWeightGradient(
    dWeight: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int, outputs: Range<Int>, accumulate: Bool
) {
    precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outFeatures, "linearWeightGradient: outputs \(outputs) outside 0..<\(outFeatures)")
    gemm(
        transposeA: true, transposeB: false, m: outputs.count, n: inFeatures, k: rows,
        a: dOutput + outputs.lowerBound, lda: outFeatures, b: input, ldb: inFeatures,
        beta: accumulate ? 1 : 0, c: dWeight + outputs.lowerBound * inFeatures, ldc: inFeatures)
}

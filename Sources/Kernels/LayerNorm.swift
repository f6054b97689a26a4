import Foundation

// Dimension letters: N rows, D features (normalised over D).

/// LayerNorm over the last dimension: `y = (x − μ) · rstd · w + b`, `rstd = 1/√(σ² + eps)` with the
/// biased variance σ² (as PyTorch).
///
/// Shapes: `output [N, D]`, `mean [N]`, `rstd [N]` (cached for backward), `input [N, D]`,
/// `weight [D]`, `bias [D]`. Statistics are accumulated in Double so a row's mean is exact to Float.
/// ### References
/// `torch.nn.LayerNorm` (eps 1e-5 throughout this project); llm.c `layernorm_forward`.
public func layerNormForward(
    output: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
    rstd: UnsafeMutablePointer<Float>,
    input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float = 1e-5
) {
    for r in 0..<rows {
        let x = input + r * cols
        var sum = 0.0
        for c in 0..<cols { sum += Double(x[c]) }
        let m = sum / Double(cols)
        var sq = 0.0
        for c in 0..<cols {
            let d = Double(x[c]) - m
            sq += d * d
        }
        let s = 1 / (sq / Double(cols) + Double(eps)).squareRoot()
        let mf = Float(m)
        let sf = Float(s)
        let y = output + r * cols
        for c in 0..<cols { y[c] = (x[c] - mf) * sf * weight[c] + bias[c] }
        mean[r] = mf
        rstd[r] = sf
    }
}

/// Backward of `layerNormForward`; **accumulates** into `dInput`, `dWeight`, `dBias`.
///
/// With `x̂ = (x − μ)·rstd` and `g = dy ⊙ w`: `dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`,
/// `dw += Σ_rows dy ⊙ x̂`, `db += Σ_rows dy`. Shapes as in the forward.
public func layerNormBackward(
    dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
    dBias: UnsafeMutablePointer<Float>,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let x = input + r * cols
        let dy = dOutput + r * cols
        let dx = dInput + r * cols
        let m = mean[r]
        let s = rstd[r]
        var meanG: Float = 0
        var meanGX: Float = 0
        for c in 0..<cols {
            let xh = (x[c] - m) * s
            let g = dy[c] * weight[c]
            meanG += g
            meanGX += g * xh
            dWeight[c] += dy[c] * xh
            dBias[c] += dy[c]
        }
        meanG /= Float(cols)
        meanGX /= Float(cols)
        for c in 0..<cols {
            let xh = (x[c] - m) * s
            dx[c] += s * (dy[c] * weight[c] - meanG - xh * meanGX)
        }
    }
}

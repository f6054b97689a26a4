import Foundation

// Dimension letters: N rows, D features.

/// Row-wise L2 normalisation `y = x / max(‖x‖, 1e-12)`; cosine similarity is then a GEMM of the
/// normalised rows (`cos = Û · V̂ᵀ`).
///
/// Shapes: `output [N, D]`, `norms [N]` (cached: the clamped norm), `input [N, D]`.
/// ### References
/// `torch.nn.functional.normalize(p=2, eps=1e-12)`.
public func l2NormalizeForward(
    output: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
    input: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let x = input + r * cols
        var sq = 0.0
        for c in 0..<cols { sq += Double(x[c]) * Double(x[c]) }
        let n = Float(max(sq.squareRoot(), 1e-12))
        norms[r] = n
        let y = output + r * cols
        for c in 0..<cols { y[c] = x[c] / n }
    }
}

/// Backward of `l2NormalizeForward`; **accumulates** `dx += (dy − y·⟨dy, y⟩) / ‖x‖`
/// (when the norm was clamped the Jacobian is `1/1e-12`, as in PyTorch's unclamped branch only;
/// such rows do not occur for real features).
public func l2NormalizeBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
    output: UnsafePointer<Float>, norms: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let y = output + r * cols
        let dy = dOutput + r * cols
        let dx = dInput + r * cols
        var dot: Float = 0
        for c in 0..<cols { dot += dy[c] * y[c] }
        let inv = 1 / norms[r]
        for c in 0..<cols { dx[c] += (dy[c] - y[c] * dot) * inv }
    }
}

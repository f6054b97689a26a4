import Foundation
import Kernels

// Dimension letters: B sequences, T positions, H heads, hd = D/H head width, N = B·T rows.

/// Scaled dot-product attention over a fused QKV buffer, all heads of all sequences:
/// `P_bh = softmax(Q_bh·K_bhᵀ/√hd + mask_b)`, `O_bh = P_bh·V_bh`, heads concatenated.
///
/// Shapes: `qkv [N, 3D]` (q in columns 0..<D, k in D..<2D, v in 2D..<3D; head h uses columns
/// h·hd..<(h+1)·hd of each), `mask [B, T, T]` additive (0 or −∞), `probs [B, H, T, T]` (cached),
/// `output [N, D]`. Every Q·Kᵀ and P·V is one strided GEMM straight on the fused buffer.
/// ### References
/// `torch.nn.MultiheadAttention` (fused `in_proj`), official `transformer_encoder_layer.py`.
func attentionForward(
    output: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, mask: UnsafePointer<Float>,
    batch B: Int, length T: Int, heads H: Int, width D: Int
) {
    let hd = D / H
    let scale = 1 / Float(hd).squareRoot()
    for b in 0..<B {
        let rows = qkv + b * T * 3 * D
        for h in 0..<H {
            let p = probs + (b * H + h) * T * T
            gemm(
                transposeA: false, transposeB: true, m: T, n: T, k: hd, alpha: scale,
                a: rows + h * hd, lda: 3 * D, b: rows + D + h * hd, ldb: 3 * D,
                beta: 0, c: p, ldc: T)
            let m = mask + b * T * T
            for i in 0..<(T * T) { p[i] += m[i] }
            softmaxForward(probs: p, logits: p, rows: T, cols: T)
            gemm(
                transposeA: false, transposeB: false, m: T, n: hd, k: T,
                a: p, lda: T, b: rows + 2 * D + h * hd, ldb: 3 * D,
                beta: 0, c: output + b * T * D + h * hd, ldc: D)
        }
    }
}

/// Backward of `attentionForward`; **accumulates** into `dQKV [N, 3D]`:
/// `dP = dO·Vᵀ`, `dV += Pᵀ·dO`, `dS = softmax′(dP)/√hd`, `dQ += dS·K`, `dK += dSᵀ·Q`.
/// `scratch` holds one `[T, T]` block.
func attentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    batch B: Int, length T: Int, heads H: Int, width D: Int
) {
    let hd = D / H
    let scale = 1 / Float(hd).squareRoot()
    let dScores = scratch + T * T
    for b in 0..<B {
        let rows = qkv + b * T * 3 * D
        let dRows = dQKV + b * T * 3 * D
        let dO = dOutput + b * T * D
        for h in 0..<H {
            let p = probs + (b * H + h) * T * T
            // dP = dO_bh · V_bhᵀ
            gemm(
                transposeA: false, transposeB: true, m: T, n: T, k: hd,
                a: dO + h * hd, lda: D, b: rows + 2 * D + h * hd, ldb: 3 * D,
                beta: 0, c: scratch, ldc: T)
            // dV_bh += P_bhᵀ · dO_bh
            gemm(
                transposeA: true, transposeB: false, m: T, n: hd, k: T,
                a: p, lda: T, b: dO + h * hd, ldb: D,
                beta: 1, c: dRows + 2 * D + h * hd, ldc: 3 * D)
            dScores.update(repeating: 0, count: T * T)
            softmaxBackward(dLogits: dScores, dProbs: scratch, probs: p, rows: T, cols: T)
            // dQ += scale · dS · K ; dK += scale · dSᵀ · Q
            gemm(
                transposeA: false, transposeB: false, m: T, n: hd, k: T, alpha: scale,
                a: dScores, lda: T, b: rows + D + h * hd, ldb: 3 * D,
                beta: 1, c: dRows + h * hd, ldc: 3 * D)
            gemm(
                transposeA: true, transposeB: false, m: T, n: hd, k: T, alpha: scale,
                a: dScores, lda: T, b: rows + h * hd, ldb: 3 * D,
                beta: 1, c: dRows + D + h * hd, ldc: 3 * D)
        }
    }
}

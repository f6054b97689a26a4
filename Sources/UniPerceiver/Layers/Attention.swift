import Foundation
import Kernels

// Dimension letters: B sequences, T positions, H heads, hd = D/H head width, N = B·T rows.

/// The query rows an attention pass computes: every row, or per sequence an ascending subset of its
/// positions. An encoder's last layer needs only the rows its reader (the feature head) takes: its
/// other rows cannot change the loss, and computing them is most of that layer's work.
struct QueryRows {
    /// Global rows `b·T + t`, ascending: compact row i is `rows[i]`.
    let rows: [Int]
    /// Compact rows of sequence b: `start[b]..<start[b + 1]`.
    let start: [Int]

    /// - Precondition: `rows` ascending, unique, inside `0..<B·T`.
    init(rows: [Int], batch B: Int, length T: Int) {
        precondition(zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && (rows.first ?? 0) >= 0
            && (rows.last ?? 0) < max(B * T, 1), "QueryRows: rows must be ascending, unique and below \(B * T)")
        self.rows = rows
        var start = [Int](repeating: 0, count: B + 1)
        for r in rows { start[r / T + 1] += 1 }
        for b in 0..<B { start[b + 1] += start[b] }
        self.start = start
    }

    /// `source [B·T, width]` rows gathered `[R, width]` (the first `columns` of each, ld `stride`).
    func gather(_ source: UnsafePointer<Float>, stride: Int, columns: Int) -> Buffer {
        let out = Buffer(uninitialized: max(rows.count * columns, 1))
        for (i, r) in rows.enumerated() { (out.base + i * columns).update(from: source + r * stride, count: columns) }
        return out
    }

    /// `target[rows[i]] += source[i]` for each compact row (`columns` values, ld `stride` in target).
    func scatterAdd(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, stride: Int, columns: Int) {
        for (i, r) in rows.enumerated() {
            let t = target + r * stride
            let s = source + i * columns
            for c in 0..<columns { t[c] += s[c] }
        }
    }
}

/// Scaled dot-product attention over a fused QKV buffer, all heads of all sequences:
/// `P_bh = softmax(Q_bh·K_bhᵀ/√hd + mask_b)`, `O_bh = P_bh·V_bh`, heads concatenated.
///
/// Shapes: `qkv [N, 3D]` (q in columns 0..<D, k in D..<2D, v in 2D..<3D; head h uses columns
/// h·hd..<(h+1)·hd of each), `mask [B, T, T]` additive (0 or −∞). With `queries` (R of the N rows),
/// only those rows' outputs are computed: `probs [R·H·T]` (sequence b's block at `start[b]·H·T`,
/// head h's `[M_b, T]` inside it) and `output [R, D]`; without, R = N and `probs` is `[B, H, T, T]`.
/// Every Q·Kᵀ and P·V is one strided GEMM straight on the fused buffer (or the gathered queries).
/// ### References
/// `torch.nn.MultiheadAttention` (fused `in_proj`), official `transformer_encoder_layer.py`.
func attentionForward(
    output: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, mask: UnsafePointer<Float>,
    batch B: Int, length T: Int, heads H: Int, width D: Int, queries: QueryRows? = nil
) {
    let hd = D / H
    let scale = 1 / Float(hd).squareRoot()
    // The query rows and their mask rows, contiguous per sequence: the fused buffer itself, or gathers.
    let q = queries?.gather(qkv, stride: 3 * D, columns: D)
    let m = queries?.gather(mask, stride: T, columns: T)
    let (qBase, ldq, maskBase) = (q.map { UnsafePointer($0.base) } ?? qkv, q == nil ? 3 * D : D, m.map { UnsafePointer($0.base) } ?? mask)
    for b in 0..<B {
        let first = queries?.start[b] ?? b * T
        let M = (queries?.start[b + 1] ?? (b + 1) * T) - first
        if M == 0 { continue }
        let rows = qkv + b * T * 3 * D
        let queryRows = qBase + first * ldq
        for h in 0..<H {
            let p = probs + (first * H + h * M) * T
            gemm(
                transposeA: false, transposeB: true, m: M, n: T, k: hd, alpha: scale,
                a: queryRows + h * hd, lda: ldq, b: rows + D + h * hd, ldb: 3 * D,
                beta: 0, c: p, ldc: T)
            let maskRows = maskBase + first * T
            for i in 0..<(M * T) { p[i] += maskRows[i] }
            softmaxForward(probs: p, logits: p, rows: M, cols: T)
            gemm(
                transposeA: false, transposeB: false, m: M, n: hd, k: T,
                a: p, lda: T, b: rows + 2 * D + h * hd, ldb: 3 * D,
                beta: 0, c: output + first * D + h * hd, ldc: D)
        }
    }
}

/// Backward of `attentionForward` (same `queries`); **accumulates** into `dQKV [N, 3D]` from
/// `dOutput [R, D]`: `dP = dO·Vᵀ`, `dV += Pᵀ·dO`, `dS = softmax′(dP)/√hd`, `dQ += dS·K`, `dK += dSᵀ·Q`.
/// `scratch` holds one `[T, T]` block.
func attentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    batch B: Int, length T: Int, heads H: Int, width D: Int, queries: QueryRows? = nil
) {
    let hd = D / H
    let scale = 1 / Float(hd).squareRoot()
    let dScores = scratch + T * T
    let q = queries?.gather(qkv, stride: 3 * D, columns: D)
    let dq = queries.map { Buffer($0.rows.count * D) }  // zeroed: dQ accumulates (beta = 1)
    let (qBase, ldq) = (q.map { UnsafePointer($0.base) } ?? qkv, q == nil ? 3 * D : D)
    let (dqBase, lddq) = (dq?.base ?? dQKV, dq == nil ? 3 * D : D)
    for b in 0..<B {
        let first = queries?.start[b] ?? b * T
        let M = (queries?.start[b + 1] ?? (b + 1) * T) - first
        if M == 0 { continue }
        let rows = qkv + b * T * 3 * D
        let dRows = dQKV + b * T * 3 * D
        let queryRows = qBase + first * ldq
        let dQueryRows = dqBase + first * lddq
        let dO = dOutput + first * D
        for h in 0..<H {
            let p = probs + (first * H + h * M) * T
            // dP = dO_bh · V_bhᵀ
            gemm(
                transposeA: false, transposeB: true, m: M, n: T, k: hd,
                a: dO + h * hd, lda: D, b: rows + 2 * D + h * hd, ldb: 3 * D,
                beta: 0, c: scratch, ldc: T)
            // dV_bh += P_bhᵀ · dO_bh
            gemm(
                transposeA: true, transposeB: false, m: T, n: hd, k: M,
                a: p, lda: T, b: dO + h * hd, ldb: D,
                beta: 1, c: dRows + 2 * D + h * hd, ldc: 3 * D)
            dScores.update(repeating: 0, count: M * T)
            softmaxBackward(dLogits: dScores, dProbs: scratch, probs: p, rows: M, cols: T)
            // dQ += scale · dS · K ; dK += scale · dSᵀ · Q
            gemm(
                transposeA: false, transposeB: false, m: M, n: hd, k: T, alpha: scale,
                a: dScores, lda: T, b: rows + D + h * hd, ldb: 3 * D,
                beta: 1, c: dQueryRows + h * hd, ldc: lddq)
            gemm(
                transposeA: true, transposeB: false, m: T, n: hd, k: M, alpha: scale,
                a: dScores, lda: T, b: queryRows + h * hd, ldb: ldq,
                beta: 1, c: dRows + D + h * hd, ldc: 3 * D)
        }
    }
    if let queries, let dq { queries.scatterAdd(dq.base, into: dQKV, stride: 3 * D, columns: D) }
}

import Foundation

// Dimension letters: N rows, K columns (softmax over K).

/// Row-wise softmax where `-Float.infinity` logits mark masked entries: `p_k = exp(z_k − max) / Σ`.
///
/// Masked entries get probability exactly 0. The model's masks always let a query see the `<SPE>`
/// prefix, so a row with no logit above `-inf` comes from non-finite or overflowing weights (a
/// score of −∞ from a damaged checkpoint's 1e38), as does a NaN logit: such a row is NaN rather
/// than stopping the process, so that the trainer's and the probe's checks of the loss report it.
/// In place is allowed (`probs == logits`).
/// Shapes: `probs [N, K]`, `logits [N, K]`. The probabilities are what backward needs.
/// ### References
/// `torch.softmax` with `masked_fill(-inf)`.
public func softmaxForward(
    probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let z = logits + r * cols
        let p = probs + r * cols
        var maxValue = -Float.infinity
        for c in 0..<cols where z[c] > maxValue { maxValue = z[c] }
        if maxValue == -Float.infinity {
            // Every logit is −∞ or NaN (the comparison skips NaN). A NaN anywhere else already
            // makes the sum, and so the row, NaN below.
            p.update(repeating: .nan, count: cols)
            continue
        }
        var sum: Float = 0
        for c in 0..<cols {
            let e = z[c] == -Float.infinity ? 0 : expf(z[c] - maxValue)
            p[c] = e
            sum += e
        }
        let inv = 1 / sum
        for c in 0..<cols { p[c] *= inv }
    }
}

/// Backward of `softmaxForward`; **accumulates** `dz += p ⊙ (dp − Σ_k dp_k p_k)` (masked entries get 0).
public func softmaxBackward(
    dLogits: UnsafeMutablePointer<Float>, dProbs: UnsafePointer<Float>,
    probs: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let p = probs + r * cols
        let dp = dProbs + r * cols
        let dz = dLogits + r * cols
        var dot: Float = 0
        for c in 0..<cols { dot += dp[c] * p[c] }
        for c in 0..<cols { dz[c] += p[c] * (dp[c] - dot) }
    }
}

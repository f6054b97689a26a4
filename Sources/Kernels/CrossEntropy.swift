import Foundation

// Dimension letters: N rows, K classes.

/// Label-smoothed cross-entropy per row: `ℓ = (1−ε)·(−log p_t) + ε·mean_k(−log p_k)`, `p = softmax(z)`.
///
/// Rows whose target is `ignoreIndex` (−1 in this project) get loss 0 and are not counted.
/// Shapes: `probs [N, K]` (cached for backward), `logits [N, K]`, `targets [N]`.
/// Returns the sum of row losses (in Double) and the number of counted rows; the caller divides
/// (the model's losses are means over counted rows).
/// ### References
/// `torch.nn.functional.cross_entropy(label_smoothing=ε, ignore_index=-1)`.
public func crossEntropyForward(
    probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, targets: UnsafePointer<Int>,
    rows: Int, classes: Int, labelSmoothing: Float = 0, ignoreIndex: Int = -1
) -> (lossSum: Double, counted: Int) {
    var total = 0.0
    var counted = 0
    for r in 0..<rows {
        let z = logits + r * classes
        let p = probs + r * classes
        var maxValue = -Float.infinity
        for c in 0..<classes where z[c] > maxValue { maxValue = z[c] }
        var sum = 0.0
        for c in 0..<classes { sum += Double(expf(z[c] - maxValue)) }
        let logSum = Double(maxValue) + log(sum)
        for c in 0..<classes { p[c] = Float(exp(Double(z[c]) - logSum)) }
        let t = targets[r]
        if t == ignoreIndex { continue }
        precondition(t >= 0 && t < classes, "crossEntropyForward: target \(t) outside 0..<\(classes)")
        var meanNegLog = 0.0
        for c in 0..<classes { meanNegLog += logSum - Double(z[c]) }
        meanNegLog /= Double(classes)
        let eps = Double(labelSmoothing)
        total += (1 - eps) * (logSum - Double(z[t])) + eps * meanNegLog
        counted += 1
    }
    return (total, counted)
}

/// Backward of `crossEntropyForward` for the loss `scale · Σ_rows ℓ_r`; **accumulates**
/// `dz += scale · (p − (1−ε)·onehot(t) − ε/K)` on counted rows (ignored rows get nothing).
public func crossEntropyBackward(
    dLogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
    targets: UnsafePointer<Int>, scale: Float,
    rows: Int, classes: Int, labelSmoothing: Float = 0, ignoreIndex: Int = -1
) {
    let uniform = labelSmoothing / Float(classes)
    for r in 0..<rows {
        let t = targets[r]
        if t == ignoreIndex { continue }
        let p = probs + r * classes
        let dz = dLogits + r * classes
        for c in 0..<classes { dz[c] += scale * (p[c] - uniform) }
        dz[t] -= scale * (1 - labelSmoothing)
    }
}

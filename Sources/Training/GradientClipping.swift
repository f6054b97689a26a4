/// Global gradient-norm clipping as `torch.nn.utils.clip_grad_norm_` does it: the L2 norm over the
/// whole buffer (summed in Double); when it exceeds `maxNorm`, every value is multiplied by
/// `maxNorm / (norm + 1e-6)`.
///
/// - Returns: the norm before clipping (NaN or infinity when the gradient is not finite; the
///   buffer is then left unchanged).
@discardableResult
public func clipGradientNorm(_ gradient: inout [Float], maxNorm: Double) -> Double {
    var sum = 0.0
    for g in gradient { sum += Double(g) * Double(g) }
    let norm = sum.squareRoot()
    guard norm.isFinite else { return norm }
    if norm > maxNorm {
        let scale = Float(maxNorm / (norm + 1e-6))
        for i in gradient.indices { gradient[i] *= scale }
    }
    return norm
}

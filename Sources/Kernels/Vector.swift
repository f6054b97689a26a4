import CBLAS

/// `y += alpha · x` over `count` Floats (BLAS `saxpy`): the expert merges and per-expert gradient
/// updates of the MoE, which are O(out·in) per routing unit and were scalar loops.
@inlinable
public func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    precondition(count >= 0, "axpy: negative count \(count)")
    if count == 0 { return }
    cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
}

/// `Σ x_i · y_i` of Floats accumulated in Double (BLAS `dsdot`): the MoE gate gradient
/// `⟨dW, W_e⟩` is a small difference of large sums, so it keeps Double accumulation.
@inlinable
public func dotInDouble(count: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
    precondition(count >= 0, "dotInDouble: negative count \(count)")
    if count == 0 { return 0 }
    return cblas_dsdot(Int32(count), x, 1, y, 1)
}

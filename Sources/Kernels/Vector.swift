import CBLAS

/// `y += alpha · x` over `count` Floats (BLAS `saxpy`): the expert merges and per-expert gradient
/// updates of the MoE, which are O(out·in) per routing unit and were scalar loops.
@inlinable
public func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    precondition(count >= 0, "axpy: negative count \(count)")
    if count == 0 { return }
    cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
}

/// `Σ x_i · y_i` of Floats through BLAS `dsdot`. Despite the name, OpenBLAS 0.3.21's Zen kernel
/// rounds each product to Float before the Double sum (relative error ≈ 5e-8 against exact Double
/// accumulation on 1000 elements), so the MoE gate gradients no longer use it: see
/// `expertMergeBackward` and `expertRowBackward`, which accumulate exact products in Double.
@inlinable
public func dotInDouble(count: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
    precondition(count >= 0, "dotInDouble: negative count \(count)")
    if count == 0 { return 0 }
    return cblas_dsdot(Int32(count), x, 1, y, 1)
}

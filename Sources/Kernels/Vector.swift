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

/// The index of the first NaN or ±∞ among `values`, or nil: the probe checks every gradient it
/// records. A Float is non-finite exactly when its magnitude bits are ≥ those of +∞; the scan keeps
/// their running maximum eight at a time and looks closer only in a block where it crossed. (On the
/// demo MoE probe, N = 100, B = 16: 1.0 % of the CPU samples, against 1.7 % for the
/// `contains(where:)` closure it replaces and 23 % for a SIMD mask test per eight values.)
public func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
    let magnitude: UInt32 = 0x7fff_ffff
    let infinity: UInt32 = 0x7f80_0000
    let block = 256
    let n = values.count
    guard let base = values.baseAddress else { return nil }
    let raw = UnsafeRawPointer(base)
    var start = 0
    while start + block <= n {
        var largest = SIMD8<UInt32>()
        for i in stride(from: start, to: start + block, by: 8) {
            let bits = unsafeBitCast(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), to: SIMD8<UInt32>.self)
            largest = pointwiseMax(largest, bits & magnitude)
        }
        if largest.max() >= infinity { break }
        start += block
    }
    for i in start..<n where !base[i].isFinite { return i }
    return nil
}

/// Whether every value is +0 or −0 (a row of gradient the probe need not keep). Eight at a time on
/// the magnitude bits, stopping at the first 256-value block with a non-zero value.
public func isAllZero(_ values: UnsafeBufferPointer<Float>) -> Bool {
    let magnitude: UInt32 = 0x7fff_ffff
    let block = 256
    let n = values.count
    guard let base = values.baseAddress else { return true }
    let raw = UnsafeRawPointer(base)
    var start = 0
    while start + block <= n {
        var any = SIMD8<UInt32>()
        for i in stride(from: start, to: start + block, by: 8) {
            any |= unsafeBitCast(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), to: SIMD8<UInt32>.self)
        }
        if any & magnitude != .zero { return false }
        start += block
    }
    for i in start..<n where base[i] != 0 { return false }
    return true
}

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
/// records. A Float is non-finite exactly when its magnitude bits are ≥ those of +∞. (On the demo
/// MoE probe, N = 100, B = 16: 1.0 % of the CPU samples, against 1.7 % for the `contains(where:)`
/// closure it replaces and 23 % for a SIMD mask test per eight values.)
public func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
    let start = firstBlock(of: values, withMagnitudeBitsReaching: 0x7f80_0000)
    for i in start..<values.count where !values[i].isFinite { return i }
    return nil
}

/// ``firstNonFinite(_:)`` outside `skipped` (ascending, not overlapping, inside `values`): ranges
/// the caller knows hold zeros, such as the experts an MoE step left unchosen (the probe then reads
/// about 40 % of the demo MoE's gradient instead of all of it).
public func firstNonFinite(_ values: UnsafeBufferPointer<Float>, skipping skipped: [Range<Int>]) -> Int? {
    var start = 0
    for range in skipped + [values.count..<values.count] {
        precondition(
            range.lowerBound >= start && range.upperBound <= values.count,
            "firstNonFinite: skipped range \(range) overlaps an earlier one or leaves 0..<\(values.count)")
        if let i = firstNonFinite(UnsafeBufferPointer(rebasing: values[start..<range.lowerBound])) { return start + i }
        start = range.upperBound
    }
    return nil
}

/// Whether every value is +0 or −0 (a row of gradient the probe need not keep): magnitude bits
/// reaching 1 anywhere means a value that is not zero.
public func isAllZero(_ values: UnsafeBufferPointer<Float>) -> Bool {
    let start = firstBlock(of: values, withMagnitudeBitsReaching: 1)
    for i in start..<values.count where values[i] != 0 { return false }
    return true
}

/// Where a scalar search for a value with magnitude bits (`bitPattern & 0x7fffffff`) ≥ `threshold`
/// must begin: the start of the first whole 256-value block holding one, or of the tail after the
/// whole blocks. The blocks keep the running maximum of the bits eight at a time.
private func firstBlock(of values: UnsafeBufferPointer<Float>, withMagnitudeBitsReaching threshold: UInt32) -> Int {
    let magnitude: UInt32 = 0x7fff_ffff
    let block = 256
    guard let base = values.baseAddress else { return 0 }
    let raw = UnsafeRawPointer(base)
    var start = 0
    while start + block <= values.count {
        var largest = SIMD8<UInt32>()
        for i in stride(from: start, to: start + block, by: 8) {
            let bits = unsafeBitCast(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), to: SIMD8<UInt32>.self)
            largest = pointwiseMax(largest, bits & magnitude)
        }
        if largest.max() >= threshold { return start }
        start += block
    }
    return start
}

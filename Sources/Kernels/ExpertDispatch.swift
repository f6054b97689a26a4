// Dimension letters: n features of one row, R rows.
//
// The row-wise passes of token/context routing's dispatched experts (`ExpertLinear`): combining a
// row's top-2 expert outputs, adding its two input gradients back, and an expert's bias gradient.
// Each is one pass over the rows instead of one BLAS `saxpy` call per (row, expert) slot plus a
// zero fill: at these widths (128–512) a call's fixed cost is a good part of its work.

/// `output = g0·a + g1·b` over `n` Floats, **overwriting** `output` (the sum taken in that order,
/// as `0 + g0·a` and then `+ g1·b`).
public func weightedPairSum(
    output: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ g0: Float, _ b: UnsafePointer<Float>,
    _ g1: Float, count n: Int
) {
    let G0 = SIMD8<Float>(repeating: g0)
    let G1 = SIMD8<Float>(repeating: g1)
    var i = 0
    while i + 8 <= n {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: (G0 * x).addingProduct(G1, y), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        output[i] = (g0 * a[i]).addingProduct(g1, b[i])
        i += 1
    }
}

/// `y += a`, then `y += b`, over `n` Floats.
public func addPair(into y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) {
    var i = 0
    while i + 8 <= n {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        let z = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        let o = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: (o + x) + z, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        y[i] = (y[i] + a[i]) + b[i]
        i += 1
    }
}

/// `y += Σ_r rows[r]` over `n` Floats, rows added in order (`rows [R, n]`, or `n` columns of rows
/// `stride` apart): a bias gradient, or a lane's share of one.
public func addRows(
    into y: UnsafeMutablePointer<Float>, rows: UnsafePointer<Float>, count R: Int, width n: Int, stride: Int? = nil
) {
    // Row by row: `y` (one row) stays in L1 while the rows stream past once.
    for r in 0..<R {
        let row = rows + r * (stride ?? n)
        var i = 0
        while i + 8 <= n {
            let x = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
            let o = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: o + x, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            y[i] += row[i]
            i += 1
        }
    }
}

/// Naive twin of `weightedPairSum`.
public func weightedPairSumNaive(
    output: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ g0: Float, _ b: UnsafePointer<Float>,
    _ g1: Float, count n: Int
) {
    for i in 0..<n { output[i] = g0 * a[i] + g1 * b[i] }
}

/// Naive twin of `addPair`.
public func addPairNaive(into y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { y[i] += a[i] }
    for i in 0..<n { y[i] += b[i] }
}

/// Naive twin of `addRows`.
public func addRowsNaive(into y: UnsafeMutablePointer<Float>, rows: UnsafePointer<Float>, count R: Int, width n: Int) {
    for i in 0..<n {
        for r in 0..<R { y[i] += rows[r * n + i] }
    }
}

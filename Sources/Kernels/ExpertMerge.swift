// Dimension letters: n elements of one expert tensor (O·I for a weight, O for a bias), k chosen
// experts (top-k, 1 or 2 in every configuration).
//
// The Conditional-MoE merge and its backward are O(n) per routing unit and bound by memory
// traffic, not arithmetic (a D=128 layer's four expert weights are ≈ 0.8 MB, past L2). Written as
// one pass over memory each: the BLAS composition they replace (fill, k × saxpy; k × saxpy,
// k × dsdot) read and wrote the same arrays k to 2k times. Naive twins (`…Naive`) in
// Reference.swift's style, kept beside them here so each pair is read together.

/// `merged = Σ_j g_j · expert_j` over `n` Floats, **overwriting** `merged` (official
/// `task_moe/experts.py`: the chosen experts' parameters weighted by their renormalised gate
/// weights, once per segment).
///
/// Shapes: `merged [n]`, every `experts[j] [n]`, `gates [k]` with `k = experts.count ≥ 1`.
/// ### References
/// Uni-Perceiver-MoE `task_moe/experts.py` (merge per segment); uniperceiver-model.md §5.3.
public func expertMerge(
    merged: UnsafeMutablePointer<Float>, experts: [UnsafePointer<Float>], gates: [Float], count n: Int
) {
    precondition(
        !experts.isEmpty && experts.count == gates.count && n >= 0,
        "expertMerge: \(experts.count) experts, \(gates.count) gates, count \(n)")
    let x0 = experts[0]
    let g0 = gates[0]
    var i = 0
    if experts.count == 2 {
        // Top-2, every released configuration: one read of each expert, one write.
        let x1 = experts[1]
        let g1 = gates[1]
        let G0 = SIMD8<Float>(repeating: g0)
        let G1 = SIMD8<Float>(repeating: g1)
        while i + 8 <= n {
            let a = UnsafeRawPointer(x0 + i).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(x1 + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(merged + i).storeBytes(of: G0 * a + G1 * b, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            merged[i] = g0 * x0[i] + g1 * x1[i]
            i += 1
        }
        return
    }
    for e in 0..<n { merged[e] = g0 * x0[e] }
    for j in 1..<experts.count { axpy(count: n, alpha: gates[j], x: experts[j], y: merged) }
}

/// Backward of `expertMerge` given `dMerged = ∂L/∂merged`: **accumulates**
/// `dExperts[j] += g_j · dMerged` and returns `∂L/∂g_j = ⟨dMerged, expert_j⟩` per chosen expert.
/// `overwrite[j]` (default all false) writes `dExperts[j] = g_j · dMerged` instead, without reading
/// it: an expert's first write in `Model.gradient(_:into:)`, which then needs no zeroing pass.
///
/// The dot products are accumulated in Double (each Float product is exact in Double): the gate's
/// logit gradient is `g1·g2·(∂L/∂g1 − ∂L/∂g2)`, a small difference of two large sums, and Float
/// accumulation costs about three digits of it (see `Router.backward`).
///
/// Shapes: `dMerged [n]`, `experts[j] [n]`, `dExperts[j] [n]`, `gates [k]`; result `[k]`.
/// `dExperts[j]` must not alias each other (two chosen experts are always distinct).
public func expertMergeBackward(
    dExperts: [UnsafeMutablePointer<Float>], dMerged: UnsafePointer<Float>,
    experts: [UnsafePointer<Float>], gates: [Float], count n: Int, overwrite: [Bool]? = nil
) -> [Double] {
    let k = experts.count
    let overwrite = overwrite ?? [Bool](repeating: false, count: k)
    precondition(
        k >= 1 && gates.count == k && dExperts.count == k && overwrite.count == k && n >= 0,
        "expertMergeBackward: \(k) experts, \(gates.count) gates, \(dExperts.count) gradients, \(overwrite.count) overwrite flags, count \(n)")
    if k != 2 {
        // Not BLAS saxpy + dsdot: OpenBLAS's Zen `dsdot` kernel rounds the products to Float
        // (relative error ≈ 5e-8 against exact Double accumulation, found by the twin test).
        return (0..<k).map { j in
            expertMergeBackwardOne(
                dExpert: dExperts[j], dMerged: dMerged, expert: experts[j], gate: gates[j], count: n,
                overwrite: overwrite[j])
        }
    }
    let (x0, x1) = (experts[0], experts[1])
    let (y0, y1) = (dExperts[0], dExperts[1])
    let (g0, g1) = (gates[0], gates[1])
    let G0 = SIMD8<Float>(repeating: g0)
    let G1 = SIMD8<Float>(repeating: g1)
    // Four Double accumulators (low and high halves of 8 lanes, per expert).
    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
    let (keep0, keep1) = (!overwrite[0], !overwrite[1])
    var i = 0
    while i + 8 <= n {
        let d = UnsafeRawPointer(dMerged + i).loadUnaligned(as: SIMD8<Float>.self)
        let a = UnsafeRawPointer(x0 + i).loadUnaligned(as: SIMD8<Float>.self)
        let b = UnsafeRawPointer(x1 + i).loadUnaligned(as: SIMD8<Float>.self)
        let ya = keep0 ? UnsafeRawPointer(y0 + i).loadUnaligned(as: SIMD8<Float>.self) : SIMD8<Float>()
        let yb = keep1 ? UnsafeRawPointer(y1 + i).loadUnaligned(as: SIMD8<Float>.self) : SIMD8<Float>()
        UnsafeMutableRawPointer(y0 + i).storeBytes(of: ya + G0 * d, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y1 + i).storeBytes(of: yb + G1 * d, as: SIMD8<Float>.self)
        let (dLow, dHigh) = (lowHalf(d), highHalf(d))
        s0 += dLow * lowHalf(a)
        s1 += dHigh * highHalf(a)
        s2 += dLow * lowHalf(b)
        s3 += dHigh * highHalf(b)
        i += 8
    }
    var dot0 = (s0 + s1).sum()
    var dot1 = (s2 + s3).sum()
    while i < n {
        let d = dMerged[i]
        y0[i] = (keep0 ? y0[i] : 0) + g0 * d
        y1[i] = (keep1 ? y1[i] : 0) + g1 * d
        dot0 += Double(d) * Double(x0[i])
        dot1 += Double(d) * Double(x1[i])
        i += 1
    }
    return [dot0, dot1]
}

/// One chosen expert of `expertMergeBackward`: `dExpert += g · dMerged`, returns `⟨dMerged, expert⟩`
/// accumulated in Double.
func expertMergeBackwardOne(
    dExpert: UnsafeMutablePointer<Float>, dMerged: UnsafePointer<Float>, expert: UnsafePointer<Float>,
    gate g: Float, count n: Int, overwrite: Bool = false
) -> Double {
    let G = SIMD8<Float>(repeating: g)
    let keep = !overwrite
    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        let d = UnsafeRawPointer(dMerged + i).loadUnaligned(as: SIMD8<Float>.self)
        let a = UnsafeRawPointer(expert + i).loadUnaligned(as: SIMD8<Float>.self)
        let y = keep ? UnsafeRawPointer(dExpert + i).loadUnaligned(as: SIMD8<Float>.self) : SIMD8<Float>()
        UnsafeMutableRawPointer(dExpert + i).storeBytes(of: y + G * d, as: SIMD8<Float>.self)
        s0 += lowHalf(d) * lowHalf(a)
        s1 += highHalf(d) * highHalf(a)
        i += 8
    }
    var dot = (s0 + s1).sum()
    while i < n {
        dExpert[i] = (keep ? dExpert[i] : 0) + g * dMerged[i]
        dot += Double(dMerged[i]) * Double(expert[i])
        i += 1
    }
    return dot
}

/// `output = g · dOutput` over one routed row, returning `⟨dOutput, expertOutput⟩` accumulated in
/// Double: a dispatched expert's `dY` for its backward and its gate weight's gradient
/// `∂L/∂g = ⟨dy, W_e·x + b_e⟩` (Double for the reason `expertMergeBackward` gives), in one pass.
///
/// Shapes: `output`, `dOutput`, `expertOutput` `[n]` (`n = O`).
public func expertRowBackward(
    output: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, gate g: Float,
    expertOutput: UnsafePointer<Float>, count n: Int
) -> Double {
    // The merge-backward of one expert with its first write: output = g·dOutput, dot with the
    // expert's output in place of its weights.
    expertMergeBackwardOne(
        dExpert: output, dMerged: dOutput, expert: expertOutput, gate: g, count: n, overwrite: true)
}

/// Naive twin of `expertRowBackward`.
public func expertRowBackwardNaive(
    output: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, gate g: Float,
    expertOutput: UnsafePointer<Float>, count n: Int
) -> Double {
    var dot = 0.0
    for i in 0..<n {
        output[i] = g * dOutput[i]
        dot += Double(dOutput[i]) * Double(expertOutput[i])
    }
    return dot
}

/// Naive twin of `expertMerge`: one scalar loop per element, summing in chosen-expert order.
public func expertMergeNaive(
    merged: UnsafeMutablePointer<Float>, experts: [UnsafePointer<Float>], gates: [Float], count n: Int
) {
    for i in 0..<n {
        var sum: Float = 0
        for j in experts.indices { sum += gates[j] * experts[j][i] }
        merged[i] = sum
    }
}

/// Naive twin of `expertMergeBackward`: scalar loops, one expert at a time.
public func expertMergeBackwardNaive(
    dExperts: [UnsafeMutablePointer<Float>], dMerged: UnsafePointer<Float>,
    experts: [UnsafePointer<Float>], gates: [Float], count n: Int, overwrite: [Bool]? = nil
) -> [Double] {
    experts.indices.map { j in
        var dot = 0.0
        for i in 0..<n {
            if overwrite?[j] == true { dExperts[j][i] = 0 }
            dExperts[j][i] += gates[j] * dMerged[i]
            dot += Double(dMerged[i]) * Double(experts[j][i])
        }
        return dot
    }
}

/// Lanes 0–3 and 4–7 of `v` widened to Double (exactly), for products accumulated in Double.
@inline(__always)
func lowHalf(_ v: SIMD8<Float>) -> SIMD4<Double> { SIMD4(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3])) }

@inline(__always)
func highHalf(_ v: SIMD8<Float>) -> SIMD4<Double> { SIMD4(Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7])) }


import Foundation

// GELU is the largest elementwise cost of a layer (N·F values, forward and backward), and scalar
// libm `erff`/`expf` made it 10–15 % of a gradient sample. Both kernels therefore run on SIMD8
// lanes with a rational erf and a polynomial exp; `Reference.swift` keeps the libm Double twin.

/// Exact GELU: `y = x · Φ(x) = ½ x (1 + erf(x/√2))`, and, when `slope` is given, its derivative
/// `Φ(x) + x·φ(x)` (φ the standard normal pdf) for `geluBackward`: the forward already has Φ(x), and
/// a backward that recomputed erf and exp cost twice the forward in the profiles.
///
/// Shapes: `output [count]`, `slope [count]` (optional), `input [count]`. `erf` is `fastErf`
/// (|error| ≤ 4e-7), `exp` is `fastExp`.
/// ### References
/// `torch.nn.functional.gelu(approximate="none")`; Hendrycks & Gimpel 2016.
public func geluForward(
    output: UnsafeMutablePointer<Float>, slope: UnsafeMutablePointer<Float>? = nil, input: UnsafePointer<Float>,
    count: Int
) {
    guard let slope else {
        simd8Map(count: count, input: input, into: output) { x, _ in x * (0.5 * (1 + fastErf(x * 0.707_106_77))) }
        return
    }
    simd8Map(count: count, input: input, into: output) { x, i in
        let cdf = 0.5 * (1 + fastErf(x * 0.707_106_77))
        let pdf = 0.398_942_28 * fastExp(-0.5 * x * x)
        let d = cdf + x * pdf
        if i + 8 <= count {
            UnsafeMutableRawPointer(slope + i).storeBytes(of: d, as: SIMD8<Float>.self)
        } else {
            for k in 0..<(count - i) { slope[i + k] = d[k] }
        }
        return x * cdf
    }
}

/// Backward of `geluForward` from the slope it stored; **accumulates** `dx += dy · slope`.
public func geluBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, slope: UnsafePointer<Float>, count: Int
) {
    simd8Map(count: count, input: slope, into: dInput, with: dOutput) { d, dy, dx in dx + dy * d }
}

/// erf on 8 lanes: `erf(x) ≈ x·P(x²)/Q(x²)` on |x| ≤ 3.92 (beyond, erf is ±1 in Float), P of degree
/// 5 and Q of degree 5 in x², Q(0) = 1. Coefficients fitted by weighted least squares (Loeb
/// iterations) by `Sources/Kernels/fit_erf.py`; measured max |error| 3.8e-7 over [−6, 6] in Float.
@inline(__always)
func fastErf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let c = clamp(x, -3.92, 3.92)
    let t = c * c
    var p = SIMD8<Float>(repeating: 2.090_952_4e-06)
    p = p * t + 2.865_259_9e-04
    p = p * t + 3.729_311_5e-03
    p = p * t + 5.264_107_1e-02
    p = p * t + 1.892_343_6e-01
    p = p * t + 1.128_379_1
    var q = SIMD8<Float>(repeating: 3.860_168_7e-05)
    q = q * t + 1.158_397_8e-03
    q = q * t + 1.489_303_4e-02
    q = q * t + 1.136_683_6e-01
    q = q * t + 5.010_368_2e-01
    q = q * t + 1
    return clamp(c * p / q, -1, 1)
}

/// exp on 8 lanes for arguments ≤ 0 (GELU's `−x²/2`): `e^z = 2ⁿ·e^r`, `n = round(z/ln 2)`,
/// |r| ≤ ln 2 / 2, e^r by its degree-7 Taylor polynomial (relative error < 3e-8 before rounding).
/// Arguments below −87 are clamped there (e^−87 ≈ 1.6e-38, the smallest normal scale).
@inline(__always)
func fastExp(_ z: SIMD8<Float>) -> SIMD8<Float> {
    let x = clamp(z, -87, 0)
    // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
    let shifted = x * 1.442_695_04 + 12_582_912
    let n = shifted - 12_582_912
    // ln 2 split in a high part exact in Float and a low correction (Cody–Waite).
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-06
    var e = SIMD8<Float>(repeating: 1.0 / 5040)
    e = e * r + 1.0 / 720
    e = e * r + 1.0 / 120
    e = e * r + 1.0 / 24
    e = e * r + 1.0 / 6
    e = e * r + 0.5
    e = e * r + 1
    e = e * r + 1
    let integer = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B40_0000
    return e * unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
}

/// Lane-wise clamp. (`SIMD.clamped` and `rounded` are not vectorised by the Swift 6.3 optimiser on
/// Linux — 10× slower here — while `replacing(with:where:)` is.)
@inline(__always)
func clamp(_ x: SIMD8<Float>, _ lower: Float, _ upper: Float) -> SIMD8<Float> {
    x.replacing(with: upper, where: x .> upper).replacing(with: lower, where: x .< lower)
}

/// Applies `f` to `input` 8 values at a time (the tail zero-padded), writing `output`.
@inline(__always)
func simd8Map(
    count: Int, input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
    _ f: (SIMD8<Float>, Int) -> SIMD8<Float>
) {
    var i = 0
    while i + 8 <= count {
        let x = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: f(x, i), as: SIMD8<Float>.self)
        i += 8
    }
    if i < count {
        var x = SIMD8<Float>()
        for k in 0..<(count - i) { x[k] = input[i + k] }
        let y = f(x, i)
        for k in 0..<(count - i) { output[i + k] = y[k] }
    }
}

/// Applies `f(x, a, out)` lane-wise over `input`, a second input `a` and the current `output`.
@inline(__always)
func simd8Map(
    count: Int, input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
    with a: UnsafePointer<Float>, _ f: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>
) {
    var i = 0
    while i + 8 <= count {
        let x = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
        let y = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        let o = UnsafeRawPointer(output + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: f(x, y, o), as: SIMD8<Float>.self)
        i += 8
    }
    if i < count {
        var x = SIMD8<Float>(), y = SIMD8<Float>(), o = SIMD8<Float>()
        for k in 0..<(count - i) { (x[k], y[k], o[k]) = (input[i + k], a[i + k], output[i + k]) }
        let r = f(x, y, o)
        for k in 0..<(count - i) { output[i + k] = r[k] }
    }
}

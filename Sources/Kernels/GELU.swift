import Foundation

/// Exact GELU: `y = x · Φ(x) = ½ x (1 + erf(x/√2))`.
///
/// Shapes: `output [count]`, `input [count]` (may alias for an in-place forward only when backward
/// does not need the input; the model keeps the pre-activation).
/// ### References
/// `torch.nn.functional.gelu(approximate="none")`; Hendrycks & Gimpel 2016.
public func geluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let x = input[i]
        output[i] = 0.5 * x * (1 + erff(x * 0.707_106_77))
    }
}

/// Backward of `geluForward`; **accumulates** `dx += dy · (Φ(x) + x·φ(x))`, φ the standard normal pdf.
public func geluBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int
) {
    for i in 0..<count {
        let x = input[i]
        let cdf = 0.5 * (1 + erff(x * 0.707_106_77))
        let pdf = 0.398_942_28 * expf(-0.5 * x * x)
        dInput[i] += dOutput[i] * (cdf + x * pdf)
    }
}

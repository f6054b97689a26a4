// Element-wise and whole-tensor closeness checks that fail the calling Swift Testing test.
//
// API (all record an `Issue` at the caller's source location and return whether they passed):
//
//   expectClose(actual, expected, shape: [Int]? = nil, rtol:, atol:, "comment")
//   expectClose(actual, expected, shape: [Int]? = nil, tolerance: Tolerance.kernel, "comment")
//       `actual` and `expected` are any `CloseComparable`: `[Float]`, `[Double]`, `Tensor`,
//       `DoubleTensor`. Element i passes when |a_i − e_i| ≤ atol + rtol·|e_i| (numpy `allclose`);
//       NaN or ±inf on either side fails unless both sides are the same infinity.
//       Shapes are checked first (each side's own shape when it has one, and `shape:` if given).
//       A failure reports the max abs error, the worst element's index (flat and multi-index),
//       the max relative error and the first five (actual, expected) pairs (llm.c `check_tensor`).
//
//   relativeError(a, b) -> Double                      ‖a − b‖₂ / ‖b‖₂ (in Double)
//   expectRelativeError(actual, expected, atMost: Tolerance.modelGradientRelative, name: "…")
//       whole-tensor check, e.g. a model parameter's gradient against the PyTorch float64 one.
//
//   closeness(actual, expected, rtol:, atol:) -> Closeness   the same numbers without recording.

import Foundation
import Kernels
import Testing

// MARK: - Values that can be compared

/// A flat list of values plus an optional shape: what `expectClose` and `relativeError` compare.
public protocol CloseComparable {
    /// The values in row-major order, widened to Double.
    var closeValues: [Double] { get }
    /// The shape when the value carries one (`Tensor`), nil for a bare array.
    var closeShape: [Int]? { get }
}

extension Array: CloseComparable where Element: BinaryFloatingPoint {
    public var closeValues: [Double] { map { Double($0) } }
    public var closeShape: [Int]? { nil }
}

extension Tensor: CloseComparable {
    public var closeValues: [Double] { data.map { Double($0) } }
    public var closeShape: [Int]? { shape }
}

/// A row-major Double tensor: how float64 reference outputs (PyTorch fixtures) are held in tests.
public struct DoubleTensor: Sendable, Equatable, CloseComparable {
    public var shape: [Int]
    public var data: [Double]

    public init(shape: [Int], data: [Double]) {
        precondition(
            shape.reduce(1, *) == data.count,
            "DoubleTensor: shape \(shape) holds \(shape.reduce(1, *)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    public var count: Int { data.count }
    public var closeValues: [Double] { data }
    public var closeShape: [Int]? { shape }
    /// The values rounded to Float32 (e.g. to feed a Float kernel from a float64 fixture).
    public var floats: [Float] { data.map { Float($0) } }
}

// MARK: - The comparison itself

/// The outcome of comparing two value lists element-wise.
public struct Closeness: Sendable, CustomStringConvertible {
    /// Shape problem found before any value was compared (nil when shapes agree).
    public var shapeMismatch: String?
    public var count: Int
    /// Elements with |a − e| > atol + rtol·|e| (or a non-finite mismatch).
    public var failing: Int
    /// Max |a − e| over elements where both are finite.
    public var maxAbsoluteError: Double
    /// Elements where exactly one side, or both with different values, are NaN or ±inf.
    public var nonFinite: Int
    /// Max of |a − e| / |e| over elements with e ≠ 0.
    public var maxRelativeError: Double
    /// Flat index of the element with the largest |a − e| (the first non-finite mismatch ranks first).
    public var worstIndex: Int
    public var worstActual: Double
    public var worstExpected: Double
    /// The shape used to print multi-indices (nil for bare arrays without `shape:`).
    public var shape: [Int]?
    /// The first (up to) five (actual, expected) pairs.
    public var firstPairs: [(actual: Double, expected: Double)]
    public var rtol: Double
    public var atol: Double

    public var passed: Bool { shapeMismatch == nil && failing == 0 }

    public var description: String {
        if let shapeMismatch { return "shape mismatch: \(shapeMismatch)" }
        var index = "\(worstIndex)"
        if let shape, shape.count > 1, count > 0 {
            index += " \(multiIndex(worstIndex, shape: shape))"
        }
        let pairs = firstPairs.map { "(\(format($0.actual)), \(format($0.expected)))" }
            .joined(separator: " ")
        return """
            \(failing) of \(count) elements outside atol \(atol) + rtol \(rtol)·|expected|\
            \(nonFinite > 0 ? " (\(nonFinite) non-finite mismatches)" : ""); \
            max abs error \(format(maxAbsoluteError)); worst element at index \(index) \
            (actual \(format(worstActual)), expected \(format(worstExpected))); \
            max rel error \(format(maxRelativeError)); first pairs (actual, expected): \(pairs)
            """
    }
}

/// Compares `actual` to `expected` element-wise without recording anything.
public func closeness(
    _ actual: some CloseComparable, _ expected: some CloseComparable, shape: [Int]? = nil,
    rtol: Double, atol: Double
) -> Closeness {
    let a = actual.closeValues
    let e = expected.closeValues
    var result = Closeness(
        shapeMismatch: nil, count: a.count, failing: 0, maxAbsoluteError: 0, nonFinite: 0,
        maxRelativeError: 0,
        worstIndex: 0, worstActual: a.first ?? .nan, worstExpected: e.first ?? .nan,
        shape: shape ?? expected.closeShape ?? actual.closeShape,
        firstPairs: [], rtol: rtol, atol: atol)
    // Shape first: each side's own shape, then the caller's.
    if let sa = actual.closeShape, let se = expected.closeShape, sa != se {
        result.shapeMismatch = "actual \(sa), expected \(se)"
    } else if let shape, let s = actual.closeShape ?? expected.closeShape, s != shape {
        result.shapeMismatch = "got \(s), the check expects \(shape)"
    } else if let shape, shape.reduce(1, *) != a.count || shape.reduce(1, *) != e.count {
        result.shapeMismatch =
            "shape \(shape) holds \(shape.reduce(1, *)) values; actual has \(a.count), expected \(e.count)"
    } else if a.count != e.count {
        result.shapeMismatch = "actual has \(a.count) values, expected \(e.count)"
    }
    if result.shapeMismatch != nil { return result }

    var worstScore = -1.0
    for i in 0..<a.count {
        let diff = abs(a[i] - e[i])
        let bothSameInfinity = a[i].isInfinite && a[i] == e[i]
        let ok: Bool
        let score: Double
        if bothSameInfinity {
            ok = true
            score = 0
        } else if !a[i].isFinite || !e[i].isFinite {
            ok = false
            score = .infinity
            result.nonFinite += 1
        } else {
            ok = diff <= atol + rtol * abs(e[i])
            score = diff
            result.maxAbsoluteError = max(result.maxAbsoluteError, diff)
            if e[i] != 0 {
                result.maxRelativeError = max(result.maxRelativeError, diff / abs(e[i]))
            }
        }
        if !ok { result.failing += 1 }
        if score > worstScore {
            worstScore = score
            result.worstIndex = i
            result.worstActual = a[i]
            result.worstExpected = e[i]
        }
        if i < 5 { result.firstPairs.append((a[i], e[i])) }
    }
    return result
}

/// Fails the current test unless `actual` matches `expected` element-wise within
/// `|a − e| ≤ atol + rtol·|e|`; shapes are checked first.
///
/// - Parameters:
///   - actual: the value under test (`[Float]`, `Tensor`, …).
///   - expected: the reference (`[Double]` from float64, `[Float]`, `Tensor`, `DoubleTensor`).
///   - shape: the shape both must have (optional for arrays; checked against tensors' shapes).
///   - comment: names the quantity in the failure message (e.g. `"layernorm.dx"`).
/// - Returns: whether the check passed (the failure is already recorded).
@discardableResult
public func expectClose(
    _ actual: some CloseComparable, _ expected: some CloseComparable, shape: [Int]? = nil,
    rtol: Double, atol: Double, _ comment: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    let result = closeness(actual, expected, shape: shape, rtol: rtol, atol: atol)
    if !result.passed {
        let prefix = comment.map { "\($0): " } ?? ""
        Issue.record(
            Comment(rawValue: "expectClose: \(prefix)\(result)"), sourceLocation: sourceLocation)
    }
    return result.passed
}

/// `expectClose` with a tolerance pair from the table (`Tolerance.kernel`, `.fastVersusNaive`, …).
@discardableResult
public func expectClose(
    _ actual: some CloseComparable, _ expected: some CloseComparable, shape: [Int]? = nil,
    tolerance: Tolerance, _ comment: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    expectClose(
        actual, expected, shape: shape, rtol: tolerance.rtol, atol: tolerance.atol, comment,
        sourceLocation: sourceLocation)
}

// MARK: - Whole-tensor relative error

/// `‖a − b‖₂ / ‖b‖₂` summed in Double; `‖a‖₂` when `b` is all zeros (so 0 only if both are zero).
///
/// Counts must match (precondition: this is a helper for values already known to line up).
public func relativeError(_ a: some CloseComparable, _ b: some CloseComparable) -> Double {
    let x = a.closeValues
    let y = b.closeValues
    precondition(x.count == y.count, "relativeError: \(x.count) values against \(y.count)")
    var diff = 0.0
    var ref = 0.0
    for i in 0..<x.count {
        diff += (x[i] - y[i]) * (x[i] - y[i])
        ref += y[i] * y[i]
    }
    return ref == 0 ? diff.squareRoot() : (diff / ref).squareRoot()
}

/// Fails the current test unless `‖actual − expected‖ / ‖expected‖ ≤ atMost` (shapes checked
/// first). The model's gradients are checked this way against `Tolerance.modelGradientRelative`.
///
/// - Returns: the measured relative error (`.infinity` on a shape mismatch or non-finite values).
@discardableResult
public func expectRelativeError(
    _ actual: some CloseComparable, _ expected: some CloseComparable,
    atMost limit: Double, name: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Double {
    let a = actual.closeValues
    let e = expected.closeValues
    if let sa = actual.closeShape, let se = expected.closeShape, sa != se {
        Issue.record(
            Comment(
                rawValue:
                    "expectRelativeError: \(name): shape mismatch, actual \(sa), expected \(se)"),
            sourceLocation: sourceLocation)
        return .infinity
    }
    if a.count != e.count {
        Issue.record(
            Comment(
                rawValue:
                    "expectRelativeError: \(name): actual has \(a.count) values, expected \(e.count)"
            ),
            sourceLocation: sourceLocation)
        return .infinity
    }
    let error = relativeError(actual, expected)
    if !(error <= limit) {  // also catches NaN
        let worst = closeness(actual, expected, rtol: 0, atol: 0)
        Issue.record(
            Comment(
                rawValue: """
                    expectRelativeError: \(name): ‖a − e‖/‖e‖ = \(format(error)) > \(format(limit)); \
                    max abs error \(format(worst.maxAbsoluteError)); worst element at index \(worst.worstIndex) \
                    (actual \(format(worst.worstActual)), expected \(format(worst.worstExpected)))
                    """),
            sourceLocation: sourceLocation)
    }
    return error
}

// MARK: - Formatting

/// `[2, 3]` style multi-index of a flat row-major index.
func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
    var rest = flat
    var index = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        index[d] = rest % shape[d]
        rest /= shape[d]
    }
    return index
}

/// `%.6g` formatting for failure messages.
func format(_ x: Double) -> String { String(format: "%.6g", x) }

// Finite-difference gradient checks (house-style §6, tier 1).
//
// API
// ---
// Coordinate-wise check of a vector function with a random upstream gradient R (CS231n's
// `eval_numerical_gradient_array`): the scalar is L(x) = Σ_j R_j · f(x)_j, summed in Double, and
// each checked coordinate i gets the central difference (L(x + h·e_i) − L(x − h·e_i)) / 2h with
// h = step · max(1, |x_i|). The analytic gradient is compared with the CS231n score
// rel = |a − n| / max(floor, |a| + |n|); coordinate i passes when rel ≤ relativeTolerance OR
// |a − n| ≤ absoluteTolerance (defaults from `Tolerance`: 1e-2 and 1e-4). All coordinates are
// checked when x has at most `exhaustiveLimit` entries, otherwise `coordinates` random ones.
//
//   checkGradient(at: x, options: .init(seed: 7),
//                 forward: { x in f(x) },                       // [Float] -> [Float]
//                 backward: { x, upstream in dL/dx })           // analytic gradient for that R
//       -> GradientCheckResult
//   checkGradient(of: f, at: x, upstream: R, analytic: g, options:)      // R and g given
//   checkGradient(ofScalar: loss, at: x, analytic: g, options:)          // loss: [Float] -> Double
//   expectGradient(…same arguments…, name: "layernorm dx", sourceLocation:) -> GradientCheckResult
//       records a test failure with the worst coordinate when the check fails.
//
// `backward` receives the point x and the upstream R and must return a FRESH gradient with x's
// count (start from zeros; our kernels accumulate). To check a gradient with respect to one
// argument of a multi-argument kernel, close over the others and pass that argument as x.
//
// Directional derivative (for whole-model tests, one parameter tensor at a time):
//
//   checkDirectionalDerivative(loss: ([Float]) -> Double, at: x, gradient: g,
//                              over: range?, options: .init(seed: 3)) -> DirectionalCheckResult
//   expectDirectionalDerivative(…, name: "encoder.layers.0.ffn.dense1.weight")
//
// draws a Gaussian direction d (zero outside `over`, if given; scaled so that its largest entry is
// 1), and compares the central difference (L(x + h·d) − L(x − h·d)) / 2h, h = step · max(1,
// max_{i∈range}|x_i|), with ⟨g, d⟩ in Double. The score is the same CS231n relative error and the
// same pass rule (relative ≤ 1e-2 or absolute ≤ 1e-4, both configurable).
//
// `GradientCheckOptions(extrapolate: true)` switches either check to Richardson extrapolation,
// `(4·D(h/2) − D(h)) / 3`, for strongly curved losses (e.g. the scaled-cosine logits) where a
// plain central difference would need a step small enough for Float32 round-off to dominate.
//
// Everything is deterministic given `options.seed`.

import Kernels
import Testing

// MARK: - Options and results

/// Settings shared by every finite-difference check; defaults come from `Tolerance`.
public struct GradientCheckOptions: Sendable {
    /// Seed for the upstream R, the sampled coordinates and the direction.
    public var seed: UInt64
    /// h = step · max(1, |x_i|); keep it within 1e-3…5e-3 for Float32 kernels.
    public var step: Double
    /// Inputs with at most this many entries are checked at every coordinate.
    public var exhaustiveLimit: Int
    /// Number of random coordinates checked on larger inputs.
    public var coordinates: Int
    /// Pass when the CS231n relative score is at most this...
    public var relativeTolerance: Double
    /// ...or the absolute difference is at most this.
    public var absoluteTolerance: Double
    /// Denominator floor of the relative score.
    public var relativeFloor: Double
    /// Richardson extrapolation: use `(4·D(h/2) − D(h)) / 3`, which cancels the h² truncation term
    /// of the central difference `D`, so a strongly curved loss can take a larger `step` (e.g.
    /// 1e-2) and stay clear of Float32 round-off. Costs twice the evaluations.
    public var extrapolate: Bool

    public init(
        seed: UInt64 = 0x5EED,
        step: Double = Tolerance.finiteDifferenceStep,
        exhaustiveLimit: Int = Tolerance.finiteDifferenceExhaustiveLimit,
        coordinates: Int = Tolerance.finiteDifferenceCoordinates,
        relativeTolerance: Double = Tolerance.finiteDifferenceRelative,
        absoluteTolerance: Double = Tolerance.finiteDifferenceAbsolute,
        relativeFloor: Double = Tolerance.finiteDifferenceRelativeFloor,
        extrapolate: Bool = false
    ) {
        self.seed = seed
        self.step = step
        self.exhaustiveLimit = exhaustiveLimit
        self.coordinates = coordinates
        self.relativeTolerance = relativeTolerance
        self.absoluteTolerance = absoluteTolerance
        self.relativeFloor = relativeFloor
        self.extrapolate = extrapolate
    }
}

/// One checked coordinate.
public struct GradientCheckEntry: Sendable {
    public var index: Int
    public var numeric: Double
    public var analytic: Double
    public var absoluteError: Double
    /// CS231n score `|a − n| / max(floor, |a| + |n|)`.
    public var relativeError: Double
    public var passed: Bool
}

/// Outcome of `checkGradient`: every checked coordinate plus the worst one.
public struct GradientCheckResult: Sendable, CustomStringConvertible {
    public var entries: [GradientCheckEntry]
    public var options: GradientCheckOptions

    public var passed: Bool { entries.allSatisfy(\.passed) }
    public var failingCount: Int { entries.count { !$0.passed } }
    public var maxRelativeError: Double { entries.map(\.relativeError).max() ?? 0 }
    public var maxAbsoluteError: Double { entries.map(\.absoluteError).max() ?? 0 }

    /// The coordinate farthest outside the pass rule: the largest
    /// `min(rel / relTol, abs / absTol)` (a value above 1 fails).
    public var worst: GradientCheckEntry? {
        entries.max { score($0) < score($1) }
    }

    private func score(_ e: GradientCheckEntry) -> Double {
        min(
            e.relativeError / options.relativeTolerance, e.absoluteError / options.absoluteTolerance
        )
    }

    public var description: String {
        guard let w = worst else { return "no coordinates checked" }
        return """
            \(failingCount) of \(entries.count) coordinates fail (rel > \(format(options.relativeTolerance)) \
            and abs > \(format(options.absoluteTolerance))); worst index \(w.index): numeric \(format(w.numeric)), \
            analytic \(format(w.analytic)), abs error \(format(w.absoluteError)), rel error \(format(w.relativeError)); \
            max rel \(format(maxRelativeError)), max abs \(format(maxAbsoluteError)); step \(format(options.step))
            """
    }
}

/// Outcome of `checkDirectionalDerivative`.
public struct DirectionalCheckResult: Sendable, CustomStringConvertible {
    /// (L(x + h·d) − L(x − h·d)) / 2h.
    public var numeric: Double
    /// ⟨g, d⟩.
    public var analytic: Double
    public var absoluteError: Double
    /// CS231n score `|a − n| / max(floor, |a| + |n|)`.
    public var relativeError: Double
    /// The step actually used.
    public var step: Double
    public var passed: Bool

    public var description: String {
        """
        directional derivative: numeric \(format(numeric)), analytic ⟨g, d⟩ \(format(analytic)), \
        abs error \(format(absoluteError)), rel error \(format(relativeError)), step \(format(step))
        """
    }
}

// MARK: - Coordinate-wise checks

/// Checks `analytic` against central differences of `L(x) = Σ upstream ⊙ f(x)` (summed in Double).
public func checkGradient(
    of f: ([Float]) -> [Float], at x: [Float], upstream: [Float], analytic: [Float],
    options: GradientCheckOptions = .init()
) -> GradientCheckResult {
    precondition(
        analytic.count == x.count,
        "checkGradient: gradient has \(analytic.count) entries, input \(x.count)")
    let weighted: ([Float]) -> Double = { point in
        let y = f(point)
        precondition(
            y.count == upstream.count,
            "checkGradient: f gives \(y.count) values, upstream has \(upstream.count)")
        var sum = 0.0
        for j in 0..<y.count { sum += Double(upstream[j]) * Double(y[j]) }
        return sum
    }
    return checkGradient(ofScalar: weighted, at: x, analytic: analytic, options: options)
}

/// Draws a seeded Gaussian upstream R of f(x)'s size, asks `backward(x, R)` for the analytic
/// gradient, and checks it against central differences of `Σ R ⊙ f`.
public func checkGradient(
    at x: [Float], options: GradientCheckOptions = .init(),
    forward f: ([Float]) -> [Float],
    backward: ([Float], [Float]) -> [Float]
) -> GradientCheckResult {
    let outputCount = f(x).count
    var rng = SeededRNG(seed: options.seed ^ 0xA5A5_A5A5_0000_0001)
    let upstream = (0..<outputCount).map { _ in Float(rng.nextGaussian()) }
    let analytic = backward(x, upstream)
    return checkGradient(of: f, at: x, upstream: upstream, analytic: analytic, options: options)
}

/// Checks `analytic` against central differences of a scalar `loss` (already reduced).
public func checkGradient(
    ofScalar loss: ([Float]) -> Double, at x: [Float], analytic: [Float],
    options: GradientCheckOptions = .init()
) -> GradientCheckResult {
    precondition(
        analytic.count == x.count,
        "checkGradient: gradient has \(analytic.count) entries, input \(x.count)")
    let indices: [Int]
    if x.count <= options.exhaustiveLimit {
        indices = Array(0..<x.count)
    } else {
        var rng = SeededRNG(seed: options.seed ^ 0x0C00_0D1A_7E55_0000)
        var all = Array(0..<x.count)
        rng.shuffle(&all)
        indices = Array(all.prefix(options.coordinates)).sorted()
    }
    var point = x
    var entries: [GradientCheckEntry] = []
    entries.reserveCapacity(indices.count)
    for i in indices {
        // Central difference with step h, divided by the step actually taken after rounding
        // x ± h to Float.
        func central(_ h: Double) -> Double {
            let plus = Float(Double(x[i]) + h)
            let minus = Float(Double(x[i]) - h)
            point[i] = plus
            let lPlus = loss(point)
            point[i] = minus
            let lMinus = loss(point)
            point[i] = x[i]
            return (lPlus - lMinus) / (Double(plus) - Double(minus))
        }
        let h = options.step * max(1, abs(Double(x[i])))
        let numeric = options.extrapolate ? (4 * central(h / 2) - central(h)) / 3 : central(h)
        entries.append(
            score(index: i, numeric: numeric, analytic: Double(analytic[i]), options: options))
    }
    return GradientCheckResult(entries: entries, options: options)
}

private func score(index: Int, numeric: Double, analytic: Double, options: GradientCheckOptions)
    -> GradientCheckEntry
{
    let absolute = abs(analytic - numeric)
    let relative = absolute / max(options.relativeFloor, abs(analytic) + abs(numeric))
    let passed =
        numeric.isFinite && analytic.isFinite
        && (relative <= options.relativeTolerance || absolute <= options.absoluteTolerance)
    return GradientCheckEntry(
        index: index, numeric: numeric, analytic: analytic, absoluteError: absolute,
        relativeError: relative, passed: passed)
}

// MARK: - Recording wrappers

/// `checkGradient(of:at:upstream:analytic:options:)` that records a test failure naming `name`.
@discardableResult
public func expectGradient(
    of f: ([Float]) -> [Float], at x: [Float], upstream: [Float], analytic: [Float],
    options: GradientCheckOptions = .init(), name: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> GradientCheckResult {
    record(
        checkGradient(of: f, at: x, upstream: upstream, analytic: analytic, options: options),
        name: name, sourceLocation: sourceLocation)
}

/// `checkGradient(at:options:forward:backward:)` that records a test failure naming `name`.
@discardableResult
public func expectGradient(
    at x: [Float], options: GradientCheckOptions = .init(), name: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    forward f: ([Float]) -> [Float],
    backward: ([Float], [Float]) -> [Float]
) -> GradientCheckResult {
    record(
        checkGradient(at: x, options: options, forward: f, backward: backward),
        name: name, sourceLocation: sourceLocation)
}

/// `checkGradient(ofScalar:at:analytic:options:)` that records a test failure naming `name`.
@discardableResult
public func expectGradient(
    ofScalar loss: ([Float]) -> Double, at x: [Float], analytic: [Float],
    options: GradientCheckOptions = .init(), name: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> GradientCheckResult {
    record(
        checkGradient(ofScalar: loss, at: x, analytic: analytic, options: options),
        name: name, sourceLocation: sourceLocation)
}

private func record(_ result: GradientCheckResult, name: String, sourceLocation: SourceLocation)
    -> GradientCheckResult
{
    if !result.passed {
        Issue.record(
            Comment(rawValue: "gradient check \(name): \(result)"), sourceLocation: sourceLocation)
    }
    return result
}

// MARK: - Directional derivative

/// Compares `(loss(x + h·d) − loss(x − h·d)) / 2h` with `⟨gradient, d⟩` along a seeded Gaussian
/// direction `d` (zero outside `range` when given), scaled so `max |d_i| = 1`. The analytic side
/// uses the perturbation actually representable in Float: `Σ g_i (x⁺_i − x⁻_i) / 2h`.
///
/// - Parameters:
///   - loss: the scalar loss at a point (e.g. the whole model's loss with the flat parameter
///     buffer replaced by the argument).
///   - x: the point (e.g. the flat parameter buffer).
///   - gradient: the analytic gradient at `x`, same count.
///   - range: restrict the direction to these coordinates (one parameter tensor's slice).
///   - direction: use this direction instead of a random one (must have `x.count` entries).
public func checkDirectionalDerivative(
    loss: ([Float]) -> Double, at x: [Float], gradient: [Float], over range: Range<Int>? = nil,
    direction: [Float]? = nil, options: GradientCheckOptions = .init()
) -> DirectionalCheckResult {
    precondition(
        gradient.count == x.count,
        "checkDirectionalDerivative: gradient has \(gradient.count) entries, input \(x.count)")
    let span = range ?? 0..<x.count
    precondition(
        span.lowerBound >= 0 && span.upperBound <= x.count && !span.isEmpty,
        "checkDirectionalDerivative: range \(span) outside 0..<\(x.count) or empty")
    var d: [Double]
    if let direction {
        precondition(
            direction.count == x.count,
            "checkDirectionalDerivative: direction has \(direction.count) entries, input \(x.count)"
        )
        d = direction.map { Double($0) }
    } else {
        var rng = SeededRNG(seed: options.seed ^ 0xD1EC_7100_0000_0003)
        d = [Double](repeating: 0, count: x.count)
        for i in span { d[i] = rng.nextGaussian() }
        let largest = span.map { abs(d[$0]) }.max() ?? 1
        if largest > 0 { for i in span { d[i] /= largest } }
    }
    let scale = max(1, span.map { abs(Double(x[$0])) }.max() ?? 1)
    let h = options.step * scale

    // One central difference with step h: (numeric, analytic). Perturb only where d ≠ 0 so
    // untouched coordinates stay bit-identical, and take ⟨g, d⟩ over the step actually taken
    // after rounding x ± h·d to Float, so the rounding of small d_i cannot look like a gradient
    // error.
    func central(_ h: Double) -> (numeric: Double, analytic: Double) {
        var plus = x
        var minus = x
        var analytic = 0.0
        for i in 0..<x.count where d[i] != 0 {
            plus[i] = Float(Double(x[i]) + h * d[i])
            minus[i] = Float(Double(x[i]) - h * d[i])
            analytic += Double(gradient[i]) * (Double(plus[i]) - Double(minus[i])) / (2 * h)
        }
        return ((loss(plus) - loss(minus)) / (2 * h), analytic)
    }
    let numeric: Double
    let analytic: Double
    if options.extrapolate {
        let (coarse, fine) = (central(h), central(h / 2))
        numeric = (4 * fine.numeric - coarse.numeric) / 3
        analytic = (4 * fine.analytic - coarse.analytic) / 3
    } else {
        (numeric, analytic) = central(h)
    }
    let absolute = abs(numeric - analytic)
    let relative = absolute / max(options.relativeFloor, abs(numeric) + abs(analytic))
    let passed =
        numeric.isFinite && analytic.isFinite
        && (relative <= options.relativeTolerance || absolute <= options.absoluteTolerance)
    return DirectionalCheckResult(
        numeric: numeric, analytic: analytic, absoluteError: absolute, relativeError: relative,
        step: h, passed: passed)
}

/// `checkDirectionalDerivative` that records a test failure naming `name`.
@discardableResult
public func expectDirectionalDerivative(
    loss: ([Float]) -> Double, at x: [Float], gradient: [Float], over range: Range<Int>? = nil,
    direction: [Float]? = nil, options: GradientCheckOptions = .init(), name: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> DirectionalCheckResult {
    let result = checkDirectionalDerivative(
        loss: loss, at: x, gradient: gradient, over: range, direction: direction, options: options)
    if !result.passed {
        Issue.record(Comment(rawValue: "\(name): \(result)"), sourceLocation: sourceLocation)
    }
    return result
}

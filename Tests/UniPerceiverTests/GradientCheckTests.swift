import Kernels
import TestSupport
import Testing
@testable import UniPerceiver

/// Finite differences of the whole model's loss (house style §6 tier 1), along random directions
/// of all parameters at once and of each parameter tensor alone.
@Suite struct ModelGradientCheckTests {
    @Test("directional derivative along all parameters", arguments: TaskKind.allCases)
    func allParameters(task: TaskKind) throws {
        let model = randomizedModel(seed: 11, logScales: fdLogScales)
        let batch = randomBatch(task, seed: 5)
        let (_, gradient) = try model.lossAndGradient(batch)
        for seed in 0..<3 as Range<UInt64> {
            expectModelDirectionalDerivative(
                model: model, batch: batch, gradient: gradient, seed: seed,
                name: "\(task.rawValue) all parameters, seed \(seed)")
        }
    }

    @Test("directional derivative of each parameter tensor", arguments: TaskKind.allCases)
    func eachTensor(task: TaskKind) throws {
        let model = randomizedModel(seed: 12, logScales: fdLogScales)
        let batch = randomBatch(task, seed: 6)
        let (_, gradient) = try model.lossAndGradient(batch)
        var nonZero = 0
        for entry in model.table.entries {
            let result = expectModelDirectionalDerivative(
                model: model, batch: batch, gradient: gradient, over: entry.range, seed: 3,
                name: "\(task.rawValue) \(entry.name)")
            if abs(result.analytic) > 1e-3 { nonZero += 1 }
        }
        // The check must be exercising real gradients, not comparing zeros.
        #expect(nonZero > model.table.entries.count / 2, "only \(nonZero) tensors had a non-trivial derivative")
    }

    /// Dropping the gradient that flows through the encoded targets (a real bug the spec warns
    /// about) must make the check fail: the check is able to fail.
    @Test("the check fails when the target-side backward is dropped", arguments: TaskKind.allCases)
    func droppedTermIsCaught(task: TaskKind) throws {
        let model = randomizedModel(seed: 13, logScales: fdLogScales)
        let batch = randomBatch(task, seed: 7)
        let pass = try model.forward(batch)
        var broken = [Float](repeating: 0, count: model.parameters.count)
        model.backward(pass, into: &broken, ablation: .detachTargets)
        let result = modelDirectionalCheck(model: model, batch: batch, gradient: broken, seed: 1)
        #expect(!result.passed, "a backward without the target encoding passed: \(result)")
    }

    @Test("backward accumulates: twice equals two times once")
    func accumulates() throws {
        let model = randomizedModel(seed: 14)
        let pass = try model.forward(randomBatch(.captioning, seed: 8))
        var once = [Float](repeating: 0, count: model.parameters.count)
        model.backward(pass, into: &once)
        var twice = once
        model.backward(pass, into: &twice)
        expectClose(twice, once.map { 2 * $0 }, rtol: 1e-6, atol: 1e-6)
    }
}

func lossAt(_ parameters: [Float], model: Model, batch: Batch) -> Double {
    var copy = model
    copy.parameters = parameters
    return try! copy.loss(batch)
}

/// Logit scales e¹ for the finite-difference tests: the loss stays smooth enough for a step that
/// Float32 round-off cannot swamp. The clamped scale (exp(s) > 100) is covered by the fixtures.
let fdLogScales: [Float] = [1, 1, 1, 1]

/// The directional derivative of the model loss along a seeded Gaussian direction (zero outside
/// `range`, largest entry 1), by central differences with Richardson extrapolation:
/// `D = (4·D(h/2) − D(h)) / 3` cancels the h² term. The scaled-cosine logits (scale up to 100)
/// make the loss strongly curved, so a plain central difference needs a step so small that
/// Float32 round-off of the loss (~1e-6) dominates; extrapolation allows h = 1e-2.
func modelDirectionalCheck(
    model: Model, batch: Batch, gradient: [Float], over range: Range<Int>? = nil, seed: UInt64
) -> (numeric: Double, analytic: Double, relative: Double, absolute: Double, passed: Bool) {
    let x = model.parameters
    let span = range ?? 0..<x.count
    var rng = SeededRNG(seed: seed ^ 0xD1EC_7100)
    var d = [Double](repeating: 0, count: x.count)
    for i in span { d[i] = rng.nextGaussian() }
    let largest = span.map { abs(d[$0]) }.max() ?? 1
    for i in span { d[i] /= largest }
    func central(_ h: Double) -> Double {
        var plus = x
        var minus = x
        for i in span {
            plus[i] = Float(Double(x[i]) + h * d[i])
            minus[i] = Float(Double(x[i]) - h * d[i])
        }
        return (lossAt(plus, model: model, batch: batch) - lossAt(minus, model: model, batch: batch)) / (2 * h)
    }
    let h = 2e-2
    let numeric = (4 * central(h / 2) - central(h)) / 3
    var analytic = 0.0
    for i in span { analytic += Double(gradient[i]) * d[i] }
    let absolute = abs(numeric - analytic)
    let relative = absolute / max(Tolerance.finiteDifferenceRelativeFloor, abs(numeric) + abs(analytic))
    let passed = relative <= Tolerance.finiteDifferenceRelative || absolute <= Tolerance.finiteDifferenceAbsolute
    return (numeric, analytic, relative, absolute, passed)
}

/// `modelDirectionalCheck` that records a failure naming `name`.
@discardableResult
func expectModelDirectionalDerivative(
    model: Model, batch: Batch, gradient: [Float], over range: Range<Int>? = nil, seed: UInt64,
    name: String, sourceLocation: SourceLocation = #_sourceLocation
) -> (numeric: Double, analytic: Double, relative: Double, absolute: Double, passed: Bool) {
    let r = modelDirectionalCheck(model: model, batch: batch, gradient: gradient, over: range, seed: seed)
    if !r.passed {
        Issue.record(
            Comment(rawValue: "\(name): numeric \(r.numeric), analytic \(r.analytic), rel \(r.relative), abs \(r.absolute)"),
            sourceLocation: sourceLocation)
    }
    return r
}

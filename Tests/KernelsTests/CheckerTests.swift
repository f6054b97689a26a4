import Foundation
import Kernels
import TestSupport
import Testing

/// The test helpers must be able to fail: a checker that always passes proves nothing.
@Suite("TestSupport checkers can fail")
struct CheckerTests {
    // MARK: Finite differences catch a dropped backward term

    /// LayerNorm's input gradient written inline, optionally without the `x̂ · mean(g ⊙ x̂)` term
    /// (the term that carries the variance's dependence on x).
    static func layerNormInputGradient(
        x: [Float], w: [Float], dy: [Float], rows: Int, cols: Int, dropVarianceTerm: Bool
    ) -> [Float] {
        var dx = zeros(x.count)
        for r in 0..<rows {
            let row = Array(x[(r * cols)..<((r + 1) * cols)])
            let mean = row.map(Double.init).reduce(0, +) / Double(cols)
            let variance =
                row.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(cols)
            let rstd = 1 / (variance + 1e-5).squareRoot()
            let xHat = row.map { (Double($0) - mean) * rstd }
            let g = (0..<cols).map { Double(dy[r * cols + $0]) * Double(w[$0]) }
            let meanG = g.reduce(0, +) / Double(cols)
            let meanGX = zip(g, xHat).map { $0 * $1 }.reduce(0, +) / Double(cols)
            for c in 0..<cols {
                let varianceTerm = dropVarianceTerm ? 0 : xHat[c] * meanGX
                dx[r * cols + c] = Float(rstd * (g[c] - meanG - varianceTerm))
            }
        }
        return dx
    }

    @Test func droppedLayerNormTermFails() throws {
        let (rows, cols) = (3, 8)
        var rng = SeededRNG(seed: 51)
        let x = layerNormInput(rows: rows, cols: cols, rng: &rng)
        let w = rng.uniformFloats(count: cols, in: 0.5...1.5)
        let b = rng.uniformFloats(count: cols)
        func check(dropVarianceTerm: Bool) -> GradientCheckResult {
            checkGradient(at: x) { x in
                layerNorm(x: x, w: w, b: b, rows: rows, cols: cols).y
            } backward: { x, dy in
                Self.layerNormInputGradient(
                    x: x, w: w, dy: dy, rows: rows, cols: cols, dropVarianceTerm: dropVarianceTerm)
            }
        }
        let correct = check(dropVarianceTerm: false)
        #expect(correct.passed, "the inline backward with every term should pass: \(correct)")
        let broken = check(dropVarianceTerm: true)
        #expect(!broken.passed, "dropping x̂·mean(g ⊙ x̂) must fail the check")
        #expect(broken.maxRelativeError > 0.1, "and by a wide margin, not by noise: \(broken)")
        #expect(broken.failingCount > rows * cols / 2, "most coordinates should fail: \(broken)")
        let worst = try #require(broken.worst)
        #expect(!worst.passed && worst.index >= 0 && worst.index < x.count)

        // The recording wrapper turns the same failure into a test issue.
        withKnownIssue("expectGradient must record a failure for the broken backward") {
            expectGradient(at: x, name: "broken layernorm dx") { x in
                layerNorm(x: x, w: w, b: b, rows: rows, cols: cols).y
            } backward: { x, dy in
                Self.layerNormInputGradient(
                    x: x, w: w, dy: dy, rows: rows, cols: cols, dropVarianceTerm: true)
            }
        }
    }

    /// An error that a constant upstream (`.sum()` / `.mean()` seeding) cannot see: swapping two
    /// outputs' gradients. The random upstream of `checkGradient(at:forward:backward:)` catches it.
    @Test func randomUpstreamCatchesSwappedOutputs() {
        var rng = SeededRNG(seed: 52)
        let x = rng.uniformFloats(count: 6, in: -2...2)
        // f(x)_i = x_i² ; the broken backward uses upstream of the neighbouring output.
        let result = checkGradient(at: x) { x in
            x.map { $0 * $0 }
        } backward: { x, dy in
            x.indices.map { i in 2 * x[i] * dy[i ^ 1] }
        }
        #expect(!result.passed, "swapped upstream entries must fail: \(result)")
        let sumSeeded = checkGradient(
            of: { x in x.map { $0 * $0 } }, at: x, upstream: [Float](repeating: 1, count: 6),
            analytic: x.indices.map { i in 2 * x[i] * 1 })
        #expect(sumSeeded.passed, "with an all-ones upstream the same swap is invisible")
    }

    @Test func sparseCoordinatesOnLargeInputs() {
        var rng = SeededRNG(seed: 53)
        let x = rng.uniformFloats(count: 1000)
        let result = checkGradient(at: x) { x in
            x.map { 3 * $0 }
        } backward: { _, dy in
            dy.map { 3 * $0 }
        }
        #expect(result.passed)
        #expect(result.entries.count == Tolerance.finiteDifferenceCoordinates)
        #expect(Set(result.entries.map(\.index)).count == result.entries.count)
        let small = checkGradient(at: Array(x.prefix(10))) { x in
            x.map { 3 * $0 }
        } backward: { _, dy in
            dy.map { 3 * $0 }
        }
        #expect(
            small.entries.map(\.index) == Array(0..<10),
            "small inputs are checked at every coordinate")
    }

    // MARK: Directional derivative

    /// A scalar loss `L(x) = Σ_i c_i · x_i³ / 3` with gradient `c ⊙ x²`.
    @Test func directionalDerivative() {
        var rng = SeededRNG(seed: 54)
        let x = rng.uniformFloats(count: 40, in: -2...2)
        let c = rng.uniformFloats(count: 40, in: 0.5...1.5)
        let loss: ([Float]) -> Double = { x in
            zip(x, c).map { Double($1) * pow(Double($0), 3) / 3 }.reduce(0, +)
        }
        let gradient = zip(x, c).map { $1 * $0 * $0 }
        let good = checkDirectionalDerivative(loss: loss, at: x, gradient: gradient)
        #expect(good.passed, "\(good)")
        #expect(good.relativeError < 1e-4, "a Double loss should agree closely: \(good)")

        // Richardson extrapolation removes the h² term: far closer at a large step.
        let coarse = GradientCheckOptions(step: 5e-2)
        let plain = checkDirectionalDerivative(
            loss: loss, at: x, gradient: gradient, options: coarse)
        var extrapolated = coarse
        extrapolated.extrapolate = true
        let richardson = checkDirectionalDerivative(
            loss: loss, at: x, gradient: gradient, options: extrapolated)
        #expect(
            richardson.absoluteError < plain.absoluteError / 100,
            "plain \(plain), extrapolated \(richardson)")
        let coordinates = checkGradient(
            ofScalar: loss, at: x, analytic: gradient, options: extrapolated)
        #expect(coordinates.passed && coordinates.maxAbsoluteError < 1e-6, "\(coordinates)")

        // Wrong gradient on coordinates 30..<40 only.
        var wrong = gradient
        for i in 30..<40 { wrong[i] *= 1.5 }
        #expect(
            checkDirectionalDerivative(loss: loss, at: x, gradient: wrong, over: 0..<30).passed,
            "a range that avoids the wrong slice passes")
        let caught = checkDirectionalDerivative(loss: loss, at: x, gradient: wrong, over: 30..<40)
        #expect(!caught.passed, "the wrong slice is caught: \(caught)")
        withKnownIssue("expectDirectionalDerivative records the failure") {
            expectDirectionalDerivative(
                loss: loss, at: x, gradient: wrong, over: 30..<40, name: "wrong slice")
        }
    }

    // MARK: expectClose and relativeError

    @Test func expectCloseFailsOnValuesShapesAndNaN() {
        let reference: [Double] = [1, 2, 3, 4, 5, 6]
        #expect(
            expectClose([Float(1), 2, 3, 4, 5, 6], reference, shape: [2, 3], tolerance: .kernel))

        let values = closeness(
            [Float(1), 2, 3.01, 4, 5, 6], reference, shape: [2, 3], rtol: 1e-5, atol: 1e-6)
        #expect(!values.passed && values.failing == 1 && values.worstIndex == 2)
        #expect(abs(values.maxAbsoluteError - 0.01) < 1e-6)
        #expect(values.firstPairs.count == 5)
        #expect(values.description.contains("[0, 2]"), "the worst element's multi-index: \(values)")

        let shape = closeness(
            Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6]),
            DoubleTensor(shape: [2, 3], data: reference),
            rtol: 1, atol: 1)
        #expect(shape.shapeMismatch != nil, "same values, other shape must fail first")
        #expect(
            closeness([Float](repeating: 0, count: 5), reference, rtol: 1, atol: 1).shapeMismatch
                != nil)

        let nan = closeness([Float(1), .nan, 3, 4, 5, 6], reference, rtol: 1, atol: 1)
        #expect(
            !nan.passed && nan.worstIndex == 1 && nan.nonFinite == 1,
            "NaN never passes, whatever the tolerance")
        #expect(nan.maxAbsoluteError == 0, "the finite elements all match")
        #expect(closeness([Float.infinity], [Double.infinity], rtol: 0, atol: 0).passed)
        #expect(!closeness([Float.infinity], [-Double.infinity], rtol: 0, atol: 0).passed)

        withKnownIssue("expectClose records a failure") {
            expectClose(
                [Float(1), 2, 3.01, 4, 5, 6], reference, tolerance: .kernel, "deliberate mismatch")
        }
        withKnownIssue("expectClose records a shape mismatch") {
            expectClose(
                Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6]),
                DoubleTensor(shape: [2, 3], data: reference),
                rtol: 1, atol: 1)
        }
    }

    @Test func relativeErrorOfWholeTensors() {
        #expect(relativeError([Float(3), 4], [Double(3), 4]) == 0)
        // ‖(0.03, 0.04)‖ / ‖(3, 4)‖ = 0.05 / 5
        #expect(abs(relativeError([Float(3.03), 4.04], [Double(3), 4]) - 0.01) < 1e-6)
        #expect(relativeError([Float(0), 0], [Double(0), 0]) == 0)
        let ok = expectRelativeError(
            [Float(3.0001), 4], [Double(3), 4], atMost: 1e-4, name: "close")
        #expect(ok < 1e-4)
        withKnownIssue("expectRelativeError records a failure") {
            expectRelativeError(
                [Float(3.03), 4.04], [Double(3), 4], atMost: 1e-4, name: "deliberate")
        }
        withKnownIssue("a NaN relative error fails") {
            expectRelativeError([Float.nan, 4], [Double(3), 4], atMost: 1, name: "nan")
        }
    }

    // MARK: Fixtures

    @Test func missingFixtureNamesFileAndCommand() {
        #expect(
            fixtureURL("kernels.safetensors").path.hasSuffix(
                "Tests/KernelsTests/Fixtures/kernels.safetensors"))
        do {
            _ = try loadFixture("no-such-fixture.safetensors")
            Issue.record("loading a missing fixture must throw")
        } catch {
            #expect(error.description.contains("no-such-fixture.safetensors"))
            #expect(error.description.contains(regenerateFixturesCommand))
        }
        do {
            _ = try loadFixture("kernels.safetensors", requiredMetadata: ["fixture_version": "999"])
            Issue.record("a fixture version mismatch must throw")
        } catch {
            #expect(error.description.contains("fixture_version"))
            #expect(error.description.contains(regenerateFixturesCommand))
        }
    }

    @Test func randomTensorsAreSeeded() {
        #expect(Tensor.uniform([3, 4], seed: 5) == Tensor.uniform([3, 4], seed: 5))
        #expect(Tensor.uniform([3, 4], seed: 5) != Tensor.uniform([3, 4], seed: 6))
        let g = Tensor.gaussian([2, 5], mean: 1, std: 0.5, seed: 7)
        var rng = SeededRNG(seed: 7)
        #expect(
            g.data == (0..<10).map { _ in Float(1 + 0.5 * rng.nextGaussian()) }, "documented stream"
        )
        let u = Tensor.uniform([1000], in: -3...2, seed: 8)
        #expect(u.data.allSatisfy { $0 >= -3 && $0 <= 2 })
    }
}

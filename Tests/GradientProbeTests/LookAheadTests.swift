import Datasets
import Foundation
import Interference
import Testing
import Training
import UniPerceiver

@testable import GradientProbe

/// The exact look-ahead (issue 5 item 4) on the tiny probe fixture: with a small λ the measured loss
/// changes follow the first-order prediction, with a large λ curvature takes over, and the check
/// refuses inputs it cannot trust.
@Suite(.serialized) struct LookAheadTests {
    /// Probes with stored rows (N = 4, B = 4, three tasks) and returns the fixture, the probe file
    /// and its first-order analysis by layer.
    static func probed(model: Model = ProbeFixture.model(), store: Bool = true) throws
        -> (ProbeFixture, URL, InterferenceAnalysis)
    {
        let fixture = try ProbeFixture(model: model)
        try fixture.probe("probe.h5", ProbeFixture.options(storeGradients: store))
        let url = fixture.file("probe.h5")
        let analysis = try ProbeGrams(url: url).analyze(grouping: .layer, bootstrapReplicates: 0, seed: 0)
        return (fixture, url, analysis)
    }

    static func check(
        _ analysis: InterferenceAnalysis, _ fixture: ProbeFixture, _ url: URL, stepSize: Double,
        method: LookAheadMethod = .difference
    ) throws -> InterferenceAnalysis {
        try ExactLookAhead.check(
            analysis, probe: url, checkpoint: fixture.checkpoint, data: ProbeFixture.dataURL,
            options: LookAheadOptions(stepSize: stepSize, lossSamples: 3, stepSamples: 3, seed: 2, method: method))
    }

    /// The integral method computes the same actual change: at a λ where the two losses' round-off
    /// is negligible it equals the difference (this checks the quadrature: first order alone misses
    /// the curvature there), and at a λ where the difference is mostly round-off it follows the
    /// first-order prediction 20× more closely.
    @Test func integralEqualsTheDifferenceAndStaysAccurateAtTinySteps() throws {
        let (fixture, url, analysis) = try Self.probed()
        defer { fixture.remove() }
        let byDifference = try Self.check(analysis, fixture, url, stepSize: 0.1)
        let byIntegral = try Self.check(analysis, fixture, url, stepSize: 0.1, method: .integral)
        let tiny = try Self.check(analysis, fixture, url, stepSize: 1e-4, method: .integral)
        let tinyDifference = try Self.check(analysis, fixture, url, stepSize: 1e-4)
        for k in analysis.groups.indices {
            let d = try #require(byDifference.groups[k].lookAhead)
            let i = try #require(byIntegral.groups[k].lookAhead)
            #expect(i.method == .integral && d.method == .difference)
            var gap = 0.0
            var curvature = 0.0
            var scale = 0.0
            for (e, (f, o)) in zip(d.exactChanges, zip(i.exactChanges, i.firstOrderChanges)) {
                gap += (e.lossChange - f.lossChange) * (e.lossChange - f.lossChange)
                curvature += (e.lossChange - o.lossChange) * (e.lossChange - o.lossChange)
                scale += e.lossChange * e.lossChange
            }
            let name = analysis.groups[k].name
            #expect(curvature.squareRoot() > 1e-3 * scale.squareRoot(), "\(name): λ = 0.1 must show curvature")
            // Measured 2e-5 (the two losses' round-off at this λ); curvature is 0.19–0.29.
            #expect(gap.squareRoot() < 2e-4 * scale.squareRoot(), "\(name): integral vs difference \(gap.squareRoot() / scale.squareRoot())")
            let t = try #require(tiny.groups[k].lookAhead)
            let td = try #require(tinyDifference.groups[k].lookAhead)
            // Measured 3–4e-4 for the integral, 7e-3 for the difference.
            #expect(t.lossChangeRelativeDifference < 3e-3, "\(name): \(t.lossChangeRelativeDifference)")
            #expect(t.lossChangeRelativeDifference < td.lossChangeRelativeDifference, "\(name): the integral is the better-conditioned one")
        }
    }

    @Test func smallStepAgreesWithFirstOrderAndLargeStepDoesNot() throws {
        let (fixture, url, analysis) = try Self.probed()
        defer { fixture.remove() }
        let small = try Self.check(analysis, fixture, url, stepSize: 1e-3)
        let large = try Self.check(analysis, fixture, url, stepSize: 3)
        #expect(small.groups.count == 2)
        for (s, l) in zip(small.groups, large.groups) {
            let a = try #require(s.lookAhead)
            let b = try #require(l.lookAhead)
            #expect(a.pairCount == 3 * 3 * 3 * 3)
            // The measured changes are real (not all zero) and agree with λ·⟨ĝ_j, g_i⟩ within 10 %.
            #expect(a.exactChanges.contains { $0.lossChange != 0 })
            #expect(a.lossChangeRelativeDifference < 0.1, "\(s.name): \(a.lossChangeRelativeDifference)")
            #expect(a.offDiagonalRelativeDifference < 0.1, "\(s.name): \(a.offDiagonalRelativeDifference)")
            // The same pairs, and first-order values that scale with λ exactly.
            #expect(zip(a.firstOrderChanges, b.firstOrderChanges).allSatisfy {
                $0.samePair(as: $1) && abs($1.lossChange - 3000 * $0.lossChange) <= 1e-9 * abs($1.lossChange)
            })
            // A step of length 3 leaves the linear regime: the check can fail.
            #expect(b.lossChangeRelativeDifference > 0.1, "\(l.name): \(b.lossChangeRelativeDifference)")
            // The analysis itself is untouched.
            #expect(s.interference == analysis.group(named: s.name)!.interference)
        }
    }

    @Test func moeGateNoiseIsReproducedForBothEvaluations() throws {
        // Attribute routing with training noise: the rebuilt mini-batch must reproduce the probe's
        // loss (checked inside, `.notReproduced` otherwise), and the step alone makes the difference.
        var config = ProbeFixture.config
        config.routing = .attribute
        config.numExperts = 2
        config.topK = 2
        let model = try Model(config: config, seed: 3)
        let (fixture, url, analysis) = try Self.probed(model: model)
        defer { fixture.remove() }
        let small = try Self.check(analysis, fixture, url, stepSize: 1e-3)
        for g in small.groups {
            let c = try #require(g.lookAhead)
            #expect(c.lossChangeRelativeDifference < 0.1, "\(g.name): \(c.lossChangeRelativeDifference)")
        }
        // Evaluating without the probe's noise gives another loss: the noise matters here.
        let evaluator = try LossEvaluator(
            probe: url, contents: try ProbeFile.read(url, grams: false), model: model,
            dataset: ProbeFixture.dataset)
        let noisy = try evaluator.loss(task: 0, miniBatch: 1)
        let clean = try model.forward(evaluator.plan.batch(1, dataset: ProbeFixture.dataset)).loss
        #expect(noisy != clean)
    }

    @Test func refusesWhatItCannotTrust() throws {
        let (fixture, url, analysis) = try Self.probed(store: false)
        defer { fixture.remove() }
        #expect(throws: ProbeError.self) { try Self.check(analysis, fixture, url, stepSize: 1e-3) }
        do {
            _ = try Self.check(analysis, fixture, url, stepSize: 1e-3)
        } catch let error as ProbeError {
            guard case .noStoredGradients(let file, _) = error else {
                Issue.record("expected noStoredGradients, got \(error)")
                return
            }
            #expect(file == url.path)
        }
        for bad in [0, -1e-3, .nan, .infinity] {
            #expect(throws: ProbeError.self) { try Self.check(analysis, fixture, url, stepSize: bad) }
        }
        // A finite λ so large that the stepped loss overflows is refused, not reported as a number
        // (nor, before the softmax let NaN through, a crash).
        let (stored, storedURL, storedAnalysis) = try Self.probed()
        defer { stored.remove() }
        for method in [LookAheadMethod.difference, .integral] {
            do {
                _ = try Self.check(storedAnalysis, stored, storedURL, stepSize: 1e30, method: method)
                Issue.record("\(method): λ = 1e30 gave a look-ahead")
            } catch {
                #expect("\(error)".contains("non-finite") && "\(error)".contains("smaller λ"), "\(method): \(error)")
            }
            // …and one that moves no Float32 weight is refused, not reported as 0/0.
            do {
                _ = try Self.check(storedAnalysis, stored, storedURL, stepSize: 2 * .leastNonzeroMagnitude, method: method)
                Issue.record("\(method): λ = 1e-323 gave a look-ahead")
            } catch {
                #expect("\(error)".contains("moves no Float32 weight") && "\(error)".contains("larger λ"), "\(method): \(error)")
            }
        }
        // A λ that moves a few weights (those at 0) but no Float32 loss would leave every ratio
        // undefined: refused, pointing to the integral method. The integral still measures it.
        do {
            _ = try Self.check(storedAnalysis, stored, storedURL, stepSize: 1e-30, method: .difference)
            Issue.record("difference: λ = 1e-30 gave a look-ahead")
        } catch {
            #expect("\(error)".contains("no task's loss changes") && "\(error)".contains("--lookahead-method integral"), "\(error)")
        }
        let tiny = try Self.check(storedAnalysis, stored, storedURL, stepSize: 1e-30, method: .integral)
        #expect(tiny.groups.allSatisfy { $0.lookAhead?.exact.values.joined().contains { $0.isFinite } ?? false })
        // A checkpoint other than the probed one is named.
        let (other, otherURL, otherAnalysis) = try Self.probed(model: ProbeFixture.model(seed: 12))
        defer { other.remove() }
        #expect(
            throws: ProbeError.sourceMismatch(file: fixture.checkpoint.path, probe: otherURL.path, what: "checkpoint")
        ) {
            try ExactLookAhead.check(
                otherAnalysis, probe: otherURL, checkpoint: fixture.checkpoint, data: ProbeFixture.dataURL,
                options: LookAheadOptions(stepSize: 1e-3))
        }
    }
}

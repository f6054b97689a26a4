import Foundation
import Kernels
import Testing
import TestSupport
import Training
import UniPerceiver

/// AdamW against hand-computed values, the schedule, clipping and the task sampler.
@Suite struct OptimizerTests {
    static let config = ModelConfig(
        hiddenSize: 8, numLayers: 1, numHeads: 2, ffnSize: 16, imageSize: 4, patchSize: 2,
        channels: 1, vocabSize: 10, maxTextLength: 4)

    @Test("weight decay by name: Linear weights decay; biases, norms, embeddings, logit scales and γ do not")
    func decayGroups() {
        let table = Model.parameterTable(for: Self.config)
        let decayed = Set(table.entries.filter { AdamW.decays(parameterNamed: $0.name) }.map(\.name))
        #expect(
            decayed == [
                "video_embed.embeddings.weight",
                "encoder.layers.0.attention.self.qkv_proj.weight",
                "encoder.layers.0.attention.output.dense.weight",
                "encoder.layers.0.ffn.dense.weight",
                "encoder.layers.0.ffn.dense2.weight",
                "predictor.proj.weight",
            ])
        for name in [
            "token_embed.embeddings.weight", "token_embed.embeddings_pos.position_embeddings.weight",
            "token_embed.embeddings_token_type.weight", "token_embed.embeddings_norm.weight",
            "video_embed.embeddings_st_pos.temporal_pos_embed", "encoder.layers.0.LayerNormModules.1.weight",
            "encoder.layers.0.ffn_output.residual_scale", "predictor.logit_scale_caption", "predictor.ln_post.weight",
            "encoder.layers.0.ffn.dense.bias",
        ] {
            #expect(!AdamW.decays(parameterNamed: name), "\(name) must not decay")
        }
        #expect(AdamW.decays(parameterNamed: "encoder.layers.3.ffn.dense2.experts.5.weight"))
        // The release's gates are an optimiser group of their own with weight decay 0 (§5.2).
        for name in [
            "encoder.layers.0.ffn.dense.gate.wg.weight", "encoder.layers.0.attention.self.qkv_proj.gate.tag_transform.0.weight",
            "encoder.layers.1.ffn.dense.gate.embedding.weight",
        ] {
            #expect(!AdamW.decays(parameterNamed: name), "\(name) must not decay")
        }
    }

    /// torch.optim.AdamW's update, written out in Double for two steps.
    func reference(p0: Double, g1: Double, g2: Double, lr: Double, decay: Bool) -> (Double, Double) {
        let (b1, b2, eps, wd) = (0.9, 0.95, 1e-6, 0.05)
        var p = p0
        var m = 0.0
        var v = 0.0
        var results: [Double] = []
        for (t, g) in [(1.0, g1), (2.0, g2)] {
            if decay { p *= 1 - lr * wd }
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr / (1 - pow(b1, t)) * m / (v.squareRoot() / (1 - pow(b2, t)).squareRoot() + eps)
            results.append(p)
        }
        return (results[0], results[1])
    }

    @Test("two AdamW steps match the hand-computed update, with and without decay")
    func adamSteps() {
        let table = Model.parameterTable(for: Self.config)
        let decayed = table.entry(named: "encoder.layers.0.ffn.dense.weight")!.offset
        let plain = table.entry(named: "encoder.layers.0.ffn.dense.bias")!.offset
        var parameters = [Float](repeating: 0.5, count: table.totalCount)
        parameters[decayed] = 0.75
        parameters[plain] = -0.25
        var g1 = [Float](repeating: 0, count: table.totalCount)
        var g2 = g1
        g1[decayed] = 0.2
        g2[decayed] = -0.05
        g1[plain] = -0.3
        g2[plain] = 0.01
        var adam = AdamW(table: table)
        let lr = 0.01
        adam.update(parameters: &parameters, gradient: g1, learningRate: lr)
        let afterOne = parameters
        adam.update(parameters: &parameters, gradient: g2, learningRate: lr)
        #expect(adam.step == 2)
        for (offset, p0, a, b, decay) in [
            (decayed, 0.75, 0.2, -0.05, true), (plain, -0.25, -0.3, 0.01, false),
        ] {
            let (r1, r2) = reference(p0: p0, g1: a, g2: b, lr: lr, decay: decay)
            #expect(abs(Double(afterOne[offset]) - r1) < 1e-6, "step 1 at \(offset): \(afterOne[offset]) vs \(r1)")
            #expect(abs(Double(parameters[offset]) - r2) < 1e-6, "step 2 at \(offset): \(parameters[offset]) vs \(r2)")
        }
        // A zero gradient moves a non-decayed parameter not at all and shrinks a decayed one.
        let untouchedPlain = table.entry(named: "predictor.ln_post.bias")!.offset
        let untouchedDecayed = table.entry(named: "predictor.proj.weight")!.offset
        #expect(parameters[untouchedPlain] == 0.5)
        #expect(abs(Double(parameters[untouchedDecayed]) - 0.5 * (1 - lr * 0.05) * (1 - lr * 0.05)) < 1e-7)
    }

    @Test("warm-up rises linearly to the peak, the cosine ends exactly at the floor")
    func schedule() {
        let s = LearningRateSchedule(peak: 1e-3, floor: 1e-5, warmupSteps: 10, totalSteps: 111)
        #expect(abs(s.rate(atStep: 0) - 1e-4) < 1e-15)
        #expect(abs(s.rate(atStep: 4) - 5e-4) < 1e-15)
        #expect(abs(s.rate(atStep: 9) - 1e-3) < 1e-15)
        #expect(abs(s.rate(atStep: 10) - 1e-3) < 1e-15)
        #expect(abs(s.rate(atStep: 60) - (1e-5 + (1e-3 - 1e-5) / 2)) < 1e-15)
        #expect(abs(s.rate(atStep: 110) - 1e-5) < 1e-15)
        #expect(abs(s.rate(atStep: 500) - 1e-5) < 1e-15)
        for step in 10..<110 { #expect(s.rate(atStep: step) >= s.rate(atStep: step + 1)) }
        let noWarmup = LearningRateSchedule(peak: 2, floor: 0, warmupSteps: 0, totalSteps: 3)
        for (step, expected) in [(0, 2.0), (1, 1.0), (2, 0.0)] {
            #expect(abs(noWarmup.rate(atStep: step) - expected) < 1e-12)
        }
    }

    @Test("clipping scales to the max norm like torch, leaves small and non-finite gradients alone")
    func clipping() {
        var g: [Float] = [3, 4]
        let norm = clipGradientNorm(&g, maxNorm: 1)
        #expect(norm == 5)
        #expect(abs(Double(g[0]) - 3 / (5 + 1e-6)) < 1e-7 && abs(Double(g[1]) - 4 / (5 + 1e-6)) < 1e-7)
        var small: [Float] = [0.3, -0.4]
        #expect(abs(clipGradientNorm(&small, maxNorm: 1) - 0.5) < 1e-7)
        #expect(small == [0.3, -0.4])
        var bad: [Float] = [1, .nan]
        #expect(clipGradientNorm(&bad, maxNorm: 1).isNaN)
        #expect(bad[0] == 1)
        // An infinite norm exceeds any max: scaling by max / ∞ would zero the finite values and
        // turn the infinite one into NaN, hiding which value overflowed.
        var overflowed: [Float] = [1, .infinity]
        #expect(clipGradientNorm(&overflowed, maxNorm: 1) == .infinity)
        #expect(overflowed == [1, .infinity])
    }

    @Test("tasks are drawn in proportion to their weights, repeatably, never at weight 0")
    func sampler() {
        let tasks = TaskKind.allCases
        let sampler = TaskSampler(tasks: tasks, weights: [1, 2, 0, 5])
        var rng = SeededRNG(seed: 11)
        var counts = [TaskKind: Int]()
        var sequence: [TaskKind] = []
        let draws = 40_000
        for _ in 0..<draws {
            let task = sampler.draw(&rng)
            counts[task, default: 0] += 1
            if sequence.count < 100 { sequence.append(task) }
        }
        #expect(counts[.captioning] == nil)
        for (task, p) in zip(tasks, sampler.probabilities) {
            let f = Double(counts[task] ?? 0) / Double(draws)
            #expect(abs(f - p) < 0.01, "\(task): frequency \(f), probability \(p)")
        }
        var again = SeededRNG(seed: 11)
        #expect((0..<100).map { _ in sampler.draw(&again) } == sequence)
        var other = SeededRNG(seed: 12)
        #expect((0..<100).map { _ in sampler.draw(&other) } != sequence)
    }
}

/// AdamW against `torch.optim.AdamW` (`Fixtures/make_adamw_fixture.py`, written from the spec, not
/// from this code): the decay groups of an MoE model's every tensor, and five steps with a changing
/// learning rate.
@Suite struct AdamWGoldenTests {
    @Test("five steps and the decay groups match torch.optim.AdamW on the attribute MoE's tensors")
    func matchesTorch() throws {
        let fixture = try loadFixture("adamw.safetensors")
        let checkpoint = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("UniPerceiverTests/Fixtures/moe_attribute_tiny.safetensors")
        let model = try Checkpoint.load(checkpoint)
        let table = model.table
        let names = try JSONDecoder().decode([String].self, from: Data((fixture.metadata["names"] ?? "").utf8))
        #expect(Set(names) == Set(table.entries.map(\.name)))
        let decayed = try JSONDecoder().decode([String].self, from: Data((fixture.metadata["decayed"] ?? "").utf8))
        #expect(Set(decayed) == Set(table.entries.map(\.name).filter { AdamW.decays(parameterNamed: $0) }))
        #expect(table.entries.contains { $0.name.contains(".gate.") } && table.entries.contains { $0.name.contains(".experts.") })

        func flat(_ prefix: String) throws -> [Float] {
            var values = [Float](repeating: .nan, count: table.totalCount)
            for entry in table.entries {
                let part = try fixture.floats(prefix + entry.name)
                try #require(part.count == entry.count, "\(prefix)\(entry.name)")
                for (i, v) in zip(entry.range, part) { values[i] = v }
            }
            return values
        }
        func expectNear(_ actual: [Float], _ prefix: String, _ what: String) throws {
            for entry in table.entries {
                let reference = try fixture.doubles(prefix + entry.name).data
                var difference = 0.0
                var norm = 0.0
                for (i, r) in zip(entry.range, reference) {
                    difference += (Double(actual[i]) - r) * (Double(actual[i]) - r)
                    norm += r * r
                }
                #expect(
                    difference.squareRoot() <= Tolerance.adamWRelative * norm.squareRoot(),
                    "\(what) \(entry.name): ‖Δ‖ \(difference.squareRoot()), ‖ref‖ \(norm.squareRoot())")
            }
        }
        let settings = AdamWSettings(beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.05)
        #expect(fixture.metadata["betas"] == "[0.9, 0.95]" && fixture.metadata["eps"] == "1e-06")
        var optimizer = AdamW(table: table, settings: settings)
        var parameters = try flat("param.")
        #expect(parameters == model.parameters, "the fixture starts from the checkpoint's values")
        let rates = try fixture.doubles("lr").data
        for (k, rate) in rates.enumerated() {
            optimizer.update(parameters: &parameters, gradient: try flat("grad.\(k + 1)."), learningRate: rate)
            try expectNear(parameters, "after.\(k + 1).", "step \(k + 1)")
        }
        try expectNear(optimizer.firstMoment, "exp_avg.", "first moment")
        try expectNear(optimizer.secondMoment, "exp_avg_sq.", "second moment")
    }
}

import Kernels
import TestSupport
import Testing

@testable import UniPerceiver

/// `Model.gradient(_:into:)` overwrites a stale buffer and must equal zeroing followed by
/// `backward(_:into:)` bit for bit: merged experts are written by their first merge-backward
/// (overwrite, no read) or zero-filled when no unit chose them, everything else is zeroed first.
/// In a laned pass the dense layers' linear weights are written after the lanes join, first write
/// overwriting (`Encoder.backwardWeights`); `odd` MoE layers put such a dense layer beside a merged one.
/// The stale buffer is all NaN, so any entry left unwritten or read before its first write shows.
@Suite struct GradientOverwriteTests {
    static let routings: [Routing] = [.none, .attribute, .modality, .task, .token, .context]

    @Test("gradient(into:) equals zeroing + backward(into:)", arguments: routings, [TaskKind.imageClassification, .captioning])
    func overwriteEqualsAccumulateFromZero(routing: Routing, task: TaskKind) throws {
        try check(routing: routing, layers: .all, task: task)
    }

    @Test("the same with a dense layer beside a merged MoE layer", arguments: [Routing.attribute, .token], [TaskKind.imageClassification, .mlm])
    func denseBesideMoE(routing: Routing, task: TaskKind) throws {
        try check(routing: routing, layers: .odd, task: task)
    }

    /// `gradient(_:into:zeroed:)` skips zero-filling experts the previous call left zero-filled and
    /// that stay unchosen. Over steps whose choices change (other tasks, other gate noise), each
    /// step's buffer must still equal a fresh `gradient(_:into:)` bit for bit, and the skip must
    /// happen (experts unchosen twice in a row must occur). An expert chosen in one step and not in
    /// the next must be zero-filled again; a stale buffer that wrongly kept it would differ here.
    @Test("gradient(into:zeroed:) over changing choices equals a fresh gradient each step", arguments: [Routing.attribute, .modality])
    func zeroedExpertsAcrossSteps(routing: Routing) throws {
        let model = try Model(config: tinyConfig(routing: routing, layers: .all), seed: 7)
        var reused = [Float](repeating: .nan, count: model.parameters.count)
        var zeroed = Model.ZeroedExperts()
        var previous: Set<Int> = []
        var skipped = 0  // unchosen twice in a row: left as they were
        var rechosen = 0  // zero-filled, then chosen: overwritten by their merge-backward
        var newlyUnchosen = 0  // chosen, then unchosen: zero-filled again
        let steps: [(TaskKind, UInt64)] = [(.imageClassification, 1), (.captioning, 2), (.mlm, 3), (.imageClassification, 4), (.captioning, 5)]
        for (n, (task, seed)) in steps.enumerated() {
            let batch = randomBatch(task, seed: 11 + seed)
            func pass() throws -> ForwardPass { try model.forward(batch, noise: RoutingNoise(seed: 21 + seed), premerged: nil) }
            var fresh = [Float](repeating: .nan, count: model.parameters.count)
            model.gradient(try pass(), into: &fresh)
            model.gradient(try pass(), into: &reused, zeroed: &zeroed)
            let mismatches = model.table.entries.filter { entry in entry.range.contains { reused[$0] != fresh[$0] } }.map(\.name)
            #expect(mismatches.isEmpty, "\(routing), step \(n): \(mismatches.prefix(5)) differ")
            skipped += zeroed.offsets.intersection(previous).count
            rechosen += previous.subtracting(zeroed.offsets).count
            if n > 0 { newlyUnchosen += zeroed.offsets.subtracting(previous).count }
            previous = zeroed.offsets
            #expect(zeroed.offsets.allSatisfy { offset in reused[model.mergedExperts[offset]!.weight].allSatisfy { $0 == 0 } })
            // What the probe skips: exactly those experts' weights and biases, ascending, all zero.
            let expected = zeroed.offsets.flatMap { [model.mergedExperts[$0]!.weight, model.mergedExperts[$0]!.bias] }
            #expect(model.zeroRanges(of: zeroed) == expected.sorted { $0.lowerBound < $1.lowerBound })
            #expect(model.zeroRanges(of: zeroed).allSatisfy { reused[$0].allSatisfy { $0 == 0 } })
        }
        #expect(skipped > 0, "\(routing): no expert stayed unchosen across steps, so the skip was never exercised")
        #expect(rechosen > 0 && newlyUnchosen > 0, "\(routing): choices never changed (\(rechosen) re-chosen, \(newlyUnchosen) newly unchosen)")
    }

    func check(routing: Routing, layers: MoELayers, task: TaskKind) throws {
        let model = try Model(config: tinyConfig(routing: routing, layers: layers), seed: 7)
        let batch = randomBatch(task, seed: 11)
        let noise = routing == .none ? nil : 21 as UInt64
        func pass() throws -> ForwardPass {
            try model.forward(batch, noise: noise.map { RoutingNoise(seed: $0) }, premerged: nil)
        }
        // Token and context routing run one lane; everything else must take the laned path under test.
        #expect(try pass().isLaned == !routing.isDataDependent, "\(routing): laned path not taken as expected")
        var accumulated = [Float](repeating: 0, count: model.parameters.count)
        model.backward(try pass(), into: &accumulated)
        var overwritten = [Float](repeating: .nan, count: model.parameters.count)
        model.gradient(try pass(), into: &overwritten)
        let mismatches = model.table.entries.filter { entry in
            entry.range.contains { overwritten[$0] != accumulated[$0] }
        }.map(\.name)
        #expect(mismatches.isEmpty, "\(routing), \(layers), \(task): \(mismatches.prefix(5)) differ")
        // The test must reach both kinds of merged expert: chosen (overwritten) and unchosen (zero-filled).
        if routing == .attribute {
            let chosen = model.mergedExperts.values.filter { r in accumulated[r.weight].contains { $0 != 0 } }
            #expect(!chosen.isEmpty && chosen.count < model.mergedExperts.count, "\(chosen.count) of \(model.mergedExperts.count) experts chosen")
        }
        #expect(model.mergedExperts.isEmpty == (routing == .none || routing.isDataDependent))
    }
}

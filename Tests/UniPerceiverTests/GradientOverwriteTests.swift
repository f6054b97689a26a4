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

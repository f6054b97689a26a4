import Kernels
import TestSupport
import Testing

@testable import UniPerceiver

/// `Model.gradient(_:into:)` overwrites a stale buffer and must equal zeroing followed by
/// `backward(_:into:)` bit for bit: merged experts are written by their first merge-backward
/// (overwrite, no read) or zero-filled when no unit chose them, everything else is zeroed first.
/// The stale buffer is all NaN, so any entry left unwritten or read before its first write shows.
@Suite struct GradientOverwriteTests {
    static let routings: [Routing] = [.none, .attribute, .modality, .task, .token, .context]

    @Test("gradient(into:) equals zeroing + backward(into:)", arguments: routings, [TaskKind.imageClassification, .captioning])
    func overwriteEqualsAccumulateFromZero(routing: Routing, task: TaskKind) throws {
        var config = tinyConfig
        config.routing = routing
        if routing != .none {
            config.numExperts = 4
            config.topK = 2
        }
        let model = try Model(config: config, seed: 7)
        let batch = randomBatch(task, seed: 11)
        let noise = routing == .none ? nil : 21 as UInt64
        func pass() throws -> ForwardPass {
            try model.forward(batch, noise: noise.map { RoutingNoise(seed: $0) }, premerged: nil)
        }
        var accumulated = [Float](repeating: 0, count: model.parameters.count)
        model.backward(try pass(), into: &accumulated)
        var overwritten = [Float](repeating: .nan, count: model.parameters.count)
        model.gradient(try pass(), into: &overwritten)
        let mismatches = model.table.entries.filter { entry in
            entry.range.contains { overwritten[$0] != accumulated[$0] }
        }.map(\.name)
        #expect(mismatches.isEmpty, "\(routing), \(task): \(mismatches.prefix(5)) differ")
        // The test must reach both kinds of merged expert: chosen (overwritten) and unchosen (zero-filled).
        if routing == .attribute {
            let chosen = model.mergedExperts.values.filter { r in accumulated[r.weight].contains { $0 != 0 } }
            #expect(!chosen.isEmpty && chosen.count < model.mergedExperts.count, "\(chosen.count) of \(model.mergedExperts.count) experts chosen")
        }
        #expect(model.mergedExperts.isEmpty == (routing == .none || routing.isDataDependent))
    }
}

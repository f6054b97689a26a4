import Foundation
import Interference
import Testing

@testable import GradientProbe
@testable import UniPerceiver

/// The routing table a probe pools from its own forward passes (`ProbeSummary.routing`), which
/// `diagnose` and `demo` print as the report's routing section.
struct ProbeRoutingTests {
    @Test("the probe's routing table equals separate forward passes over its mini-batches; a dense probe has none")
    func probeTableMatchesSeparatePasses() throws {
        let model = try ProbeFixture.moeModel()  // attribute, E = 8, top-1, gate noise as in training
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        let options = ProbeFixture.options()
        let table = try #require(try fixture.probe("moe.h5", options).routing)
        #expect(table.routing == "attribute" && table.experts == 8)
        // The same batches and noise, run again without backward (`collect`): equal to the bit.
        let separate = try ProbeRouting.collect(model: model, dataset: ProbeFixture.dataset, options: options)
        #expect(table == ProbeRouting.table(separate, routing: .attribute, experts: 8))
        // The file holds the same table, and the analysis carries it to the interference file.
        let grams = try ProbeGrams(url: fixture.file("moe.h5"))
        #expect(grams.routing == table)
        let analysis = try grams.analyze(grouping: .layer, bootstrapReplicates: 0, seed: 1)
        #expect(analysis.routing == table)
        try InterferenceFile.write(analysis, to: fixture.file("interference.h5"))
        #expect(try InterferenceFile.read(fixture.file("interference.h5")).routing == table)

        // Every MoE layer and decision has a row for every task's input side, in the probe's task order.
        for layer in 0..<2 {
            for decision in ["attention", "ffn"] {
                let rows = table.rows.filter { $0.layer == layer && $0.decision == decision }
                #expect(rows.filter { $0.side == "input" && $0.segment == 0 }.map(\.task) == ProbeFixture.tasks.map(\.rawValue))
                // The same segments counted alike in every layer and decision.
                let first = table.rows.filter { $0.layer == 0 && $0.decision == "attention" }
                #expect(rows.map(\.tokens) == first.map(\.tokens))
            }
        }
        for r in table.rows {
            #expect(r.tokens > 0 && r.weightShare.count == 8)
            #expect(abs(r.weightShare.reduce(0, +) - 1) < 1e-9, "\(r)")
            #expect(r.meanEntropy >= 0 && r.meanEntropy <= log(8.0) + 1e-12, "\(r)")
        }

        let dense = try ProbeFixture()
        defer { dense.remove() }
        #expect(try dense.probe("dense.h5", options).routing == nil)
        #expect(try ProbeGrams(url: dense.file("dense.h5")).routing == nil)
    }

    @Test("pooling weights each pass by its tokens and sorts by layer, decision, task order, side and segment")
    func poolingIsTokenWeighted() {
        func stats(_ layer: Int, _ task: TaskKind, tokens: Int, share: [Double], entropy: Double)
            -> RoutingStatistics
        {
            RoutingStatistics(
                layer: layer, decision: .ffn, task: task, side: .input, segment: 0, tokens: tokens,
                weightShare: share, tokenShare: share, meanEntropy: entropy)
        }
        var pool = ProbeRouting.Pool()
        pool.add([stats(1, .mlm, tokens: 1, share: [1, 0], entropy: 0.2)])
        pool.add([stats(1, .mlm, tokens: 3, share: [0, 1], entropy: 0.6), stats(0, .captioning, tokens: 2, share: [0.5, 0.5], entropy: 0.5)])
        pool.add([stats(1, .imageClassification, tokens: 5, share: [0.2, 0.8], entropy: 0.1)])
        let records = pool.records(tasks: [.imageClassification, .mlm, .captioning])
        #expect(records.map(\.layer) == [0, 1, 1])
        #expect(records.map(\.task) == [.captioning, .imageClassification, .mlm])
        let mlm = records[2]
        #expect(mlm.tokens == 4)
        #expect(mlm.weightShare == [0.25, 0.75])
        #expect(abs(mlm.meanEntropy - (0.2 + 3 * 0.6) / 4) < 1e-15)
        #expect(records[0].weightShare == [0.5, 0.5] && records[0].tokens == 2)
    }
}

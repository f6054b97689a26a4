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
        #expect(try ProbeRouting.collect(model: model, dataset: ProbeFixture.dataset, options: options) == table)
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
        // …and neither do its forward passes alone (not an empty table).
        #expect(try ProbeRouting.collect(model: ProbeFixture.model(), dataset: ProbeFixture.dataset, options: options) == nil)
    }

    @Test("a mini-batch --skip-nonfinite excludes is left out of the routing table, so the file stays readable")
    func excludedMiniBatchesAreNotPooled() throws {
        let model = try ProbeFixture.moeModel()
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        var gradient = [Float](repeating: 0, count: model.parameters.count)
        var zeroed = Model.ZeroedExperts()
        var calls = 0
        var kept: [RoutingTable] = []
        let summary = try Probe.run(
            model: model, dataset: ProbeFixture.dataset, source: ErrorTests.source(fixture),
            options: ProbeFixture.options(skipNonFinite: true), out: fixture.file("moe.h5"), progress: nil
        ) { (batch, noise) throws(ProbeError) in
            defer { calls += 1 }
            do throws(ModelError) {
                let pass = try model.forward(batch, noise: noise)
                model.gradient(pass, into: &gradient, zeroed: &zeroed)
                var routing = pass.routingStatistics
                if calls == 5 {  // a NaN gradient, and the NaN gate weights that could come with it
                    gradient[0] = .nan
                    routing = routing.map {
                        RoutingStatistics(
                            layer: $0.layer, decision: $0.decision, task: $0.task, side: $0.side, segment: $0.segment,
                            tokens: $0.tokens, weightShare: $0.weightShare.map { _ in .nan }, tokenShare: $0.tokenShare,
                            meanEntropy: .nan)
                    }
                } else {
                    kept.append(ProbeRouting.table(routing, of: model.config))
                }
                return Probe.ProbeGradient(
                    loss: pass.loss, values: gradient, zeroRanges: model.zeroRanges(of: zeroed), routing: routing)
            } catch { throw .model(error) }
        }
        #expect(summary.excluded.count == 1)
        let table = try #require(summary.routing)
        #expect(table == ProbeRouting.pooled(kept, of: model.config, tasks: ProbeFixture.tasks))
        #expect(try ProbeGrams(url: fixture.file("moe.h5")).routing == table)
    }
}

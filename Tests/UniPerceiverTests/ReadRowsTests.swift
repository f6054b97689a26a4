import Kernels
import TestSupport
import Testing

@testable import UniPerceiver

/// `Model.computesOnlyReadRows`: the last layer computes only the rows the feature head reads. The
/// other rows cannot change the loss, so the loss and every gradient must equal those of the full
/// last layer, up to the order of the weight-gradient sums, for every task (each reads different
/// rows: first tokens, masked positions, caption positions), in one lane and in lanes, with a dense
/// model, with an MoE layer (token routing too) below the dense last layer, and with a merged-routing
/// MoE last layer (its linears see the decisions restricted to the read rows).
@Suite struct ReadRowsTests {
    static let models: [(name: String, routing: Routing, layers: MoELayers)] = [
        ("dense", .none, .all), ("attribute below", .attribute, .odd), ("token below", .token, .odd),
        ("attribute last", .attribute, .all), ("task last", .task, .all),
    ]

    @Test("only the read rows give the loss and gradient of every row", arguments: TaskKind.allCases, [1, 2])
    func sameAsEveryRow(task: TaskKind, lanes: Int) throws {
        for (name, routing, layers) in Self.models {
            // odd: layer 0 MoE, layer 1 (the last) dense
            var full = randomizedModel(seed: 41, config: tinyConfig(routing: routing, layers: layers))
            full.lanes = lanes
            full.computesOnlyReadRows = false
            var read = full
            read.computesOnlyReadRows = true
            let batch = randomBatch(task, seed: 13)
            let noise: UInt64? = routing == .none ? nil : 17
            let everyRow = try full.forward(batch, noise: noise.map { RoutingNoise(seed: $0) }, premerged: nil)
            let readOnly = try read.forward(batch, noise: noise.map { RoutingNoise(seed: $0) }, premerged: nil)
            // The path under test must be taken: fewer output rows than tokens.
            #expect(everyRow.inputPass.readRows == nil)
            #expect(
                readOnly.inputPass.readRows != nil
                    && readOnly.inputPass.outputRowCount < readOnly.inputPass.sequences.tokenCount,
                "\(name), \(task): the last layer computed every row")
            // The read rows are the same rows, but not always bit for bit: with OpenBLAS's
            // `Prescott` kernels a GEMM row's rounding depends on where the row falls in the
            // kernel's blocking (`Tolerance.readRowsLossRelative`).
            #expect(
                abs(readOnly.loss - everyRow.loss) <= Tolerance.readRowsLossRelative * abs(everyRow.loss),
                "\(name), \(task): \(readOnly.loss) vs \(everyRow.loss)")
            // Routing statistics count every token of the whole decisions, read or not.
            #expect(readOnly.routingStatistics == everyRow.routingStatistics, "\(name), \(task): statistics differ")
            var gFull = [Float](repeating: 0, count: full.parameters.count)
            var gRead = gFull
            full.backward(everyRow, into: &gFull)
            read.backward(readOnly, into: &gRead)
            // Per tensor, relative to its norm as in LaneTests; MoE models get the gates' bound for
            // experts and gates, and every tensor an absolute 1e-6 (the logit scale's gradient is a
            // small difference of many O(1) terms). A dropped or misplaced row moves tensors by O(norm).
            let rtol = routing == .none ? Tolerance.reorderedGradientRelative : Tolerance.reorderedGateGradientRelative
            for entry in full.table.entries {
                let (difference, norm) = LaneTests.distance(gRead, gFull, entry.range)
                #expect(
                    difference <= rtol * norm + 1e-6,
                    "\(name), \(task), \(lanes) lanes: \(entry.name) differs by \(difference) (norm \(norm))")
            }
        }
    }

    @Test("a token- or context-routed last layer computes every row", arguments: [Routing.token, .context])
    func dataDependentLastLayerComputesEveryRow(routing: Routing) throws {
        let batch = randomBatch(.imageClassification, seed: 1)
        let pass = try Model(config: tinyConfig(routing: routing), seed: 3).forward(batch)
        #expect(pass.inputPass.readRows == nil && pass.inputPass.outputRowCount == pass.inputPass.sequences.tokenCount)
        // The same model with attribute routing does reduce its last layer: the check above is about
        // the routing, not a feature that is off.
        let merged = try Model(config: tinyConfig(routing: .attribute), seed: 3).forward(batch)
        #expect(merged.inputPass.readRows != nil && merged.inputPass.outputRowCount < merged.inputPass.sequences.tokenCount)
    }
}

import Kernels

/// The routing of one pass's MoE layers made before a merged-routing encoder (attribute, modality,
/// task) splits the pass into lanes (Encoder.swift, "Lanes").
///
/// These gates see no hidden state, so every decision of the pass can be made up front, in the order
/// a one-lane forward makes them (layers in order, attention before FFN; the gate noise is drawn in
/// that order, so a seeded step is the same in any number of lanes), and every unit's experts merged
/// once for all lanes (the merges themselves spread over the lanes, one (layer, linear) per job).
/// Each lane then runs its sequences through the merged weights and, in backward, only keeps its
/// rows of each unit's `dW_u = dYᵀ·X` and accumulates its share of `db_u`
/// (`ExpertLinear.Cache.deferredRows`, `partialBias`); `Encoder.backward` computes each `dW_u` once
/// over every lane's rows and runs the merge-backward and the gates' backward once per unit, as one
/// lane would. Neither the expert gradients (E× a dense layer's) nor per-lane copies of `dW_u` are
/// written.
final class SharedRoutes {
    /// One MoE layer: both decisions over the whole pass and the merged experts of its four linears.
    final class Layer {
        let attention: RouteDecision
        let ffn: RouteDecision
        /// `qkv`, `out`, `fc1`, `fc2`: `merged` and `mergedBias` of every unit with rows.
        let merged: [ExpertLinear.Cache]
        init(attention: RouteDecision, ffn: RouteDecision, merged: [ExpertLinear.Cache]) {
            self.attention = attention
            self.ffn = ffn
            self.merged = merged
        }
        func decision(_ d: RoutingStatistics.Decision) -> RouteDecision { d == .attention ? attention : ffn }
    }

    /// By layer index (MoE layers only).
    let layers: [Int: Layer]
    /// Routing statistics of the whole pass, as a one-lane forward collects them.
    let statistics: [RoutingStatistics]

    /// Decides in order, then merges every (layer, linear) in `lanes` lanes (the merges are bound by
    /// memory traffic and independent).
    init(
        _ sequences: SequenceBatch, blocks: [EncoderBlock], _ P: ParameterPointers, noise: RoutingNoise?, lanes: Int
    ) {
        var decided: [(layer: Int, moe: MoE, attention: RouteDecision, ffn: RouteDecision)] = []
        var statistics: [RoutingStatistics] = []
        for block in blocks {
            guard let o = block.offsets.moe else { continue }
            let moe = MoE(config: block.config, offsets: o, layer: block.layer)
            let attention = moe.attentionRouter.decideWithoutHiddenStates(sequences, P, noise: noise)
            let ffn = moe.ffnRouter.decideWithoutHiddenStates(sequences, P, noise: noise)
            decided.append((block.layer, moe, attention, ffn))
            statistics += RoutingStatistics.collect(attention, layer: block.layer, decision: .attention, sequences)
                + RoutingStatistics.collect(ffn, layer: block.layer, decision: .ffn, sequences)
        }
        // One job per (MoE layer, linear), each writing its own slot, dealt to the lanes by size
        // (the linears' weights are 3D², D², DF and FD: dealt in turn, one lane got 7 parts in 12).
        var merged = [ExpertLinear.Cache?](repeating: nil, count: 4 * decided.count)
        let sizes = decided.flatMap { d in d.moe.linears.map { $0.inFeatures * $0.outFeatures } }
        let deal = dealLargestFirst(costs: sizes, lanes: min(lanes, sizes.count))
        merged.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            forEachLane(deal.count) { lane in
                for job in deal[lane] {
                    let d = decided[job / 4]
                    let i = job % 4
                    out.value[job] = d.moe.linears[i].mergeUnits(MoE.decision(ofLinear: i) == .attention ? d.attention : d.ffn, P)
                }
            }
        }
        var layers: [Int: Layer] = [:]
        for (l, d) in decided.enumerated() {
            layers[d.layer] = Layer(attention: d.attention, ffn: d.ffn, merged: (0..<4).map { merged[4 * l + $0]! })
        }
        self.layers = layers
        self.statistics = statistics
    }
}

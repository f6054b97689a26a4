import Kernels

/// The MoE parts of one encoder layer: the two routers and the four expert linears.
struct MoE {
    let attentionRouter: Router
    let ffnRouter: Router
    let qkv, out, fc1, fc2: ExpertLinear
    let layer: Int

    init(config c: ModelConfig, offsets o: MoELayerOffsets, layer: Int) {
        let D = c.hiddenSize
        let F = c.ffnSize
        attentionRouter = Router(config: c, gate: o.attentionGate)
        ffnRouter = Router(config: c, gate: o.ffnGate)
        qkv = ExpertLinear(experts: o.qkv, inFeatures: D, outFeatures: 3 * D)
        out = ExpertLinear(experts: o.out, inFeatures: D, outFeatures: D)
        fc1 = ExpertLinear(experts: o.fc1, inFeatures: D, outFeatures: F)
        fc2 = ExpertLinear(experts: o.fc2, inFeatures: F, outFeatures: D)
        self.layer = layer
    }

    func router(_ decision: RoutingStatistics.Decision) -> Router {
        decision == .attention ? attentionRouter : ffnRouter
    }

    /// The decision for `x` (LN1 or LN2 output); with pre-merged experts only the units are laid out,
    /// in a lane of a laned pass the pass's shared decision is cut to the lane's rows.
    func decide(
        _ decision: RoutingStatistics.Decision, _ x: UnsafePointer<Float>, _ routing: EncoderBlock.Routing,
        _ P: ParameterPointers
    ) -> RouteDecision {
        let r = router(decision)
        if routing.premerged != nil { return r.layout(routing.sequences) }
        if let shared = routing.shared?.layers[layer] { return r.slice(shared.decision(decision), routing.sequences) }
        return r.decide(x, routing.sequences, P, noise: routing.noise)
    }

    /// The four linears in `SharedRoutes.Layer.merged` order.
    var linears: [ExpertLinear] { [qkv, out, fc1, fc2] }

    /// Index into `linears` of linear `linear` (0 or 1) of a decision.
    static func linearIndex(_ decision: RoutingStatistics.Decision, _ linear: Int) -> Int {
        (decision == .attention ? 0 : 2) + linear
    }

    /// The decision that routes `linears[index]`.
    static func decision(ofLinear index: Int) -> RoutingStatistics.Decision { index < 2 ? .attention : .ffn }

    /// A lane's expert cache over the shared merged weights of a laned pass (nil otherwise).
    func laneCache(
        _ decision: RoutingStatistics.Decision, linear: Int, _ routing: EncoderBlock.Routing
    ) -> ExpertLinear.Cache? {
        guard let shared = routing.shared?.layers[layer] else { return nil }
        let i = Self.linearIndex(decision, linear)
        return linears[i].laneCache(sharing: shared.merged[i], units: shared.decision(decision).units)
    }

    /// The lookup of pre-merged weights for linear `linear` (0: QKV or `dense`, 1: output
    /// projection or `dense2`) of a decision, when the forward uses them.
    func premerged(
        _ decision: RoutingStatistics.Decision, linear: Int, _ routing: EncoderBlock.Routing
    ) -> ((Int) -> (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>))? {
        if let shared = routing.shared?.layers[layer] {
            let i = Self.linearIndex(decision, linear)
            let cache = shared.merged[i]
            let (O, I) = (linears[i].outFeatures, linears[i].inFeatures)
            return { u in (UnsafePointer(cache.merged!.base + u * O * I), UnsafePointer(cache.mergedBias!.base + u * O)) }
        }
        guard let store = routing.premerged else { return nil }
        let r = router(decision)
        let seq = routing.sequences
        return { u in
            let key = PremergedExperts.Key(layer: layer, decision: decision, linear: linear, unit: r.unitKey(u, seq))
            guard let merged = store.merged[key] else {
                preconditionFailure("PremergedExperts: no merged weights for \(key)")
            }
            return (UnsafePointer(merged.weight.base), UnsafePointer(merged.bias.base))
        }
    }
}

/// Experts merged once per attribute vector, modality or task (the data-independent routings):
/// with noise off every unit's decision is fixed, so `W_u = Σ_j g_j W_{e_j}` can be computed ahead
/// and a forward costs exactly a dense model's (uniperceiver-model.md §5.3). Built by
/// `Model.premergedExperts()`; used by `Model.forward(_:premerged:)`, which cannot be back-propagated.
public struct PremergedExperts: @unchecked Sendable {
    struct Key: Hashable, CustomStringConvertible {
        let layer: Int
        let decision: RoutingStatistics.Decision
        let linear: Int
        let unit: Int
        var description: String { "layer \(layer) \(decision.rawValue) linear \(linear) unit key \(unit)" }
    }

    /// Merged weights and bias; never mutated after construction (hence the unchecked Sendable).
    final class Merged {
        let weight: Buffer
        let bias: Buffer
        init(weight: Buffer, bias: Buffer) {
            self.weight = weight
            self.bias = bias
        }
    }

    let merged: [Key: Merged]
    /// The parameters the experts were merged from (a forward with other parameters is refused).
    let parameterCount: Int
}

extension Model {
    /// Merges every MoE layer's experts for every attribute vector of the §5.6 table, both
    /// modalities or every task (routing `attribute`, `modality` or `task`).
    /// - Throws: `ModelError.notPremergeable` for dense models and data-dependent routings.
    public func premergedExperts() throws(ModelError) -> PremergedExperts {
        let c = config
        guard c.routing != .none, !c.routing.isDataDependent else {
            throw .notPremergeable(routing: c.routing.rawValue)
        }
        var merged: [PremergedExperts.Key: PremergedExperts.Merged] = [:]
        parameters.withUnsafeBufferPointer { values in
            let P = ParameterPointers(values: values.baseAddress!)
            for (n, offsets) in layout.layers.enumerated() {
                guard let o = offsets.moe else { continue }
                let moe = MoE(config: c, offsets: o, layer: n)
                for decision in RoutingStatistics.Decision.allCases {
                    let router = moe.router(decision)
                    // One unit per key, scored exactly as a forward without noise would.
                    let keys: [Int]
                    let d: RouteDecision
                    switch c.routing {
                    case .attribute:
                        let vectors = AttributeVector.all
                        keys = vectors.map(AttributeVector.key)
                        d = RouteDecision(
                            units: keys.count, topK: c.topK, experts: c.numExperts, width: c.hiddenSize,
                            unitOfRow: [], rowsOfUnit: [])
                        router.attributeGateInputs(d, vectors: vectors, P)
                    default:
                        keys = Array(0..<GateOffsets.embeddingRows(c.routing))
                        d = RouteDecision(
                            units: keys.count, topK: c.topK, experts: c.numExperts, width: c.hiddenSize,
                            unitOfRow: [], rowsOfUnit: [])
                        router.embeddingGateInputs(d, rows: keys, P)
                    }
                    router.score(d, P, noise: nil)
                    let linears = decision == .attention ? [moe.qkv, moe.out] : [moe.fc1, moe.fc2]
                    for (l, linear) in linears.enumerated() {
                        for (u, key) in keys.enumerated() {
                            let w = Buffer(linear.outFeatures * linear.inFeatures)
                            let b = Buffer(linear.outFeatures)
                            linear.merge(weight: w.base, bias: b.base, unit: u, decision: d, P)
                            merged[.init(layer: n, decision: decision, linear: l, unit: key)] = .init(weight: w, bias: b)
                        }
                    }
                }
            }
        }
        return PremergedExperts(merged: merged, parameterCount: parameters.count)
    }
}

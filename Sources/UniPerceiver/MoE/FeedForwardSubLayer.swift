import Kernels

// Dimension letters: N rows (B·T), D width, F FFN width.

/// The FFN sub-layer of one encoder layer on its own — `LN2(h)` → `dense` → GELU → `dense2` and its
/// backward — dense or routed, on the hidden states a real batch produces at that layer.
///
/// Issue 4 states token routing's target against "the dense model's FFN cost", which a whole-model
/// ratio cannot show (attention, LayerNorms and embeddings dilute it, and the routed attention
/// linears inflate it). The model benchmark times `run()` of a dense and a routed sibling built
/// from the same configuration, on the same batch.
///
/// `run()` makes the calls `EncoderBlock.forward`/`backward` make for this part of the layer, in the
/// same order and with the same per-call buffers: the router's decision (gate GEMM, softmax, top-k,
/// balance loss), both expert linears, the routing statistics, and in reverse both linears'
/// backward and the router's backward (renormalisation, softmax, `wg`, balance-loss gradient, `dc`
/// into `dInput`). They are restated here rather than factored out of `EncoderBlock`, whose dense
/// path is being tuned in parallel; keep the two in step.
public final class FeedForwardSubLayer {
    let model: Model
    let offsets: LayerOffsets
    let layerIndex: Int
    let sequences: SequenceBatch
    /// `LN2(h)` of the chosen layer in the batch's input pass `[N, D]`.
    let input: Buffer
    /// A seeded random upstream gradient `[N, D]` (every output element weighted differently).
    let dOutput: Buffer
    /// Gradient buffer in the model's table layout; only the sub-layer's ranges are ever touched.
    var gradient: [Float]
    /// `encoder.layers.L.ffn.*`: the linears, their experts and the FFN gate.
    let ownedRanges: [Range<Int>]

    /// Rows the sub-layer processes per `run()` (tokens of the batch's input pass).
    public var rows: Int { sequences.tokenCount }

    /// Runs the model's forward on `batch` (no routing noise) and keeps layer `layer`'s FFN input.
    /// - Throws: `ModelError.badBatch` for a batch the model refuses.
    public init(model: Model, batch: Batch, layer: Int = 0, seed: UInt64 = 3) throws(ModelError) {
        precondition(layer >= 0 && layer < model.config.numLayers, "FeedForwardSubLayer: no layer \(layer)")
        // One lane, so that the pass keeps every layer's cache (a laned pass keeps them per part).
        var oneLane = model
        oneLane.lanes = 1
        oneLane.computesOnlyReadRows = false  // every row of every layer, the last included
        let pass = try oneLane.forward(batch)
        self.model = model
        offsets = model.layout.layers[layer]
        layerIndex = layer
        sequences = pass.inputPass.sequences
        let N = sequences.tokenCount
        let D = model.config.hiddenSize
        input = Buffer(N * D)
        input.base.update(from: pass.inputPass.blocks[layer].ln2.base, count: N * D)
        dOutput = Buffer(N * D)
        var rng = SeededRNG(seed: seed)
        for i in 0..<(N * D) { dOutput.base[i] = rng.nextFloat() - 0.5 }
        gradient = [Float](repeating: 0, count: model.parameters.count)
        let prefix = "encoder.layers.\(layer).ffn."
        ownedRanges = model.table.entries.filter { $0.name.hasPrefix(prefix) }.map(\.range)
    }

    /// Zeroes the sub-layer's gradient ranges (E× larger when routed): the part of `run()` that is
    /// not the FFN's own work, timed alone by the benchmark so its share can be read off.
    public func zeroGradient() {
        gradient.withUnsafeMutableBufferPointer { g in
            for range in ownedRanges { (g.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count) }
        }
    }

    /// One forward + backward of the sub-layer; zeroes its own gradient ranges first (as a training
    /// step zeroes the whole buffer), then accumulates into them. Returns `Σ dOutput ⊙ output` plus
    /// the balance loss, so the work cannot be optimised away and two runs can be compared.
    @discardableResult
    public func run() -> Double {
        let c = model.config
        let o = offsets
        let N = sequences.tokenCount
        let D = c.hiddenSize
        let F = c.ffnSize
        let x = UnsafePointer(input.base)
        zeroGradient()
        return model.parameters.withUnsafeBufferPointer { values in
            gradient.withUnsafeMutableBufferPointer { grads in
                let P = ParameterPointers(values: values.baseAddress!)
                let G = GradientPointers(values: grads.baseAddress!)
                // Forward (EncoderBlock.forward, from `LN2(h)` to `ffnOutput`).
                let hidden = Buffer(N * F)
                let activation = Buffer(N * F)
                let slope = Buffer(uninitialized: N * F)
                let output = Buffer(N * D)
                let moe = o.moe.map { MoE(config: c, offsets: $0, layer: layerIndex) }
                let routing = EncoderBlock.Routing(sequences: sequences, noise: nil, premerged: nil)
                var route: RouteDecision? = nil
                var fc1Cache: ExpertLinear.Cache? = nil
                var fc2Cache: ExpertLinear.Cache? = nil
                if let moe {
                    let r = moe.decide(.ffn, x, routing, P)
                    route = r
                    fc1Cache = moe.fc1.forward(
                        output: hidden.base, input: x, rows: N, decision: r, P,
                        activation: r.isDispatched ? ExpertLinear.GELUOutput(output: activation.base, slope: slope.base) : nil)
                } else {
                    linearForward(
                        output: hidden.base, input: x, weight: P(o.fc1Weight), bias: P(o.fc1Bias),
                        rows: N, inFeatures: D, outFeatures: F)
                }
                let gatheredActivation = fc1Cache?.gatheredActivation
                if gatheredActivation == nil {
                    geluForward(output: activation.base, slope: slope.base, input: hidden.base, count: N * F)
                }
                var statistics: [RoutingStatistics] = []
                if let moe, let r = route {
                    fc2Cache = moe.fc2.forward(
                        output: output.base, input: activation.base, rows: N, decision: r, P, gathered: gatheredActivation)
                    statistics = RoutingStatistics.collect(r, layer: layerIndex, decision: .ffn, sequences)
                } else {
                    linearForward(
                        output: output.base, input: activation.base, weight: P(o.fc2Weight),
                        bias: P(o.fc2Bias), rows: N, inFeatures: F, outFeatures: D)
                }
                // Backward (EncoderBlock.backward, from `dBranch` to `dNorm`).
                let dHidden = Buffer(N * F)
                let dActivation = Buffer(N * F)
                let dNorm = Buffer(N * D)
                var dGate = [Double](repeating: 0, count: route.map { $0.units * $0.topK } ?? 0)
                if let moe, let r = route {
                    moe.fc2.backward(
                        fc2Cache!, dOutput: dOutput.base, dInput: dActivation.base, input: activation.base,
                        rows: N, decision: r, dWeights: &dGate, P, G)
                } else {
                    linearBackward(
                        dInput: dActivation.base, dWeight: G(o.fc2Weight), dBias: G(o.fc2Bias),
                        dOutput: dOutput.base, input: activation.base, weight: P(o.fc2Weight),
                        rows: N, inFeatures: F, outFeatures: D)
                }
                geluBackward(dInput: dHidden.base, dOutput: dActivation.base, slope: slope.base, count: N * F)
                if let moe, let r = route {
                    moe.fc1.backward(
                        fc1Cache!, dOutput: dHidden.base, dInput: dNorm.base, input: x, rows: N,
                        decision: r, dWeights: &dGate, P, G)
                    moe.ffnRouter.backward(r, dWeights: dGate, dInput: dNorm.base, sequences, P, G)
                } else {
                    linearBackward(
                        dInput: dNorm.base, dWeight: G(o.fc1Weight), dBias: G(o.fc1Bias),
                        dOutput: dHidden.base, input: x, weight: P(o.fc1Weight),
                        rows: N, inFeatures: D, outFeatures: F)
                }
                var checksum = route?.balanceLoss ?? 0
                for i in 0..<(N * D) { checksum += Double(dOutput.base[i]) * Double(output.base[i]) }
                checksum += Double(dNorm.base[0]) + Double(statistics.count)
                return checksum
            }
        }
    }
}

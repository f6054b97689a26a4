import Kernels

// Dimension letters: N = B·T rows, D width, F FFN width, H heads.

/// One pre-LN encoder layer with LayerScale (official `transformer_encoder_layer.py`, "BERTPre"):
/// ```
/// a = LN1(x);  h = x + γ1 ⊙ (Attn(a)·Woᵀ + bo)
/// f = LN2(h);  y = h + γ2 ⊙ (GELU(f·W1ᵀ + b1)·W2ᵀ + b2)
/// ```
/// DropPath and dropout are 0 in every configuration this project runs.
///
/// In an MoE layer (`offsets.moe`) the four linears are `ExpertLinear`s: the attention router decides
/// on `LN1(x)` for the QKV and output projections, the FFN router on `LN2(h)` for `dense` and
/// `dense2` (official `transformer_encoder_moe_layer.py`, `FFN_SHARE_GATE_DECISION`).
struct EncoderBlock {
    let config: ModelConfig
    let offsets: LayerOffsets
    /// 0-based layer index (routing statistics, pre-merged lookups).
    var layer: Int = 0

    /// What an MoE layer needs besides the hidden states: the batch's segments and task (gate
    /// inputs), the training noise, and optionally pre-merged experts.
    struct Routing {
        let sequences: SequenceBatch
        let noise: RoutingNoise?
        let premerged: PremergedExperts?
        /// A lane of a laned merged-routing pass: the pass's decisions and merged experts.
        var shared: SharedRoutes? = nil
    }

    /// What backward needs, named after what it holds. R = N, or the number of `readRows`: from the
    /// attention output on, a layer whose reader takes only some rows computes only those.
    final class Cache {
        let input: Buffer  // x [N, D]
        let ln1: Buffer, mean1: Buffer, rstd1: Buffer
        let qkv: Buffer  // [N, 3D]
        let attentionProbs: Buffer  // [R·H·T] (see attentionForward)
        let attentionOutput: Buffer  // heads concatenated [R, D]
        let attentionProjection: Buffer  // before γ1 [R, D]
        let residual: Buffer  // h [R, D]
        let ln2: Buffer, mean2: Buffer, rstd2: Buffer
        let ffnHidden: Buffer  // before GELU [R, F]
        let ffnActivation: Buffer  // after GELU [R, F]
        let ffnSlope: Buffer  // GELU′ at ffnHidden [R, F], for the backward
        let ffnOutput: Buffer  // before γ2 [R, D]
        let output: Buffer  // y [R, D]
        /// The rows computed after attention (nil: all N), in `output`'s order.
        var readRows: QueryRows? = nil
        // MoE layers only: the two decisions, each linear's expert cache, routing statistics.
        var attentionRoute: RouteDecision? = nil
        var ffnRoute: RouteDecision? = nil
        /// With `readRows`: the decisions over the computed rows, for the output projection, `dense`
        /// and `dense2` (the QKV projection, the statistics and the gates use the whole decisions).
        var attentionRowsRoute: RouteDecision? = nil
        var ffnRowsRoute: RouteDecision? = nil
        var qkvExperts: ExpertLinear.Cache? = nil
        var outExperts: ExpertLinear.Cache? = nil
        var fc1Experts: ExpertLinear.Cache? = nil
        var fc2Experts: ExpertLinear.Cache? = nil
        var statistics: [RoutingStatistics] = []
        /// Layers of a laned pass: each linear's `dY` (`MoE.linears` order), kept by a backward
        /// that left the weight gradients to `Encoder` (dense linears: `backwardWeights`; merged
        /// experts: `ExpertLinear.mergeBackward`; see `backward`'s `deferWeights`).
        var weightGradientOutputs: [Buffer] = []
        /// Each linear's input, in the same order: the `X` of `dW = dYᵀ·X`, and its row count (the
        /// QKV projection sees every row, the others the computed rows).
        var linearInputs: [Buffer] { [ln1, attentionOutput, ln2, ffnActivation] }
        var linearRows: [Int] {
            let N = mean1.count
            let R = readRows?.rows.count ?? N
            return [N, R, R, R]
        }
        /// The four expert caches in `MoE.linears` order.
        var experts: [ExpertLinear.Cache?] { [qkvExperts, outExperts, fc1Experts, fc2Experts] }
        /// Sum of the two decisions' weighted balance losses (token and context routing).
        var balanceLoss: Double {
            (attentionRoute?.balanceLoss ?? 0) + (ffnRoute?.balanceLoss ?? 0)
        }

        /// `zeroed: false` when the forward writes every value (the dense layer's, checked line by
        /// line, and merged experts'); the dispatched expert linears' layers get zeroed buffers.
        init(batch B: Int, length T: Int, config c: ModelConfig, zeroed: Bool = true, readRows: QueryRows? = nil) {
            let N = B * T
            let R = readRows?.rows.count ?? N
            let D = c.hiddenSize
            func buffer(_ count: Int) -> Buffer { zeroed ? Buffer(count) : Buffer(uninitialized: count) }
            input = buffer(N * D)
            ln1 = buffer(N * D)
            mean1 = buffer(N)
            rstd1 = buffer(N)
            qkv = buffer(N * 3 * D)
            attentionProbs = buffer(R * c.numHeads * T)
            attentionOutput = buffer(R * D)
            attentionProjection = buffer(R * D)
            residual = buffer(R * D)
            ln2 = buffer(R * D)
            mean2 = buffer(R)
            rstd2 = buffer(R)
            ffnHidden = buffer(R * c.ffnSize)
            ffnActivation = buffer(R * c.ffnSize)
            ffnSlope = buffer(R * c.ffnSize)
            ffnOutput = buffer(R * D)
            output = buffer(R * D)
            self.readRows = readRows
        }
    }

    /// `readRows` (dense layers and merged routings): compute the attention output and everything
    /// after it only for these rows; `output` is then `[R, D]` in their order.
    func forward(
        _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, batch B: Int, length T: Int,
        _ P: ParameterPointers, routing: Routing? = nil, readRows: QueryRows? = nil
    ) -> Cache {
        let c = config
        let o = offsets
        precondition(
            readRows == nil || o.moe == nil || !c.routing.isDataDependent,
            "EncoderBlock.forward: readRows in a token- or context-routed layer (its gate reads every row)")
        let N = B * T
        let R = readRows?.rows.count ?? N
        let D = c.hiddenSize
        let F = c.ffnSize
        // Merged experts write every row of their outputs (every row belongs to a unit), so only the
        // dispatched routings' layers keep zeroed caches.
        let cache = Cache(
            batch: B, length: T, config: c, zeroed: o.moe != nil && c.routing.isDataDependent, readRows: readRows)
        cache.input.base.update(from: x, count: N * D)
        layerNormForward(
            output: cache.ln1.base, mean: cache.mean1.base, rstd: cache.rstd1.base, input: x,
            weight: P(o.ln1Weight), bias: P(o.ln1Bias), rows: N, cols: D)
        let moe = o.moe.map { MoE(config: c, offsets: $0, layer: layer) }
        if let moe, let routing {
            let route = moe.decide(.attention, cache.ln1.base, routing, P)
            cache.attentionRoute = route
            cache.qkvExperts = moe.qkv.forward(
                output: cache.qkv.base, input: cache.ln1.base, rows: N, decision: route, P,
                premerged: moe.premerged(.attention, linear: 0, routing),
                cache: moe.laneCache(.attention, linear: 0, routing))
        } else {
            linearForward(
                output: cache.qkv.base, input: cache.ln1.base, weight: P(o.qkvWeight), bias: P(o.qkvBias),
                rows: N, inFeatures: D, outFeatures: 3 * D)
        }
        attentionForward(
            output: cache.attentionOutput.base, probs: cache.attentionProbs.base, qkv: cache.qkv.base,
            mask: mask, batch: B, length: T, heads: c.numHeads, width: D, queries: readRows)
        if let moe, let routing, let whole = cache.attentionRoute {
            let route = readRows.map { whole.restricted(to: $0) } ?? whole
            cache.attentionRowsRoute = route
            cache.outExperts = moe.out.forward(
                output: cache.attentionProjection.base, input: cache.attentionOutput.base, rows: R,
                decision: route, P, premerged: moe.premerged(.attention, linear: 1, routing),
                cache: moe.laneCache(.attention, linear: 1, routing))
        } else {
            linearForward(
                output: cache.attentionProjection.base, input: cache.attentionOutput.base,
                weight: P(o.outWeight), bias: P(o.outBias), rows: R, inFeatures: D, outFeatures: D)
        }
        let readInput = readRows?.gather(x, stride: D, columns: D)
        layerScaleResidualForward(
            output: cache.residual.base, residual: readInput.map { UnsafePointer($0.base) } ?? x,
            branch: cache.attentionProjection.base, gamma: P(o.gamma1), rows: R, cols: D)
        layerNormForward(
            output: cache.ln2.base, mean: cache.mean2.base, rstd: cache.rstd2.base,
            input: cache.residual.base, weight: P(o.ln2Weight), bias: P(o.ln2Bias), rows: R, cols: D)
        if let moe, let routing {
            let whole = moe.decide(.ffn, cache.ln2.base, routing, P)
            cache.ffnRoute = whole
            let route = readRows.map { whole.restricted(to: $0) } ?? whole
            cache.ffnRowsRoute = route
            // Dispatched experts apply GELU in their lanes and gather `dense2`'s rows on the way.
            cache.fc1Experts = moe.fc1.forward(
                output: cache.ffnHidden.base, input: cache.ln2.base, rows: R, decision: route, P,
                premerged: moe.premerged(.ffn, linear: 0, routing),
                cache: moe.laneCache(.ffn, linear: 0, routing),
                activation: route.isDispatched
                    ? ExpertLinear.GELUOutput(output: cache.ffnActivation.base, slope: cache.ffnSlope.base) : nil)
        } else {
            linearForward(
                output: cache.ffnHidden.base, input: cache.ln2.base, weight: P(o.fc1Weight),
                bias: P(o.fc1Bias), rows: R, inFeatures: D, outFeatures: F)
        }
        let gatheredActivation = cache.fc1Experts?.gatheredActivation
        if gatheredActivation == nil {
            geluForward(output: cache.ffnActivation.base, slope: cache.ffnSlope.base, input: cache.ffnHidden.base, count: R * F)
        }
        if let moe, let routing, let route = cache.ffnRowsRoute {
            cache.fc2Experts = moe.fc2.forward(
                output: cache.ffnOutput.base, input: cache.ffnActivation.base, rows: R, decision: route, P,
                premerged: moe.premerged(.ffn, linear: 1, routing),
                cache: moe.laneCache(.ffn, linear: 1, routing), gathered: gatheredActivation)
            if routing.premerged == nil && routing.shared == nil {  // a laned pass has them whole
                cache.statistics = RoutingStatistics.collect(
                    cache.attentionRoute!, layer: layer, decision: .attention, routing.sequences)
                    + RoutingStatistics.collect(cache.ffnRoute!, layer: layer, decision: .ffn, routing.sequences)
            }
        } else {
            linearForward(
                output: cache.ffnOutput.base, input: cache.ffnActivation.base, weight: P(o.fc2Weight),
                bias: P(o.fc2Bias), rows: R, inFeatures: F, outFeatures: D)
        }
        layerScaleResidualForward(
            output: cache.output.base, residual: cache.residual.base, branch: cache.ffnOutput.base,
            gamma: P(o.gamma2), rows: R, cols: D)
        return cache
    }

    /// The forward's calls in reverse. Takes `dy [R, D]` (R as in the forward), returns `dx [N, D]`
    /// in `dInput` (overwritten), accumulates parameter gradients.
    ///
    /// `deferWeights` (dense layers of a laned pass): the four linears' weight gradients are not
    /// computed here; their `dY` are kept in `cache.weightGradientOutputs` for `Encoder`, which
    /// computes each weight gradient once over every lane's rows (no per-lane copy of the weights'
    /// gradients to zero and add).
    func backward(
        _ cache: Cache, dOutput dy: UnsafePointer<Float>, dInput dx: UnsafeMutablePointer<Float>,
        batch B: Int, length T: Int, _ P: ParameterPointers, _ G: GradientPointers,
        sequences: SequenceBatch? = nil, deferWeights: Bool = false
    ) {
        let c = config
        let o = offsets
        let N = B * T
        let readRows = cache.readRows
        let R = readRows?.rows.count ?? N
        let D = c.hiddenSize
        let F = c.ffnSize
        let dResidual = Buffer(R * D)
        let dBranch = Buffer(R * D)  // dY of ffn.dense2
        let dAttentionBranch = Buffer(R * D)  // dY of attention.output.dense
        let dHidden = Buffer(R * F)
        let dActivation = Buffer(R * F)
        let dNorm = Buffer(R * D)
        let dQKV = Buffer(N * 3 * D)
        let scratch = Buffer(2 * T * T)
        let deferring = deferWeights && o.moe == nil
        // Kept for `Encoder`: the dense linears' deferred weight gradients, and a laned MoE layer's
        // merged units, whose `ExpertLinear.DeferredRows` point into these buffers.
        if deferWeights { cache.weightGradientOutputs = [dQKV, dAttentionBranch, dHidden, dBranch] }
        func dW(_ offset: Int) -> UnsafeMutablePointer<Float>? { deferring ? nil : G(offset) }

        // y = h + γ2 ⊙ ffnOutput
        layerScaleResidualBackward(
            dResidual: dResidual.base, dBranch: dBranch.base, dGamma: G(o.gamma2), dOutput: dy,
            branch: cache.ffnOutput.base, gamma: P(o.gamma2), rows: R, cols: D)
        let moe = o.moe.map { MoE(config: c, offsets: $0, layer: layer) }
        // Gradients of each decision's renormalised gate weights, summed over its two linears.
        var dAttentionGate = [Double](repeating: 0, count: cache.attentionRoute.map { $0.units * $0.topK } ?? 0)
        var dFFNGate = [Double](repeating: 0, count: cache.ffnRoute.map { $0.units * $0.topK } ?? 0)
        if let moe, let route = cache.ffnRowsRoute {
            moe.fc2.backward(
                cache.fc2Experts!, dOutput: dBranch.base, dInput: dActivation.base,
                input: cache.ffnActivation.base, rows: R, decision: route, dWeights: &dFFNGate, P, G)
        } else {
            linearBackward(
                dInput: dActivation.base, dWeight: dW(o.fc2Weight), dBias: G(o.fc2Bias),
                dOutput: dBranch.base, input: cache.ffnActivation.base, weight: P(o.fc2Weight),
                rows: R, inFeatures: F, outFeatures: D)
        }
        geluBackward(dInput: dHidden.base, dOutput: dActivation.base, slope: cache.ffnSlope.base, count: R * F)
        if let moe, let route = cache.ffnRowsRoute, let sequences {
            moe.fc1.backward(
                cache.fc1Experts!, dOutput: dHidden.base, dInput: dNorm.base, input: cache.ln2.base,
                rows: R, decision: route, dWeights: &dFFNGate, P, G)
            if !cache.fc1Experts!.isLaneShare {  // a lane of a laned pass: Encoder.backward's
                // Merged gates see no hidden state: with `readRows` nothing flows into dNorm here.
                moe.ffnRouter.backward(cache.ffnRoute!, dWeights: dFFNGate, dInput: dNorm.base, sequences, P, G)
            }
        } else {
            linearBackward(
                dInput: dNorm.base, dWeight: dW(o.fc1Weight), dBias: G(o.fc1Bias),
                dOutput: dHidden.base, input: cache.ln2.base, weight: P(o.fc1Weight),
                rows: R, inFeatures: D, outFeatures: F)
        }
        layerNormBackward(
            dInput: dResidual.base, dWeight: G(o.ln2Weight), dBias: G(o.ln2Bias),
            dOutput: dNorm.base, input: cache.residual.base, weight: P(o.ln2Weight),
            mean: cache.mean2.base, rstd: cache.rstd2.base, rows: R, cols: D)
        // h = x + γ1 ⊙ attentionProjection (x read at the computed rows only)
        dx.update(repeating: 0, count: N * D)
        let dReadInput = readRows.map { Buffer($0.rows.count * D) }
        layerScaleResidualBackward(
            dResidual: dReadInput?.base ?? dx, dBranch: dAttentionBranch.base, dGamma: G(o.gamma1),
            dOutput: dResidual.base, branch: cache.attentionProjection.base, gamma: P(o.gamma1), rows: R, cols: D)
        if let readRows, let dReadInput { readRows.scatterAdd(dReadInput.base, into: dx, stride: D, columns: D) }
        let dAttention = Buffer(R * D)
        if let moe, let route = cache.attentionRowsRoute {
            moe.out.backward(
                cache.outExperts!, dOutput: dAttentionBranch.base, dInput: dAttention.base,
                input: cache.attentionOutput.base, rows: R, decision: route, dWeights: &dAttentionGate, P, G)
        } else {
            linearBackward(
                dInput: dAttention.base, dWeight: dW(o.outWeight), dBias: G(o.outBias),
                dOutput: dAttentionBranch.base, input: cache.attentionOutput.base, weight: P(o.outWeight),
                rows: R, inFeatures: D, outFeatures: D)
        }
        attentionBackward(
            dQKV: dQKV.base, dOutput: dAttention.base, qkv: cache.qkv.base,
            probs: cache.attentionProbs.base, scratch: scratch.base,
            batch: B, length: T, heads: c.numHeads, width: D, queries: readRows)
        let dLN1 = Buffer(N * D)
        if let moe, let route = cache.attentionRoute, let sequences {
            moe.qkv.backward(
                cache.qkvExperts!, dOutput: dQKV.base, dInput: dLN1.base, input: cache.ln1.base,
                rows: N, decision: route, dWeights: &dAttentionGate, P, G)
            if !cache.qkvExperts!.isLaneShare {
                moe.attentionRouter.backward(route, dWeights: dAttentionGate, dInput: dLN1.base, sequences, P, G)
            }
        } else {
            linearBackward(
                dInput: dLN1.base, dWeight: dW(o.qkvWeight), dBias: G(o.qkvBias),
                dOutput: dQKV.base, input: cache.ln1.base, weight: P(o.qkvWeight),
                rows: N, inFeatures: D, outFeatures: 3 * D)
        }
        layerNormBackward(
            dInput: dx, dWeight: G(o.ln1Weight), dBias: G(o.ln1Bias),
            dOutput: dLN1.base, input: cache.input.base, weight: P(o.ln1Weight),
            mean: cache.mean1.base, rstd: cache.rstd1.base, rows: N, cols: D)
    }
}

/// LayerScale residual: `y = residual + γ ⊙ branch` (γ per channel; official `gamma_1`, `gamma_2`).
func layerScaleResidualForward(
    output: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>,
    branch: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let i = r * cols
        for c in 0..<cols { output[i + c] = residual[i + c] + gamma[c] * branch[i + c] }
    }
}

/// Backward of `layerScaleResidualForward`; **accumulates** `dResidual += dy`,
/// `dBranch += γ ⊙ dy`, `dγ += Σ_rows dy ⊙ branch`.
func layerScaleResidualBackward(
    dResidual: UnsafeMutablePointer<Float>, dBranch: UnsafeMutablePointer<Float>,
    dGamma: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
    branch: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let i = r * cols
        for c in 0..<cols {
            let d = dOutput[i + c]
            dResidual[i + c] += d
            dBranch[i + c] += gamma[c] * d
            dGamma[c] += d * branch[i + c]
        }
    }
}

import Foundation
import UniPerceiver

/// AdamW's constants (uniperceiver-model.md §4: torch AdamW, betas 0.9/0.95, eps 1e-6, weight
/// decay 0.05). The learning rate is not here: the schedule gives it per step.
public struct AdamWSettings: Codable, Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.95, epsilon: Double = 1e-6, weightDecay: Double = 0.05) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    enum CodingKeys: String, CodingKey {
        case beta1 = "beta1"
        case beta2 = "beta2"
        case epsilon
        case weightDecay = "weight_decay"
    }
}

/// Decoupled-weight-decay Adam (Loshchilov & Hutter 2019) over one contiguous parameter buffer,
/// step for step what `torch.optim.AdamW` does (single-tensor path):
///
/// ```
/// t += 1
/// p ← p − lr·λ·p                          (decayed tensors only)
/// m ← β1·m + (1−β1)·g
/// v ← β2·v + (1−β2)·g²
/// p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
/// ```
///
/// Which tensors decay is decided by name (`decays(parameterNamed:)`); the moments `m`, `v` and `t`
/// are the optimizer state a checkpoint must carry for `--resume` to continue bit-exactly.
public struct AdamW: Sendable, Equatable {
    public let settings: AdamWSettings
    /// First moments, laid out like the parameters.
    public internal(set) var firstMoment: [Float]
    /// Second moments, laid out like the parameters.
    public internal(set) var secondMoment: [Float]
    /// Updates applied so far (torch's `state["step"]`).
    public internal(set) var step: Int
    /// Per tensor of the table: its range and whether weight decay applies.
    public let groups: [(range: Range<Int>, decay: Bool)]

    public static func == (a: AdamW, b: AdamW) -> Bool {
        a.settings == b.settings && a.firstMoment == b.firstMoment && a.secondMoment == b.secondMoment
            && a.step == b.step && a.groups.elementsEqual(b.groups, by: { $0 == $1 })
    }

    /// A fresh optimizer (zero moments, step 0) for a model with this parameter table.
    public init(table: ParameterTable, settings: AdamWSettings = AdamWSettings()) {
        self.settings = settings
        let count = table.totalCount
        firstMoment = [Float](repeating: 0, count: count)
        secondMoment = [Float](repeating: 0, count: count)
        step = 0
        groups = table.entries.map { ($0.range, Self.decays(parameterNamed: $0.name)) }
    }

    /// An optimizer resumed from saved moments and step count.
    public init(
        table: ParameterTable, settings: AdamWSettings, firstMoment: [Float], secondMoment: [Float], step: Int
    ) {
        precondition(
            firstMoment.count == table.totalCount && secondMoment.count == table.totalCount,
            "AdamW: moments of \(firstMoment.count)/\(secondMoment.count) values for \(table.totalCount) parameters")
        self.init(table: table, settings: settings)
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        self.step = step
    }

    /// Whether weight decay applies to the parameter called `name`.
    ///
    /// No decay (uniperceiver-model.md §4): every bias; LayerNorm weights (`LayerNormModules`,
    /// `embeddings_norm`, `ln_post`); embedding tables (everything under `token_embed.` — word,
    /// position and token-type tables — and the learned position rows under
    /// `video_embed.embeddings_st_pos.`); the logit scales `predictor.logit_scale_*`; LayerScale γ
    /// (`*.residual_scale`); every MoE gate parameter (`….gate.*`: the release puts `gate.wg` and
    /// `gate.tag_transform` in an optimiser group of their own with weight decay 0, §5.2).
    /// Everything else decays: the Linear weights of the encoder and its MoE experts, the feature
    /// head's `predictor.proj.weight` and the patch projection `video_embed.embeddings.weight` (a
    /// Linear layer in the reference).
    public static func decays(parameterNamed name: String) -> Bool {
        if name.hasSuffix(".bias") || name.hasSuffix("residual_scale") { return false }
        if name.contains(".gate.") { return false }
        if name.contains("LayerNormModules") || name.contains("embeddings_norm") || name.contains("ln_post") {
            return false
        }
        if name.hasPrefix("token_embed.") || name.hasPrefix("video_embed.embeddings_st_pos") { return false }
        if name.hasPrefix("predictor.logit_scale") { return false }
        return true
    }

    /// Applies one update with learning rate `learningRate` to `parameters` (laid out like the
    /// table this optimizer was built for).
    public mutating func update(parameters: inout [Float], gradient: [Float], learningRate: Double) {
        precondition(
            parameters.count == firstMoment.count && gradient.count == firstMoment.count,
            "AdamW.update: \(parameters.count) parameters, \(gradient.count) gradients, \(firstMoment.count) moments")
        step += 1
        let t = Double(step)
        let b1 = Float(settings.beta1)
        let b2 = Float(settings.beta2)
        let stepSize = Float(learningRate / (1 - pow(settings.beta1, t)))
        let correction2 = Float((1 - pow(settings.beta2, t)).squareRoot())
        let eps = Float(settings.epsilon)
        let decayFactor = Float(1 - learningRate * settings.weightDecay)
        parameters.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                firstMoment.withUnsafeMutableBufferPointer { m in
                    secondMoment.withUnsafeMutableBufferPointer { v in
                        for group in groups {
                            let decay = group.decay
                            for i in group.range {
                                if decay { p[i] *= decayFactor }
                                let gi = g[i]
                                m[i] = b1 * m[i] + (1 - b1) * gi
                                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                                p[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + eps)
                            }
                        }
                    }
                }
            }
        }
    }
}

// Parameter offsets of the Conditional-MoE layers (README.md, "Conditional MoE": names and shapes).

/// The E experts of one MoE-ised linear: `<role>.experts.K.{weight,bias}`, each an independent
/// copy of the dense linear it replaces (official `task_moe/experts.py`).
struct ExpertOffsets: Sendable {
    let weights: [Int]
    let biases: [Int]

    static func resolve(_ t: ParameterTable, _ p: NamePrefix, _ c: ModelConfig) -> ExpertOffsets {
        ExpertOffsets(
            weights: (0..<c.numExperts).map { t.offset(p.push("experts").push(String($0)).name("weight")) },
            biases: (0..<c.numExperts).map { t.offset(p.push("experts").push(String($0)).name("bias")) })
    }
}

/// The gate of one routing decision, `<role>.gate.*`; only the fields of the configured routing
/// are valid (the others are −1).
struct GateOffsets: Sendable {
    /// `gate.wg.weight [E, D]`, no bias (every routing).
    let wg: Int
    /// Attribute routing: `gate.tag_transform.0.{weight [D, 8], bias [D]}` (Linear 8→D) and
    /// `gate.tag_transform.1.{weight, bias} [D]` (LayerNorm).
    let tagWeight, tagBias, tagNormWeight, tagNormBias: Int
    /// Modality (2 rows: image, text) or task (one row per `TaskKind`) routing: `gate.embedding.weight`.
    let embedding: Int

    static func resolve(_ t: ParameterTable, _ p: NamePrefix, _ c: ModelConfig) -> GateOffsets {
        let tag = p.push("tag_transform")
        let attribute = c.routing == .attribute
        let embedded = c.routing == .modality || c.routing == .task
        return GateOffsets(
            wg: t.offset(p.push("wg").name("weight")),
            tagWeight: attribute ? t.offset(tag.push("0").name("weight")) : -1,
            tagBias: attribute ? t.offset(tag.push("0").name("bias")) : -1,
            tagNormWeight: attribute ? t.offset(tag.push("1").name("weight")) : -1,
            tagNormBias: attribute ? t.offset(tag.push("1").name("bias")) : -1,
            embedding: embedded ? t.offset(p.push("embedding").name("weight")) : -1)
    }

    /// Rows of the gate embedding table: 2 modalities or one per task.
    static func embeddingRows(_ routing: Routing) -> Int {
        routing == .modality ? Modality.allCases.count : TaskKind.allCases.count
    }
}

/// Experts of the four linears and the two gates of one MoE layer. Only `qkv_proj` and `ffn.dense`
/// own a gate: the attention output projection reuses the QKV decision and `ffn.dense2` reuses
/// `ffn.dense`'s (official `FFN_SHARE_GATE_DECISION`), so the gates the release also builds on those
/// two would never receive a gradient; they are left out rather than kept as dead parameters.
struct MoELayerOffsets: Sendable {
    let qkv, out, fc1, fc2: ExpertOffsets
    let attentionGate, ffnGate: GateOffsets

    /// Adds one gate's parameters under `p` (= `<role>.gate`) in the documented order.
    static func addGate(_ t: inout ParameterTable, _ p: NamePrefix, _ c: ModelConfig) {
        let D = c.hiddenSize
        switch c.routing {
        case .attribute:
            let tag = p.push("tag_transform")
            t.add(tag.push("0").name("weight"), [D, AttributeVector.width])
            t.add(tag.push("0").name("bias"), [D])
            t.add(tag.push("1").name("weight"), [D])
            t.add(tag.push("1").name("bias"), [D])
        case .modality, .task:
            t.add(p.push("embedding").name("weight"), [GateOffsets.embeddingRows(c.routing), D])
        case .token, .context, .none:
            break
        }
        t.add(p.push("wg").name("weight"), [c.numExperts, D])
    }
}

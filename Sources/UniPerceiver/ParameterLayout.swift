/// Offsets of one encoder layer's parameters in the contiguous buffer.
struct LayerOffsets: Sendable {
    let ln1Weight, ln1Bias: Int
    let qkvWeight, qkvBias: Int
    let outWeight, outBias: Int
    let gamma1: Int
    let ln2Weight, ln2Bias: Int
    let fc1Weight, fc1Bias: Int
    let fc2Weight, fc2Bias: Int
    let gamma2: Int
    /// Experts and gates when this is an MoE layer; the dense linear offsets above are then −1.
    let moe: MoELayerOffsets?
}

/// Offsets of every parameter the forward and backward touch, resolved once from the table.
struct ParameterLayout: Sendable {
    let patchWeight, patchBias, temporal: Int
    let wordEmbedding, positionEmbedding, typeEmbedding: Int
    let embedNormWeight, embedNormBias: Int
    let layers: [LayerOffsets]
    let postNormWeight, postNormBias: Int
    let projWeight, projBias: Int
    /// `predictor.logit_scale_*`, one per task family.
    let logitScale: [TaskKind: Int]

    /// Builds the table in the documented order (README.md, "Parameters") and resolves offsets.
    static func build(_ c: ModelConfig) -> (ParameterTable, ParameterLayout) {
        var t = ParameterTable()
        let D = c.hiddenSize
        let F = c.ffnSize
        let video = NamePrefix(["video_embed"])
        t.add(video.push("embeddings").name("weight"), [D, c.patchFeatures])
        t.add(video.push("embeddings").name("bias"), [D])
        t.add(video.push("embeddings_st_pos").name("temporal_pos_embed"), [1, D])
        let token = NamePrefix(["token_embed"])
        t.add(token.push("embeddings").name("weight"), [c.vocabSize, D])
        t.add(token.push("embeddings_pos").push("position_embeddings").name("weight"), [c.maxTextLength, D])
        t.add(token.push("embeddings_token_type").name("weight"), [2, D])
        t.add(token.push("embeddings_norm").name("weight"), [D])
        t.add(token.push("embeddings_norm").name("bias"), [D])
        var layerPrefixes: [NamePrefix] = []
        for n in 0..<c.numLayers {
            let l = NamePrefix(["encoder", "layers", String(n)])
            layerPrefixes.append(l)
            t.add(l.push("LayerNormModules").push("0").name("weight"), [D])
            t.add(l.push("LayerNormModules").push("0").name("bias"), [D])
            let qkv = l.push("attention").push("self").push("qkv_proj")
            let out = l.push("attention").push("output").push("dense")
            let fc1 = l.push("ffn").push("dense")
            let fc2 = l.push("ffn").push("dense2")
            let moe = c.isMoELayer(n)
            func linear(_ p: NamePrefix, _ outF: Int, _ inF: Int, gate: Bool) {
                if moe {
                    if gate { MoELayerOffsets.addGate(&t, p.push("gate"), c) }
                    for k in 0..<c.numExperts {
                        t.add(p.push("experts").push(String(k)).name("weight"), [outF, inF])
                        t.add(p.push("experts").push(String(k)).name("bias"), [outF])
                    }
                } else {
                    t.add(p.name("weight"), [outF, inF])
                    t.add(p.name("bias"), [outF])
                }
            }
            linear(qkv, 3 * D, D, gate: true)
            linear(out, D, D, gate: false)
            t.add(l.push("attention_output").name("residual_scale"), [D])
            t.add(l.push("LayerNormModules").push("1").name("weight"), [D])
            t.add(l.push("LayerNormModules").push("1").name("bias"), [D])
            linear(fc1, F, D, gate: true)
            linear(fc2, D, F, gate: false)
            t.add(l.push("ffn_output").name("residual_scale"), [D])
        }
        let predictor = NamePrefix(["predictor"])
        t.add(predictor.push("ln_post").name("weight"), [D])
        t.add(predictor.push("ln_post").name("bias"), [D])
        t.add(predictor.push("proj").name("weight"), [D, D])
        t.add(predictor.push("proj").name("bias"), [D])
        for task in TaskKind.allCases { t.add(predictor.name(logitScaleName(task)), [1]) }

        let layers = layerPrefixes.enumerated().map { n, l in
            let qkv = l.push("attention").push("self").push("qkv_proj")
            let out = l.push("attention").push("output").push("dense")
            let fc1 = l.push("ffn").push("dense")
            let fc2 = l.push("ffn").push("dense2")
            let moe = c.isMoELayer(n)
            func dense(_ p: NamePrefix, _ leaf: String) -> Int { moe ? -1 : t.offset(p.name(leaf)) }
            return LayerOffsets(
                ln1Weight: t.offset(l.push("LayerNormModules").push("0").name("weight")),
                ln1Bias: t.offset(l.push("LayerNormModules").push("0").name("bias")),
                qkvWeight: dense(qkv, "weight"),
                qkvBias: dense(qkv, "bias"),
                outWeight: dense(out, "weight"),
                outBias: dense(out, "bias"),
                gamma1: t.offset(l.push("attention_output").name("residual_scale")),
                ln2Weight: t.offset(l.push("LayerNormModules").push("1").name("weight")),
                ln2Bias: t.offset(l.push("LayerNormModules").push("1").name("bias")),
                fc1Weight: dense(fc1, "weight"),
                fc1Bias: dense(fc1, "bias"),
                fc2Weight: dense(fc2, "weight"),
                fc2Bias: dense(fc2, "bias"),
                gamma2: t.offset(l.push("ffn_output").name("residual_scale")),
                moe: moe
                    ? MoELayerOffsets(
                        qkv: .resolve(t, qkv, c), out: .resolve(t, out, c), fc1: .resolve(t, fc1, c),
                        fc2: .resolve(t, fc2, c), attentionGate: .resolve(t, qkv.push("gate"), c),
                        ffnGate: .resolve(t, fc1.push("gate"), c))
                    : nil)
        }
        var scales: [TaskKind: Int] = [:]
        for task in TaskKind.allCases { scales[task] = t.offset(predictor.name(logitScaleName(task))) }
        let layout = ParameterLayout(
            patchWeight: t.offset("video_embed.embeddings.weight"),
            patchBias: t.offset("video_embed.embeddings.bias"),
            temporal: t.offset("video_embed.embeddings_st_pos.temporal_pos_embed"),
            wordEmbedding: t.offset("token_embed.embeddings.weight"),
            positionEmbedding: t.offset("token_embed.embeddings_pos.position_embeddings.weight"),
            typeEmbedding: t.offset("token_embed.embeddings_token_type.weight"),
            embedNormWeight: t.offset("token_embed.embeddings_norm.weight"),
            embedNormBias: t.offset("token_embed.embeddings_norm.bias"),
            layers: layers,
            postNormWeight: t.offset("predictor.ln_post.weight"),
            postNormBias: t.offset("predictor.ln_post.bias"),
            projWeight: t.offset("predictor.proj.weight"),
            projBias: t.offset("predictor.proj.bias"),
            logitScale: scales)
        return (t, layout)
    }

    /// `logit_scale_img_cls`, `…_text_mlm`, `…_caption`, `…_retrieve` (official `TEMP_NAME`s).
    static func logitScaleName(_ task: TaskKind) -> String {
        switch task {
        case .imageClassification: "logit_scale_img_cls"
        case .mlm: "logit_scale_text_mlm"
        case .captioning: "logit_scale_caption"
        case .retrieval: "logit_scale_retrieve"
        }
    }
}

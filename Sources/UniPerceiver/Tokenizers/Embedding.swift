import Kernels

/// The token embedding of every sequence, image and text alike, followed by the shared LayerNorm
/// (`token_embed.py`, `video_embed.py`; README.md "Token embedding").
///
/// `pre = E_word[w] (+ E_pos[p] + E_type[0])` for text and the `<SPE>` prefix (prefix: word only),
/// `pre = W_patch·patch + b_patch + spatial[g] + temporal[0]` for image patches; `x = LN(pre)`.
struct Embedding {
    let config: ModelConfig
    let layout: ParameterLayout
    let spatial: [Float]

    final class Cache {
        let patchProjection: Buffer  // [P, D]
        let pre: Buffer  // [N, D]
        let mean: Buffer  // [N]
        let rstd: Buffer  // [N]
        let output: Buffer  // [N, D]
        init(patches: Int, tokens: Int, width: Int) {
            patchProjection = Buffer(patches * width)
            pre = Buffer(tokens * width)
            mean = Buffer(tokens)
            rstd = Buffer(tokens)
            output = Buffer(tokens * width)
        }
    }

    func forward(_ seq: SequenceBatch, _ P: ParameterPointers) -> Cache {
        let D = config.hiddenSize
        let N = seq.tokenCount
        let cache = Cache(patches: seq.patchCount, tokens: N, width: D)
        if seq.patchCount > 0 {
            seq.patches.withUnsafeBufferPointer { patches in
                linearForward(
                    output: cache.patchProjection.base, input: patches.baseAddress!,
                    weight: P(layout.patchWeight), bias: P(layout.patchBias),
                    rows: seq.patchCount, inFeatures: config.patchFeatures, outFeatures: D)
            }
        }
        let pre = cache.pre.base
        for i in 0..<N {
            let row = pre + i * D
            if seq.patchRows[i] >= 0 {
                let proj = cache.patchProjection.base + seq.patchRows[i] * D
                let temporal = P(layout.temporal)
                let g = seq.gridIndex[i] * D
                for c in 0..<D { row[c] = proj[c] + spatial[g + c] + temporal[c] }
            } else {
                let word = P(layout.wordEmbedding) + seq.tokenIds[i] * D
                row.update(from: word, count: D)
                if seq.positions[i] >= 0 {
                    let pos = P(layout.positionEmbedding) + seq.positions[i] * D
                    let type0 = P(layout.typeEmbedding)
                    for c in 0..<D { row[c] += pos[c] + type0[c] }
                }
            }
        }
        layerNormForward(
            output: cache.output.base, mean: cache.mean.base, rstd: cache.rstd.base,
            input: pre, weight: P(layout.embedNormWeight), bias: P(layout.embedNormBias),
            rows: N, cols: D)
        return cache
    }

    /// Mirrors `forward` in reverse; accumulates into the parameter gradients.
    func backward(
        _ seq: SequenceBatch, _ cache: Cache, dOutput: UnsafePointer<Float>,
        _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let D = config.hiddenSize
        let N = seq.tokenCount
        let dPre = Buffer(N * D)
        layerNormBackward(
            dInput: dPre.base, dWeight: G(layout.embedNormWeight), dBias: G(layout.embedNormBias),
            dOutput: dOutput, input: cache.pre.base, weight: P(layout.embedNormWeight),
            mean: cache.mean.base, rstd: cache.rstd.base, rows: N, cols: D)
        let dProjection = Buffer(seq.patchCount * D)
        for i in 0..<N {
            let d = dPre.base + i * D
            if seq.patchRows[i] >= 0 {
                let dProj = dProjection.base + seq.patchRows[i] * D
                let dTemporal = G(layout.temporal)
                for c in 0..<D {
                    dProj[c] += d[c]
                    dTemporal[c] += d[c]
                }
            } else {
                let dWord = G(layout.wordEmbedding) + seq.tokenIds[i] * D
                for c in 0..<D { dWord[c] += d[c] }
                if seq.positions[i] >= 0 {
                    let dPos = G(layout.positionEmbedding) + seq.positions[i] * D
                    let dType0 = G(layout.typeEmbedding)
                    for c in 0..<D {
                        dPos[c] += d[c]
                        dType0[c] += d[c]
                    }
                }
            }
        }
        if seq.patchCount > 0 {
            seq.patches.withUnsafeBufferPointer { patches in
                linearBackward(
                    dInput: nil, dWeight: G(layout.patchWeight), dBias: G(layout.patchBias),
                    dOutput: dProjection.base, input: patches.baseAddress!, weight: P(layout.patchWeight),
                    rows: seq.patchCount, inFeatures: config.patchFeatures, outFeatures: config.hiddenSize)
            }
        }
    }
}

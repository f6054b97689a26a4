import Kernels

/// Builders of the encoder inputs of README.md "Task losses". Text never carries the `<SPE>`
/// prefix: it is added here. Padded positions hold token 0 at position 0 and are masked as keys.
extension SequenceBatch {
    /// `[SPE, I]` per image of `images [B, C, S, S]`.
    static func images(_ images: Tensor, config: ModelConfig) -> SequenceBatch {
        let B = images.shape[0]
        var seq = SequenceBatch(batchSize: B, length: 1 + config.patchCount)
        for b in 0..<B {
            seq.setSPE(b, 0, config: config)
            seq.setImage(b, start: 1, images: images, image: b, config: config)
        }
        return seq
    }

    /// `[SPE, x_1..x_L]` per text, text positions 0..L−1, padding masked as keys.
    static func texts(_ texts: [[Int]], config: ModelConfig) -> SequenceBatch {
        let L = texts.map(\.count).max() ?? 0
        var seq = SequenceBatch(batchSize: texts.count, length: 1 + L)
        for (b, text) in texts.enumerated() {
            seq.setSPE(b, 0, config: config)
            for t in 0..<L {
                if t < text.count {
                    seq.setText(b, 1 + t, id: text[t], position: t)
                } else {
                    seq.setText(b, 1 + t, id: 0, position: 0)
                    seq.maskKey(b, 1 + t)
                    seq.valid[b * seq.length + 1 + t] = false
                }
            }
        }
        return seq
    }

    /// The vocabulary target set: every id v as `[SPE, v, EOT]` (v at position 0, EOT at 1).
    static func vocabulary(config: ModelConfig) -> SequenceBatch {
        texts((0..<config.vocabSize).map { [$0, config.eotId] }, config: config)
    }

    /// Caption inputs `[SPE, I, x_1..x_T, q_1..q_T]` with the mask of uniperceiver-model.md §2.6:
    /// SPE+image see SPE+image; `x_t` sees SPE+image and `x_1..x_t`; `q_t` sees SPE+image,
    /// `x_1..x_{t−1}` and itself. Both `x_t` and `q_t` sit at text position t−1 (`get_time_step`).
    static func captions(_ images: Tensor, _ captions: [[Int]], config: ModelConfig) -> SequenceBatch {
        let B = captions.count
        let T = captions.map(\.count).max() ?? 0
        let prefix = 1 + config.patchCount
        var seq = SequenceBatch(batchSize: B, length: prefix + 2 * T)
        for b in 0..<B {
            seq.setSPE(b, 0, config: config)
            seq.setImage(b, start: 1, images: images, image: b, config: config)
            let n = captions[b].count
            for t in 0..<T {
                seq.setText(b, prefix + t, id: t < n ? captions[b][t] : 0, position: t < n ? t : 0)
                seq.setText(b, prefix + T + t, id: config.speId, position: t < n ? t : 0)
                seq.segment[b * seq.length + prefix + t] = 1
                seq.segment[b * seq.length + prefix + T + t] = 1
                seq.valid[b * seq.length + prefix + t] = t < n
                seq.valid[b * seq.length + prefix + T + t] = t < n
            }
            for q in 0..<seq.length {
                for k in 0..<seq.length {
                    let allowed: Bool
                    if q < prefix {
                        allowed = k < prefix
                    } else if q < prefix + T {
                        let t = q - prefix
                        allowed = k < prefix || (k >= prefix && k <= q && k - prefix < n && t >= 0)
                    } else {
                        let t = q - prefix - T
                        allowed = k < prefix || (k >= prefix && k < prefix + min(t, n)) || k == q
                    }
                    seq.setAllowed(b, query: q, key: k, allowed)
                }
            }
        }
        return seq
    }
}

import Kernels

/// Embedding followed by the stack of pre-LN blocks; no final LayerNorm (the predictor has its own).
struct Encoder {
    let embedding: Embedding
    let blocks: [EncoderBlock]

    /// One encoded `SequenceBatch` and everything its backward needs.
    final class Pass {
        let sequences: SequenceBatch
        let embedding: Embedding.Cache
        var blocks: [EncoderBlock.Cache] = []
        init(sequences: SequenceBatch, embedding: Embedding.Cache) {
            self.sequences = sequences
            self.embedding = embedding
        }
        /// Routing statistics of every MoE layer (empty for dense models and pre-merged passes).
        var statistics: [RoutingStatistics] { blocks.flatMap(\.statistics) }
        /// Weighted balance loss of every MoE layer (token and context routing; 0 otherwise).
        var balanceLoss: Double { blocks.reduce(0) { $0 + $1.balanceLoss } }
        /// Final hidden states `[N, D]`.
        var output: UnsafeMutablePointer<Float> { blocks.last?.output.base ?? embedding.output.base }
    }

    func forward(
        _ sequences: SequenceBatch, _ P: ParameterPointers, noise: RoutingNoise? = nil,
        premerged: PremergedExperts? = nil
    ) -> Pass {
        let pass = Pass(sequences: sequences, embedding: embedding.forward(sequences, P))
        let routing = EncoderBlock.Routing(sequences: sequences, noise: noise, premerged: premerged)
        sequences.mask.withUnsafeBufferPointer { mask in
            var x = UnsafePointer(pass.embedding.output.base)
            for block in blocks {
                let cache = block.forward(
                    x, mask: mask.baseAddress!, batch: sequences.batchSize, length: sequences.length, P,
                    routing: block.offsets.moe == nil ? nil : routing)
                pass.blocks.append(cache)
                x = UnsafePointer(cache.output.base)
            }
        }
        return pass
    }

    /// Backward from `dOutput [N, D]` (the gradient of the final hidden states) to the embeddings.
    func backward(_ pass: Pass, dOutput: Buffer, _ P: ParameterPointers, _ G: GradientPointers) {
        let seq = pass.sequences
        var dy = dOutput
        var dx = Buffer(dOutput.count)
        for (block, cache) in zip(blocks, pass.blocks).reversed() {
            block.backward(
                cache, dOutput: dy.base, dInput: dx.base, batch: seq.batchSize, length: seq.length, P, G,
                sequences: block.offsets.moe == nil ? nil : seq)
            swap(&dy, &dx)
        }
        embedding.backward(seq, pass.embedding, dOutput: dy.base, P, G)
    }
}

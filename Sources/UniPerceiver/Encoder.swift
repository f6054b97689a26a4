import Kernels

/// Embedding followed by the stack of pre-LN blocks; no final LayerNorm (the predictor has its own).
///
/// **Lanes.** Sequences do not interact inside the encoder, so a dense encoder splits a batch of
/// B ≥ 2 sequences into `lanes` consecutive ranges and runs each range's embedding and blocks on its
/// own core (`forEachLane`, single-threaded BLAS). The outputs are gathered into one `[N, D]` buffer;
/// in backward lane 0 accumulates into the model's gradient and every other lane into a lane
/// gradient the caller adds afterwards (`Model.backward`). MoE encoders stay in one lane: their
/// routing noise is drawn per layer for the whole batch, and token and context routing's balance
/// loss couples the sequences.
struct Encoder {
    let embedding: Embedding
    let blocks: [EncoderBlock]
    var lanes = 1

    /// One encoded `SequenceBatch` and everything its backward needs.
    final class Pass {
        let sequences: SequenceBatch
        let embedding: Embedding.Cache?
        var blocks: [EncoderBlock.Cache] = []
        /// Laned passes: each lane's first sequence and pass, and their outputs gathered `[N, D]`.
        var lanes: [(first: Int, pass: Pass)] = []
        var gathered: Buffer? = nil
        init(sequences: SequenceBatch, embedding: Embedding.Cache?) {
            self.sequences = sequences
            self.embedding = embedding
        }
        /// Routing statistics of every MoE layer (empty for dense models and pre-merged passes).
        var statistics: [RoutingStatistics] { blocks.flatMap(\.statistics) }
        /// Weighted balance loss of every MoE layer (token and context routing; 0 otherwise).
        var balanceLoss: Double { blocks.reduce(0) { $0 + $1.balanceLoss } }
        /// Final hidden states `[N, D]`.
        var output: UnsafeMutablePointer<Float> {
            gathered?.base ?? blocks.last?.output.base ?? embedding!.output.base
        }
        /// Whether backward needs a lane gradient besides the model's.
        var isLaned: Bool { lanes.count > 1 }
    }

    /// The number of lanes this batch runs in (1: the plain single-lane pass).
    func laneCount(_ sequences: SequenceBatch) -> Int {
        guard lanes > 1, blocks.allSatisfy({ $0.offsets.moe == nil }) else { return 1 }
        return min(lanes, sequences.batchSize)
    }

    func forward(
        _ sequences: SequenceBatch, _ P: ParameterPointers, noise: RoutingNoise? = nil,
        premerged: PremergedExperts? = nil
    ) -> Pass {
        let count = laneCount(sequences)
        guard count > 1 else { return forwardInOneLane(sequences, P, noise: noise, premerged: premerged) }
        let B = sequences.batchSize
        let firsts = (0...count).map { $0 * B / count }
        var passes = [Pass?](repeating: nil, count: count)
        passes.withUnsafeMutableBufferPointer { out in
            forEachLane(count) { lane in
                out[lane] = forwardInOneLane(sequences.slice(firsts[lane]..<firsts[lane + 1]), P)
            }
        }
        let pass = Pass(sequences: sequences, embedding: nil)
        let rowWidth = sequences.length * embedding.config.hiddenSize
        let gathered = Buffer(B * rowWidth)
        for lane in 0..<count {
            let sub = passes[lane]!
            pass.lanes.append((firsts[lane], sub))
            (gathered.base + firsts[lane] * rowWidth).update(from: sub.output, count: sub.sequences.batchSize * rowWidth)
        }
        pass.gathered = gathered
        return pass
    }

    private func forwardInOneLane(
        _ sequences: SequenceBatch, _ P: ParameterPointers, noise: RoutingNoise? = nil,
        premerged: PremergedExperts? = nil
    ) -> Pass {
        let pass = Pass(sequences: sequences, embedding: embedding.forward(sequences, P))
        let routing = EncoderBlock.Routing(sequences: sequences, noise: noise, premerged: premerged)
        sequences.mask.withUnsafeBufferPointer { mask in
            var x = UnsafePointer(pass.embedding!.output.base)
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

    /// Backward from `dOutput [N, D]` (the gradient of the final hidden states; used as scratch) to
    /// the embeddings. Lane 0 of a laned pass accumulates into `G`, the others into `laneGradients`
    /// (one buffer per extra lane, laid out like `G`).
    func backward(
        _ pass: Pass, dOutput: Buffer, _ P: ParameterPointers, _ G: GradientPointers,
        laneGradients: [GradientPointers] = []
    ) {
        guard pass.isLaned else { return backwardInOneLane(pass, dOutput: dOutput, P, G) }
        precondition(laneGradients.count >= pass.lanes.count - 1, "Encoder.backward: missing lane gradients")
        let rowWidth = pass.sequences.length * embedding.config.hiddenSize
        forEachLane(pass.lanes.count) { lane in
            let (first, sub) = pass.lanes[lane]
            let count = sub.sequences.batchSize * rowWidth
            let dy = Buffer(count)
            dy.base.update(from: dOutput.base + first * rowWidth, count: count)
            backwardInOneLane(sub, dOutput: dy, P, lane == 0 ? G : laneGradients[lane - 1])
        }
    }

    private func backwardInOneLane(_ pass: Pass, dOutput: Buffer, _ P: ParameterPointers, _ G: GradientPointers) {
        let seq = pass.sequences
        var dy = dOutput
        var dx = Buffer(dOutput.count)
        for (block, cache) in zip(blocks, pass.blocks).reversed() {
            block.backward(
                cache, dOutput: dy.base, dInput: dx.base, batch: seq.batchSize, length: seq.length, P, G,
                sequences: block.offsets.moe == nil ? nil : seq)
            swap(&dy, &dx)
        }
        embedding.backward(seq, pass.embedding!, dOutput: dy.base, P, G)
    }
}

import Kernels

/// Embedding followed by the stack of pre-LN blocks; no final LayerNorm (the predictor has its own).
///
/// **Lanes.** Sequences do not interact inside the encoder, so a dense encoder runs the sequences of
/// a loss's passes (inputs and candidates) in `lanes` lanes, one per core with single-threaded BLAS
/// (`forEachLane`). The passes' sequences, taken in order, are cut into contiguous ranges of about
/// equal token count, so a short candidate pass rides in one lane beside part of the inputs instead
/// of being cut into slivers. Outputs are gathered per pass into one `[N, D]` buffer. In backward,
/// lane 0 accumulates into the model's gradient and lane l ≥ 1 into `laneGradients[l − 1]`, which the
/// caller adds afterwards (`Model.backward`). MoE encoders run one lane with OpenBLAS's threads:
/// their routing noise is drawn per layer for the whole batch, and token and context routing's
/// balance loss couples the sequences.
struct Encoder {
    let embedding: Embedding
    let blocks: [EncoderBlock]
    var lanes = 1

    /// One encoded `SequenceBatch` and everything its backward needs.
    final class Pass {
        let sequences: SequenceBatch
        let embedding: Embedding.Cache?
        var blocks: [EncoderBlock.Cache] = []
        /// Laned passes: each part's first sequence, its pass and the lane that ran it; the parts'
        /// outputs gathered `[N, D]`.
        var parts: [(first: Int, pass: Pass, lane: Int)] = []
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
        /// Whether the pass ran in lanes (backward then needs the lane gradients).
        var isLaned: Bool { !parts.isEmpty }
        /// The lanes that ran parts of it.
        var laneCount: Int { Set(parts.map(\.lane)).count }
    }

    /// Whether this encoder runs in lanes (dense, `lanes > 1`).
    var isLaned: Bool { lanes > 1 && blocks.allSatisfy { $0.offsets.moe == nil } }

    /// Encodes each batch of `batches` (the passes of one loss) and returns their passes in order.
    func forward(
        _ batches: [SequenceBatch], _ P: ParameterPointers, noise: RoutingNoise? = nil,
        premerged: PremergedExperts? = nil
    ) -> [Pass] {
        guard isLaned else {
            return batches.map { forwardInOneLane($0, P, noise: noise, premerged: premerged) }
        }
        let plan = Self.lanePlan(batches, lanes: lanes)
        var parts = [[(batch: Int, first: Int, pass: Pass)]](repeating: [], count: lanes)
        parts.withUnsafeMutableBufferPointer { out in
            forEachLane(lanes) { lane in
                out[lane] = plan[lane].map { ($0.batch, $0.range.lowerBound, forwardInOneLane(batches[$0.batch].slice($0.range), P)) }
            }
        }
        let D = embedding.config.hiddenSize
        return batches.enumerated().map { b, sequences in
            let pass = Pass(sequences: sequences, embedding: nil)
            let rowWidth = sequences.length * D
            let gathered = Buffer(uninitialized: max(sequences.batchSize * rowWidth, 1))
            for (lane, laneParts) in parts.enumerated() {
                for part in laneParts where part.batch == b {
                    pass.parts.append((part.first, part.pass, lane))
                    (gathered.base + part.first * rowWidth).update(
                        from: part.pass.output, count: part.pass.sequences.batchSize * rowWidth)
                }
            }
            pass.gathered = gathered
            return pass
        }
    }

    /// Cuts the batches' sequences, concatenated in order, into `lanes` contiguous ranges of about
    /// equal token count; returns per lane its (batch, sequence range) pieces.
    static func lanePlan(_ batches: [SequenceBatch], lanes: Int) -> [[(batch: Int, range: Range<Int>)]] {
        let total = batches.reduce(0) { $0 + $1.tokenCount }
        var plan = [[(batch: Int, range: Range<Int>)]](repeating: [], count: lanes)
        var before = 0  // tokens of the sequences before the current one
        for (b, batch) in batches.enumerated() {
            var start = 0
            var startLane = -1
            for s in 0..<batch.batchSize {
                // A sequence goes to the lane its middle token falls in.
                let middle = 2 * before + batch.length
                let lane = min(lanes - 1, middle * lanes / max(2 * total, 1))
                if lane != startLane {
                    if startLane >= 0 { plan[startLane].append((b, start..<s)) }
                    (start, startLane) = (s, lane)
                }
                before += batch.length
            }
            if startLane >= 0 { plan[startLane].append((b, start..<batch.batchSize)) }
        }
        return plan
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

    /// Backward of `forward` for the given passes, from each one's `dOutput [N, D]` (the gradient of
    /// its final hidden states; used as scratch) to the embeddings. Laned passes need
    /// `laneGradients` (one buffer laid out like `G` per lane after the first; zeroed here).
    func backward(
        _ passes: [(pass: Pass, dOutput: Buffer)], _ P: ParameterPointers, _ G: GradientPointers,
        laneGradients: [(values: UnsafeMutablePointer<Float>, count: Int)] = []
    ) {
        guard passes.contains(where: { $0.pass.isLaned }) else {
            for (pass, dOutput) in passes { backwardInOneLane(pass, dOutput: dOutput, P, G) }
            return
        }
        precondition(laneGradients.count >= lanes - 1, "Encoder.backward: missing lane gradients")
        let D = embedding.config.hiddenSize
        forEachLane(lanes) { lane in
            var gradient = G
            if lane > 0 {
                let buffer = laneGradients[lane - 1]
                buffer.values.update(repeating: 0, count: buffer.count)
                gradient = GradientPointers(values: buffer.values)
            }
            for (pass, dOutput) in passes {
                let rowWidth = pass.sequences.length * D
                for part in pass.parts where part.lane == lane {
                    let count = part.pass.sequences.batchSize * rowWidth
                    let dy = Buffer(uninitialized: count)
                    dy.base.update(from: dOutput.base + part.first * rowWidth, count: count)
                    backwardInOneLane(part.pass, dOutput: dy, P, gradient)
                }
            }
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

import Kernels

/// Embedding followed by the stack of pre-LN blocks; no final LayerNorm (the predictor has its own).
///
/// **Lanes.** Sequences do not interact inside the encoder, so a dense encoder runs the sequences of
/// a loss's passes (inputs and candidates) in `lanes` lanes, one per core with single-threaded BLAS
/// (`forEachLane`). The passes' sequences, taken in order, are cut into contiguous ranges of about
/// equal token count, so a short candidate pass rides in one lane beside part of the inputs instead
/// of being cut into slivers. Outputs are gathered per pass into one `[N, D]` buffer. In backward,
/// lane 0 accumulates into the model's gradient and lane l ≥ 1 into `laneGradients[l − 1]`, which the
/// caller adds afterwards (`Model.backward`). MoE encoders with merged routing (attribute, modality,
/// task) run in lanes too: their gates see no hidden state, so every decision of a pass is made, and
/// every unit's experts merged, before the split (`SharedRoutes`); the lanes accumulate their shares
/// of each unit's merged-weight gradient, and the experts' and gates' backward runs once per pass
/// after the lanes join. Token and context routing run one lane with OpenBLAS's threads: their gates
/// read the hidden states layer by layer, and the balance loss couples the sequences. The dense
/// layers' weight gradients are not accumulated per lane either: each is computed once after the
/// join over every lane's rows, the lanes taking halves of its output rows (`backwardWeights`).
///
/// **Read rows.** A caller that reads only some rows of a pass's output (the feature head: first
/// tokens, masked positions, caption positions) passes them as `readRows`; a dense last layer then
/// computes its attention queries, output projection and FFN for those rows only, and `output`
/// holds just them. Keys and values still come from every row.
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
        /// The rows `output` holds, ascending (nil: every row): the last layer computed only these.
        var readRows: [Int]? = nil
        init(sequences: SequenceBatch, embedding: Embedding.Cache?) {
            self.sequences = sequences
            self.embedding = embedding
        }
        /// Rows of `output`.
        var outputRowCount: Int { readRows?.count ?? sequences.tokenCount }
        /// Where the output rows of the part starting at sequence `first` begin in `output`.
        func outputOffset(ofPartStartingAt first: Int) -> Int {
            let row = first * sequences.length
            guard let readRows else { return row }
            return readRows.firstIndex { $0 >= row } ?? readRows.count
        }
        /// Laned merged-routing passes: the decisions and merged experts every lane shared.
        var shared: SharedRoutes? = nil
        /// Every MoE layer's decisions over the whole pass, layer by layer (attention, then FFN).
        var decisions: [RouteDecision] {
            if let shared {
                return shared.layers.keys.sorted().flatMap { [shared.layers[$0]!.attention, shared.layers[$0]!.ffn] }
            }
            return blocks.flatMap { [$0.attentionRoute, $0.ffnRoute].compactMap { $0 } }
        }
        /// Routing statistics of every MoE layer (empty for dense models and pre-merged passes).
        var statistics: [RoutingStatistics] { blocks.flatMap(\.statistics) + (shared?.statistics ?? []) }
        /// Weighted balance loss of every MoE layer (token and context routing; 0 otherwise).
        var balanceLoss: Double { blocks.reduce(0) { $0 + $1.balanceLoss } }
        /// Final hidden states `[N, D]`, or `[R, D]` at `readRows`.
        var output: UnsafeMutablePointer<Float> {
            gathered?.base ?? blocks.last?.output.base ?? embedding!.output.base
        }
        /// Whether the pass ran in lanes (backward then needs the lane gradients).
        var isLaned: Bool { !parts.isEmpty }
        /// The lanes that ran parts of it.
        var laneCount: Int { Set(parts.map(\.lane)).count }
    }

    /// Whether this encoder runs in lanes (`lanes > 1`, dense or merged routing).
    var isLaned: Bool {
        lanes > 1 && blocks.allSatisfy { $0.offsets.moe == nil || !$0.config.routing.isDataDependent }
    }

    /// Whether `forward` honours `readRows`: the last layer must be dense or route without reading
    /// the hidden states (token and context gates read every row, and their balance loss counts them).
    var computesOnlyReadRows: Bool {
        blocks.last.map { $0.offsets.moe == nil || !$0.config.routing.isDataDependent } ?? false
    }

    /// Encodes each batch of `batches` (the passes of one loss) and returns their passes in order.
    /// `readRows[b]` (ascending rows of batch b, when given and `computesOnlyReadRows`): the only rows
    /// the caller reads from pass b's output, so the last layer computes only those (its attention
    /// queries, output projection and FFN) and `output` holds just them, in order.
    func forward(
        _ batches: [SequenceBatch], _ P: ParameterPointers, noise: RoutingNoise? = nil,
        premerged: PremergedExperts? = nil, readRows: [[Int]]? = nil
    ) -> [Pass] {
        let readRows = computesOnlyReadRows ? readRows : nil
        guard isLaned, premerged == nil else {
            return batches.enumerated().map { b, batch in
                forwardInOneLane(batch, P, noise: noise, premerged: premerged, readRows: readRows?[b])
            }
        }
        // Decisions in the one-lane order (pass by pass, layer by layer), so the noise draws match.
        let hasMoE = blocks.contains { $0.offsets.moe != nil }
        let shared = batches.map { hasMoE ? SharedRoutes($0, blocks: blocks, P, noise: noise, lanes: lanes) : nil }
        let plan = Self.lanePlan(batches, lanes: lanes)
        var parts = [[(batch: Int, first: Int, pass: Pass)]](repeating: [], count: lanes)
        parts.withUnsafeMutableBufferPointer { out in
            forEachLane(lanes) { lane in
                out[lane] = plan[lane].map { piece in
                    // The part's read rows, relative to its first sequence.
                    let T = batches[piece.batch].length
                    let rows = readRows.map { all in
                        all[piece.batch].filter { piece.range.contains($0 / T) }.map { $0 - piece.range.lowerBound * T }
                    }
                    return (piece.batch, piece.range.lowerBound,
                            forwardInOneLane(batches[piece.batch].slice(piece.range), P, shared: shared[piece.batch], readRows: rows))
                }
            }
        }
        let D = embedding.config.hiddenSize
        return batches.enumerated().map { b, sequences in
            let pass = Pass(sequences: sequences, embedding: nil)
            pass.readRows = readRows?[b]
            let gathered = Buffer(uninitialized: max(pass.outputRowCount * D, 1))
            for (lane, laneParts) in parts.enumerated() {
                for part in laneParts where part.batch == b {
                    pass.parts.append((part.first, part.pass, lane))
                    (gathered.base + pass.outputOffset(ofPartStartingAt: part.first) * D).update(
                        from: part.pass.output, count: part.pass.outputRowCount * D)
                }
            }
            pass.gathered = gathered
            pass.shared = shared[b]
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
        premerged: PremergedExperts? = nil, shared: SharedRoutes? = nil, readRows: [Int]? = nil
    ) -> Pass {
        let pass = Pass(sequences: sequences, embedding: embedding.forward(sequences, P))
        pass.readRows = readRows
        let routing = EncoderBlock.Routing(sequences: sequences, noise: noise, premerged: premerged, shared: shared)
        let queries = readRows.map { QueryRows(rows: $0, batch: sequences.batchSize, length: sequences.length) }
        sequences.mask.withUnsafeBufferPointer { mask in
            var x = UnsafePointer(pass.embedding!.output.base)
            for (l, block) in blocks.enumerated() {
                let cache = block.forward(
                    x, mask: mask.baseAddress!, batch: sequences.batchSize, length: sequences.length, P,
                    routing: block.offsets.moe == nil ? nil : routing, readRows: l == blocks.count - 1 ? queries : nil)
                pass.blocks.append(cache)
                x = UnsafePointer(cache.output.base)
            }
        }
        return pass
    }

    /// Backward of `forward` for the given passes, from each one's `dOutput` (the gradient of its
    /// final hidden states, `[outputRowCount, D]`; used as scratch) to the embeddings. Laned passes need
    /// `laneGradients` (one buffer laid out like `G` per lane after the first; its `laneRanges`,
    /// default all, zeroed here: the lanes never write the merged experts' ranges).
    func backward(
        _ passes: [(pass: Pass, dOutput: Buffer)], _ P: ParameterPointers, _ G: GradientPointers,
        laneGradients: [(values: UnsafeMutablePointer<Float>, count: Int)] = [], laneRanges: [Range<Int>]? = nil
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
                zeroInLanes(buffer.values, ranges: laneRanges ?? [0..<buffer.count], lanes: 1)
                gradient = GradientPointers(values: buffer.values)
            }
            for (pass, dOutput) in passes {
                for part in pass.parts where part.lane == lane {
                    let count = part.pass.outputRowCount * D
                    let dy = Buffer(uninitialized: max(count, 1))
                    dy.base.update(from: dOutput.base + pass.outputOffset(ofPartStartingAt: part.first) * D, count: count)
                    backwardInOneLane(part.pass, dOutput: dy, P, gradient, deferWeights: true)
                }
            }
        }
        backwardWeights(passes.map(\.pass), G)
        let shared = passes.compactMap { p in p.pass.shared.map { (pass: p.pass, routes: $0) } }
        if !shared.isEmpty { backwardSharedRoutes(shared, P, G) }
    }

    /// The dense layers' weight gradients of laned passes, after the lanes join: each weight's
    /// `dW = Σ_parts dYᵀ·X` over every part of every pass, written straight into `G`. The lanes split
    /// each weight by output rows (lane l takes rows `O·l/lanes ..< O·(l+1)/lanes`), so they write
    /// disjoint memory, share the FLOPs evenly, and need no copy of the weights' gradients to zero
    /// and add; parts are summed in pass and part order, so the result does not depend on timing. The
    /// first part overwrites when `Model.gradient(_:into:)` left the weight unzeroed (its first write,
    /// claimed here in layer order).
    private func backwardWeights(_ passes: [Pass], _ G: GradientPointers) {
        let D = embedding.config.hiddenSize
        let F = embedding.config.ffnSize
        let shapes = [(out: 3 * D, in: D), (out: D, in: D), (out: F, in: D), (out: D, in: F)]
        let jobs = blocks.filter { $0.offsets.moe == nil }.flatMap { block in
            let o = block.offsets
            return zip([o.qkvWeight, o.outWeight, o.fc1Weight, o.fc2Weight], shapes).enumerated().map { i, w in
                let shares = passes.flatMap { pass in
                    pass.parts.map { part in
                        let cache = part.pass.blocks[block.layer]
                        return (dY: cache.weightGradientOutputs[i], x: cache.linearInputs[i], rows: cache.linearRows[i])
                    }
                }
                return (offset: w.0, shape: w.1, shares: shares, overwrite: G.claimFirstWrite(w.0))
            }
        }
        guard !jobs.isEmpty else { return }
        forEachLane(lanes) { lane in
            for job in jobs {
                let outputs = (job.shape.out * lane / lanes)..<(job.shape.out * (lane + 1) / lanes)
                for (n, share) in job.shares.enumerated() {
                    linearWeightGradient(
                        dWeight: G(job.offset), dOutput: share.dY.base, input: share.x.base, rows: share.rows,
                        inFeatures: job.shape.in, outFeatures: job.shape.out, outputs: outputs,
                        accumulate: n > 0 || !job.overwrite)
                }
            }
        }
    }

    /// The experts' and gates' backward of laned merged-routing passes, once per pass (see
    /// `SharedRoutes`). One job per (MoE layer, linear) covers every pass, so no two jobs touch the
    /// same expert and the jobs run in lanes; first writes are claimed beforehand, in job order, and
    /// the gate-weight gradients each job returns are summed, and the gates' backward run, in a fixed
    /// order afterwards: the result does not depend on timing. A job's work (its `dW_u` GEMMs and its
    /// passes over the experts) grows with its weight's size, so the jobs are dealt to the lanes
    /// largest first, each to the least loaded lane (a fixed deal, computed from the shapes).
    private func backwardSharedRoutes(
        _ passes: [(pass: Pass, routes: SharedRoutes)], _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let layers = blocks.compactMap { b in
            b.offsets.moe.map { (layer: b.layer, moe: MoE(config: b.config, offsets: $0, layer: b.layer)) }
        }
        let jobs = layers.flatMap { l in (0..<4).map { (layer: l.layer, moe: l.moe, linear: $0) } }
        // Per job and pass: the unit-by-top-k gradient of the gate weights.
        var dWeights = [[[Double]]](repeating: [], count: jobs.count)
        let claims = jobs.map { job in
            passes.map { p in
                job.moe.linears[job.linear].claimFirstWrites(
                    p.routes.layers[job.layer]!.decision(MoE.decision(ofLinear: job.linear)), G)
            }
        }
        let D = embedding.config.hiddenSize
        let F = embedding.config.ffnSize
        let sizes = [3 * D * D, D * D, F * D, D * F]  // qkv, out, fc1, fc2
        let deal = dealLargestFirst(costs: jobs.map { sizes[$0.linear] }, lanes: min(lanes, jobs.count))
        dWeights.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            forEachLane(deal.count) { lane in
                for j in deal[lane] {
                    let (layer, moe, i) = jobs[j]
                    out.value[j] = passes.enumerated().map { n, p in
                        let d = p.routes.layers[layer]!.decision(MoE.decision(ofLinear: i))
                        var dW = [Double](repeating: 0, count: d.units * d.topK)
                        moe.linears[i].mergeBackward(
                            partials: p.pass.parts.map { $0.pass.blocks[layer].experts[i]! }, decision: d,
                            overwrite: claims[j][n], dWeights: &dW, P, G)
                        return dW
                    }
                }
            }
        }
        let unused = Buffer(1)  // these gates see no hidden state: their backward writes no dInput
        for (n, p) in passes.enumerated() {
            for (l, entry) in layers.enumerated() {
                for decision in RoutingStatistics.Decision.allCases {
                    let d = p.routes.layers[entry.layer]!.decision(decision)
                    let first = 4 * l + MoE.linearIndex(decision, 0)
                    let sum = zip(dWeights[first][n], dWeights[first + 1][n]).map { $0 + $1 }
                    entry.moe.router(decision).backward(d, dWeights: sum, dInput: unused.base, p.pass.sequences, P, G)
                }
            }
        }
    }

    private func backwardInOneLane(
        _ pass: Pass, dOutput: Buffer, _ P: ParameterPointers, _ G: GradientPointers, deferWeights: Bool = false
    ) {
        let seq = pass.sequences
        let full = seq.tokenCount * embedding.config.hiddenSize
        var dy = dOutput
        var dx = Buffer(full)
        for (block, cache) in zip(blocks, pass.blocks).reversed() {
            block.backward(
                cache, dOutput: dy.base, dInput: dx.base, batch: seq.batchSize, length: seq.length, P, G,
                sequences: block.offsets.moe == nil ? nil : seq, deferWeights: deferWeights)
            swap(&dy, &dx)
            if dx.count < full { dx = Buffer(full) }  // dOutput held only the read rows
        }
        embedding.backward(seq, pass.embedding!, dOutput: dy.base, P, G)
    }
}

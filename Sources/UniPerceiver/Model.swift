import Foundation
import Kernels

/// A parameter buffer that does not fit the configuration.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case parameterCount(expected: Int, found: Int)
    case badBatch(task: String, reason: String)
    /// Pre-merging needs a data-independent routing (attribute, modality, task).
    case notPremergeable(routing: String)

    public var description: String {
        switch self {
        case .parameterCount(let expected, let found):
            "model: parameter buffer holds \(found) values, the configuration needs \(expected)"
        case .badBatch(let task, let reason): "model: \(task) batch: \(reason)"
        case .notPremergeable(let routing):
            "model: routing \"\(routing)\" cannot be pre-merged (only attribute, modality and task routing decide without the data)"
        }
    }
}

/// A small dense Uni-Perceiver: one encoder shared by every task, for inputs and targets alike,
/// trained by cosine similarity against encoded candidates (README.md; uniperceiver-model.md §2–4).
///
/// `forward(batch)` returns the loss and everything `backward` needs; `backward` accumulates the
/// gradient of that loss into a buffer laid out like `parameters` (see `table`).
public struct Model: Sendable {
    public let config: ModelConfig
    public let table: ParameterTable
    /// All parameters, contiguous, in `table` order.
    public var parameters: [Float]
    let layout: ParameterLayout
    /// `mergedExpertRanges` of this model, for `gradient(_:into:)`.
    let mergedExperts: [Int: (weight: Range<Int>, bias: Range<Int>)]
    /// `denseWeightRanges` of this model: what a laned backward writes after the lanes join.
    let denseWeights: [Int: Range<Int>]
    let spatial: [Float]
    /// Lanes of a dense encoder pass: its sequences split into this many ranges, each on its own
    /// core with single-threaded BLAS (`Encoder`). Fixed, not the core count, so that gradients are
    /// bit-identical on every machine; 1 runs one lane with OpenBLAS's own threads. Token- and
    /// context-routed MoE models always run one lane.
    public var lanes = 2
    /// Whether the encoder's last layer computes only the rows the feature head reads (attention
    /// queries, output projection and FFN of those rows; keys and values of all). Its other rows
    /// cannot change the loss, and they are most of that layer's work. Applies when the last layer
    /// is dense; off gives every row's final hidden state (tests compare the two).
    public var computesOnlyReadRows = true

    /// A model with the paper's initialisation (uniperceiver-model.md §3 "Initialisation"): Linear
    /// weights xavier-uniform (the fused QKV with the bound of one D×D matrix), biases 0, embedding
    /// tables N(0, 0.02²), LayerNorm 1/0, γ = `layer_scale_init`, logit scales ln(1/0.07).
    public init(config: ModelConfig, seed: UInt64) throws(ConfigError) {
        try config.validate()
        let (table, layout) = ParameterLayout.build(config)
        var values = [Float](repeating: 0, count: table.totalCount)
        var rng = SeededRNG(seed: seed)
        let D = config.hiddenSize
        for entry in table.entries {
            let name = entry.name
            func fill(_ f: (inout SeededRNG) -> Float) {
                for i in entry.range { values[i] = f(&rng) }
            }
            if name.hasSuffix("residual_scale") {
                fill { _ in config.layerScaleInit }
            } else if name.hasPrefix("predictor.logit_scale") {
                fill { _ in Float(log(1 / 0.07)) }
            } else if name.contains("LayerNormModules") || name.contains("_norm.") || name.contains("ln_post")
                || name.contains("tag_transform.1.")
            {
                fill { _ in name.hasSuffix("weight") ? 1 : 0 }
            } else if name.hasSuffix("bias") {
                fill { _ in 0 }
            } else if name.hasSuffix("gate.embedding.weight") {
                fill { Float($0.nextGaussian() * 0.02) }
            } else if entry.shape.count == 2 && (name.hasPrefix("encoder.") || name.hasPrefix("predictor.")
                || name == "video_embed.embeddings.weight")
            {
                // Each expert is initialised as the linear it replaces (independently drawn).
                let qkv = name.hasSuffix("qkv_proj.weight") || (name.contains("qkv_proj.experts.") && name.hasSuffix(".weight"))
                let fanOut = qkv ? D : entry.shape[0]
                let bound = Float((6.0 / Double(fanOut + entry.shape[1])).squareRoot())
                fill { (2 * $0.nextFloat() - 1) * bound }
            } else {
                fill { Float($0.nextGaussian() * 0.02) }
            }
        }
        self.init(validated: config, table: table, layout: layout, parameters: values)
    }

    /// A model over given parameter values (from a checkpoint), laid out as `table`.
    public init(config: ModelConfig, parameters: [Float]) throws(ModelError) {
        do { try config.validate() } catch { throw .badBatch(task: "config", reason: error.description) }
        let (table, layout) = ParameterLayout.build(config)
        guard parameters.count == table.totalCount else {
            throw .parameterCount(expected: table.totalCount, found: parameters.count)
        }
        self.init(validated: config, table: table, layout: layout, parameters: parameters)
    }

    private init(validated config: ModelConfig, table: ParameterTable, layout: ParameterLayout, parameters: [Float]) {
        self.config = config
        self.table = table
        self.layout = layout
        self.parameters = parameters
        self.spatial = spatialPositionTable(config)
        self.mergedExperts = Self.mergedExpertRanges(config, table)
        self.denseWeights = Self.denseWeightRanges(config, layout)
    }

    /// The parameter table of a configuration, without building a model.
    public static func parameterTable(for config: ModelConfig) -> ParameterTable {
        ParameterLayout.build(config).0
    }

    var encoder: Encoder {
        Encoder(
            embedding: Embedding(config: config, layout: layout, spatial: spatial),
            blocks: layout.layers.enumerated().map { EncoderBlock(config: config, offsets: $1, layer: $0) },
            lanes: lanes)
    }

    /// Runs `body` with single-threaded BLAS when the encoder runs in lanes (see `lanes`), so that
    /// OpenBLAS's worker does not compete with the lanes for the cores.
    func withLaneBLAS<T>(premerged: Bool = false, _ body: () -> T) -> T {
        encoder.isLaned && !premerged ? BLASThreads.singleThreaded(body) : body()
    }

    var head: FeatureHead { FeatureHead(config: config, layout: layout) }

    /// Loss and gradient of one batch in a fresh buffer (`table` layout).
    public func lossAndGradient(_ batch: Batch) throws(ModelError) -> (loss: Double, gradient: [Float]) {
        let pass = try forward(batch)
        var gradient = [Float](repeating: 0, count: parameters.count)
        backward(pass, into: &gradient)
        return (pass.loss, gradient)
    }

    /// The loss of one batch without keeping what backward needs beyond this call.
    public func loss(_ batch: Batch) throws(ModelError) -> Double { try forward(batch).loss }
}

/// Everything one task's forward produced that its backward needs.
public final class ForwardPass {
    public let task: TaskKind
    /// The loss backward differentiates: `taskLoss + balanceLoss`.
    public let loss: Double
    /// The task loss (mean as README.md "Task losses" defines it).
    public var taskLoss: Double { loss - balanceLoss }
    /// The weighted GShard balance loss of token and context routing (0 otherwise), summed over the
    /// MoE layers' decisions of both encoder passes.
    public var balanceLoss: Double { inputPass.balanceLoss + candidatePass.balanceLoss }
    /// Routing statistics per MoE layer, decision, side and segment (README.md, "Conditional MoE").
    public var routingStatistics: [RoutingStatistics] { inputPass.statistics + candidatePass.statistics }
    /// A pass over pre-merged experts: forward only.
    public internal(set) var isPremerged = false
    /// Whether the encoder passes ran in lanes (`Encoder`).
    var isLaned: Bool { inputPass.isLaned || candidatePass.isLaned }
    let inputPass: Encoder.Pass
    let candidatePass: Encoder.Pass
    let inputHead: FeatureHead.Cache
    let candidateHead: FeatureHead.Cache
    let logits: CosineLogits
    let targets: [Int]
    let probs: Buffer
    /// Retrieval only: softmax over columns (text→image), stored transposed `[K, R]`.
    let columnProbs: Buffer?
    let labelSmoothing: Float
    let counted: Int

    init(
        task: TaskKind, loss: Double, inputPass: Encoder.Pass, candidatePass: Encoder.Pass,
        inputHead: FeatureHead.Cache, candidateHead: FeatureHead.Cache, logits: CosineLogits,
        targets: [Int], probs: Buffer, columnProbs: Buffer?, labelSmoothing: Float, counted: Int
    ) {
        self.task = task
        self.loss = loss
        self.inputPass = inputPass
        self.candidatePass = candidatePass
        self.inputHead = inputHead
        self.candidateHead = candidateHead
        self.logits = logits
        self.targets = targets
        self.probs = probs
        self.columnProbs = columnProbs
        self.labelSmoothing = labelSmoothing
        self.counted = counted
    }
}

extension Model {
    /// Runs one task's forward: encodes the inputs and the candidates with the same encoder, takes the
    /// feature rows, and scores them with the scaled cosine and the task's cross-entropy.
    public func forward(_ batch: Batch) throws(ModelError) -> ForwardPass {
        try forward(batch, noise: nil, premerged: nil)
    }

    /// The training forward of an MoE model: Gaussian noise σ = 1/E on the gate logits, drawn from
    /// `noise` (uniperceiver-model.md §5.2). A dense model draws nothing.
    public func forward(_ batch: Batch, noise: RoutingNoise) throws(ModelError) -> ForwardPass {
        try forward(batch, noise: noise, premerged: nil)
    }

    /// Inference over experts merged once per attribute vector, modality or task
    /// (`premergedExperts()`); the pass has no backward.
    public func forward(_ batch: Batch, premerged: PremergedExperts) throws(ModelError) -> ForwardPass {
        precondition(premerged.parameterCount == parameters.count, "Model.forward: pre-merged experts of another model")
        return try forward(batch, noise: nil, premerged: premerged)
    }

    func forward(_ batch: Batch, noise: RoutingNoise?, premerged: PremergedExperts?) throws(ModelError) -> ForwardPass {
        try check(batch)
        let c = config
        let inputs: SequenceBatch
        let candidates: SequenceBatch
        var inputRows: [Int] = []
        var candidateRows: [Int] = []
        var targets: [Int] = []
        var smoothing: Float = 0
        switch batch {
        case .imageClassification(let images, let labels, let classNames):
            inputs = .images(images, config: c)
            candidates = .texts(classNames, config: c)
            inputRows = (0..<labels.count).map { $0 * inputs.length }
            candidateRows = (0..<classNames.count).map { $0 * candidates.length }
            targets = labels
            smoothing = 0.1
        case .mlm(let tokens, let labels):
            inputs = .texts(tokens, config: c)
            candidates = .vocabulary(config: c)
            for (b, row) in labels.enumerated() {
                for (t, label) in row.enumerated() where label >= 0 {
                    inputRows.append(b * inputs.length + 1 + t)
                    targets.append(label)
                }
            }
            candidateRows = (0..<c.vocabSize).map { $0 * candidates.length }
        case .captioning(let images, let captions):
            inputs = .captions(images, captions, config: c)
            candidates = .vocabulary(config: c)
            let T = captions.map(\.count).max() ?? 0
            let queries = 1 + c.patchCount + T
            for (b, caption) in captions.enumerated() {
                for (t, token) in caption.enumerated() {
                    inputRows.append(b * inputs.length + queries + t)
                    targets.append(token)
                }
            }
            candidateRows = (0..<c.vocabSize).map { $0 * candidates.length }
        case .retrieval(let images, let captions):
            inputs = .images(images, config: c)
            candidates = .texts(captions, config: c)
            inputRows = (0..<captions.count).map { $0 * inputs.length }
            candidateRows = (0..<captions.count).map { $0 * candidates.length }
            targets = Array(0..<captions.count)
            smoothing = 0.1
        }
        let task = batch.task
        let D = c.hiddenSize
        // The task and side select each segment's attribute vector, modality and task embedding.
        let routedInputs = inputs.routed(task: task, side: .input)
        let routedCandidates = candidates.routed(task: task, side: .target)
        return withLaneBLAS(premerged: premerged != nil) { parameters.withUnsafeBufferPointer { values in
            let P = ParameterPointers(values: values.baseAddress!)
            let encoder = self.encoder
            let head = self.head
            // The head reads only `inputRows` and `candidateRows`: the last layer computes just those
            // (`computesOnlyReadRows`), and its output holds them in order.
            let passes = encoder.forward(
                [routedInputs, routedCandidates], P, noise: noise, premerged: premerged,
                readRows: computesOnlyReadRows ? [inputRows, candidateRows] : nil)
            let (inputPass, candidatePass) = (passes[0], passes[1])
            let inputHead = head.forward(
                inputPass.output, rows: inputPass.readRows == nil ? inputRows : Array(inputRows.indices), P)
            let candidateHead = head.forward(
                candidatePass.output, rows: candidatePass.readRows == nil ? candidateRows : Array(candidateRows.indices), P)
            let R = inputRows.count
            let K = candidateRows.count
            let logits = CosineLogits(
                inputHead.unit.base, candidateHead.unit.base, inputs: R, candidates: K, width: D,
                logScale: P(layout.logitScale[task]!)[0])
            let probs = Buffer(R * K)
            var (lossSum, counted) = targets.withUnsafeBufferPointer { t in
                crossEntropyForward(
                    probs: probs.base, logits: logits.logits.base, targets: t.baseAddress!,
                    rows: R, classes: K, labelSmoothing: smoothing)
            }
            var loss = counted > 0 ? lossSum / Double(counted) : 0
            var columnProbs: Buffer? = nil
            if task == .retrieval {
                // Text→image: the same logits read by columns.
                let transposed = Buffer(K * R)
                for r in 0..<R { for k in 0..<K { transposed.base[k * R + r] = logits.logits.base[r * K + k] } }
                let columns = Buffer(K * R)
                let (columnSum, columnCount) = targets.withUnsafeBufferPointer { t in
                    crossEntropyForward(
                        probs: columns.base, logits: transposed.base, targets: t.baseAddress!,
                        rows: K, classes: R, labelSmoothing: smoothing)
                }
                loss += columnSum / Double(columnCount)
                lossSum += columnSum
                counted = columnCount
                columnProbs = columns
            }
            loss += inputPass.balanceLoss + candidatePass.balanceLoss
            let pass = ForwardPass(
                task: task, loss: loss, inputPass: inputPass, candidatePass: candidatePass,
                inputHead: inputHead, candidateHead: candidateHead, logits: logits, targets: targets,
                probs: probs, columnProbs: columnProbs, labelSmoothing: smoothing, counted: counted)
            pass.isPremerged = premerged != nil
            return pass
        } }
    }

    /// The forward in reverse: cross-entropy → scaled cosine → feature heads → both encoder passes
    /// → embeddings. **Accumulates** into `gradients` (`table` layout).
    public func backward(_ pass: ForwardPass, into gradients: inout [Float]) {
        backward(pass, into: &gradients, ablation: .none)
    }

    /// The gradient of `pass`'s loss, **overwriting** `gradients` (`table` layout): every entry is
    /// written, so a buffer reused across steps needs no zeroing by the caller. Equal to zeroing and
    /// then `backward(_:into:)`, bit for bit.
    ///
    /// Why it exists: an MoE model's expert gradients are E× a dense model's. With merged routing
    /// (attribute, modality, task) a backward touches only the chosen experts, so their first
    /// merge-backward writes them whole (no zeroing pass, no read), and only experts no unit chose
    /// are zero-filled afterwards. Everything else is zeroed first.
    public func gradient(_ pass: ForwardPass, into gradients: inout [Float]) {
        var untracked = ZeroedExperts()
        gradient(pass, into: &gradients, zeroed: &untracked)
    }

    /// `gradient(_:into:)` for a buffer reused step after step: `zeroed` carries, from one call to the
    /// next, the merged-routing experts whose ranges the previous call zero-filled. An expert no unit
    /// chooses again is then left as it is instead of being zero-filled again (an attribute-routed
    /// step leaves most experts unchosen, and refilling them was ≈ 5 % of its time).
    ///
    /// The caller's promise: `zeroed` comes from the previous call on this same buffer, and nothing
    /// changed those ranges since (scaling by a finite factor keeps zeros zero). Pass a fresh
    /// `ZeroedExperts()` otherwise; a fresh one gives exactly `gradient(_:into:)`.
    public func gradient(_ pass: ForwardPass, into gradients: inout [Float], zeroed: inout ZeroedExperts) {
        precondition(gradients.count == parameters.count, "Model.gradient: gradient buffer size \(gradients.count) ≠ \(parameters.count)")
        // Weight offset → the ranges its first write covers (an expert's weight and bias).
        var deferred = mergedExperts.mapValues { [$0.weight, $0.bias] }
        if pass.isLaned { for (offset, range) in denseWeights { deferred[offset] = [range] } }
        let firstWrites = FirstWrites(pending: Set(deferred.keys))
        // Two zeroing lanes only where BLAS is single-threaded anyway: beside OpenBLAS's spinning
        // worker (MoE encoders) a second lane waits for a core and costs more than it saves.
        let zeroLanes = encoder.isLaned ? lanes : 1
        gradients.withUnsafeMutableBufferPointer { g in
            zeroInLanes(g.baseAddress!, ranges: complement(of: deferred.values.flatMap { $0 }, in: 0..<g.count), lanes: zeroLanes)
        }
        backward(pass, into: &gradients, ablation: .none, firstWrites: firstWrites)
        // Every expert still pending holds zeros after this; those zeroed last time already do.
        let unchosen = firstWrites.pending.filter { mergedExperts[$0] != nil }
        let unwritten = firstWrites.pending.subtracting(zeroed.offsets.intersection(unchosen)).flatMap { deferred[$0]! }
        gradients.withUnsafeMutableBufferPointer { g in zeroInLanes(g.baseAddress!, ranges: unwritten, lanes: zeroLanes) }
        zeroed.offsets = unchosen
    }

    /// Merged-routing experts of a reused gradient buffer that hold the zeros `gradient(_:into:zeroed:)`
    /// wrote (by weight offset; an expert's weight and bias together).
    public struct ZeroedExperts: Sendable {
        var offsets: Set<Int> = []
        public init() {}
    }

    /// The ranges of the gradient buffer that `zeroed`, as the last `gradient(_:into:zeroed:)` left
    /// it, says hold zeros: each unchosen expert's weight and bias, ascending. The probe skips
    /// scanning them (49–71 % of the demo attribute-routed MoE's gradient per mini-batch, 60 % on
    /// average, at the probe's defaults).
    public func zeroRanges(of zeroed: ZeroedExperts) -> [Range<Int>] {
        zeroed.offsets.flatMap { offset -> [Range<Int>] in
            guard let expert = mergedExperts[offset] else { return [] }
            return [expert.weight, expert.bias]
        }.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// The dense layers' four linear weights, keyed by offset: a laned backward writes them after
    /// the lanes join (`Encoder.backwardWeights`), never inside a lane.
    static func denseWeightRanges(_ config: ModelConfig, _ layout: ParameterLayout) -> [Int: Range<Int>] {
        let D = config.hiddenSize
        let F = config.ffnSize
        var ranges: [Int: Range<Int>] = [:]
        for o in layout.layers where o.moe == nil {
            for (offset, count) in [(o.qkvWeight, 3 * D * D), (o.outWeight, D * D), (o.fc1Weight, F * D), (o.fc2Weight, D * F)] {
                ranges[offset] = offset..<(offset + count)
            }
        }
        return ranges
    }

    /// Merged-routing experts (attribute, modality, task): weight and bias ranges, keyed by the
    /// weight's offset. Empty for dense models and the dispatched routings (their GEMMs accumulate).
    static func mergedExpertRanges(_ config: ModelConfig, _ table: ParameterTable) -> [Int: (weight: Range<Int>, bias: Range<Int>)] {
        guard config.routing != .none, !config.routing.isDataDependent else { return [:] }
        var byName: [String: Range<Int>] = [:]
        for entry in table.entries where entry.name.contains(".experts.") { byName[entry.name] = entry.range }
        var ranges: [Int: (weight: Range<Int>, bias: Range<Int>)] = [:]
        for (name, weight) in byName where name.hasSuffix(".weight") {
            let bias = byName[String(name.dropLast("weight".count)) + "bias"]!
            ranges[weight.lowerBound] = (weight, bias)
        }
        return ranges
    }

    /// A deliberately broken backward, so tests can show that the gradient checks catch a dropped
    /// term (house style: a check must be able to fail).
    enum BackwardAblation {
        case none
        /// Treat the encoded candidates as constants (the "detached targets" bug of §2.5).
        case detachTargets
    }

    func backward(
        _ pass: ForwardPass, into gradients: inout [Float], ablation: BackwardAblation,
        firstWrites: FirstWrites? = nil
    ) {
        precondition(gradients.count == parameters.count, "Model.backward: gradient buffer size \(gradients.count) ≠ \(parameters.count)")
        precondition(!pass.isPremerged, "Model.backward: a pass over pre-merged experts has no backward")
        let D = config.hiddenSize
        let R = pass.logits.inputs
        let K = pass.logits.candidates
        guard pass.counted > 0 else { return }
        withLaneBLAS { parameters.withUnsafeBufferPointer { values in
            gradients.withUnsafeMutableBufferPointer { grads in
                let P = ParameterPointers(values: values.baseAddress!)
                let G = GradientPointers(values: grads.baseAddress!, firstWrites: firstWrites)
                // The loss is a mean over counted rows: seed dLoss/dℓ_r = 1/counted.
                let dLogits = Buffer(R * K)
                pass.targets.withUnsafeBufferPointer { t in
                    crossEntropyBackward(
                        dLogits: dLogits.base, probs: pass.probs.base, targets: t.baseAddress!,
                        scale: 1 / Float(pass.counted), rows: R, classes: K,
                        labelSmoothing: pass.labelSmoothing)
                    if let columns = pass.columnProbs {
                        let dColumns = Buffer(K * R)
                        crossEntropyBackward(
                            dLogits: dColumns.base, probs: columns.base, targets: t.baseAddress!,
                            scale: 1 / Float(pass.counted), rows: K, classes: R,
                            labelSmoothing: pass.labelSmoothing)
                        for r in 0..<R { for k in 0..<K { dLogits.base[r * K + k] += dColumns.base[k * R + r] } }
                    }
                }
                let dInputUnit = Buffer(R * D)
                let dCandidateUnit = Buffer(K * D)
                pass.logits.backward(
                    dLogits: dLogits.base, u: pass.inputHead.unit.base, v: pass.candidateHead.unit.base,
                    width: D, dU: dInputUnit.base, dV: dCandidateUnit.base,
                    dLogScale: G(layout.logitScale[pass.task]!))
                let head = self.head
                let encoder = self.encoder
                let dInputHidden = Buffer(max(pass.inputPass.outputRowCount * D, 1))
                let dCandidateHidden = Buffer(max(pass.candidatePass.outputRowCount * D, 1))
                head.backward(pass.inputHead, dUnit: dInputUnit.base, dHidden: dInputHidden.base, P, G)
                var passes = [(pass.inputPass, dInputHidden)]
                if ablation != .detachTargets {
                    head.backward(pass.candidateHead, dUnit: dCandidateUnit.base, dHidden: dCandidateHidden.base, P, G)
                    passes.append((pass.candidatePass, dCandidateHidden))
                }
                // Lanes after the first accumulate into their own buffers (zeroed by their lane),
                // added once at the end.
                let laned = pass.isLaned
                // The lanes never write the merged experts (E× the rest) or the dense layers' linear
                // weights (written after the join): those ranges are skipped.
                let laneBuffers = laned ? (1..<max(lanes, 1)).map { _ in Buffer(uninitialized: grads.count) } : []
                let laneRanges = complement(
                    of: mergedExperts.values.flatMap { [$0.weight, $0.bias] } + (laned ? Array(denseWeights.values) : []),
                    in: 0..<grads.count)
                encoder.backward(passes, P, G, laneGradients: laneBuffers.map { ($0.base, $0.count) }, laneRanges: laneRanges)
                for lane in laneBuffers {
                    for r in laneRanges {
                        addInLanes(grads.baseAddress! + r.lowerBound, lane.base + r.lowerBound, count: r.count, lanes: max(lanes, 1))
                    }
                }
            }
        } }
    }

    /// Batch checks that would otherwise index out of range (ids, lengths, image shape).
    func check(_ batch: Batch) throws(ModelError) {
        let c = config
        let name = batch.task.rawValue
        func checkImages(_ images: Tensor, count: Int) throws(ModelError) {
            let expected = [count, c.channels, c.imageSize, c.imageSize]
            if images.shape != expected {
                throw .badBatch(task: name, reason: "images have shape \(images.shape), the model needs \(expected)")
            }
        }
        func checkTexts(_ texts: [[Int]], extra: Int = 0) throws(ModelError) {
            for text in texts {
                if text.isEmpty { throw .badBatch(task: name, reason: "empty token sequence") }
                if text.count + extra > c.maxTextLength {
                    throw .badBatch(task: name, reason: "text of \(text.count) tokens exceeds max_text_length \(c.maxTextLength)")
                }
                if let bad = text.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
                    throw .badBatch(task: name, reason: "token id \(bad) outside the vocabulary 0..<\(c.vocabSize)")
                }
            }
        }
        switch batch {
        case .imageClassification(let images, let labels, let classNames):
            try checkImages(images, count: labels.count)
            try checkTexts(classNames)
            if let bad = labels.first(where: { $0 < 0 || $0 >= classNames.count }) {
                throw .badBatch(task: name, reason: "label \(bad) outside 0..<\(classNames.count)")
            }
        case .mlm(let tokens, let labels):
            try checkTexts(tokens)
            if labels.count != tokens.count || zip(tokens, labels).contains(where: { $0.count != $1.count }) {
                throw .badBatch(task: name, reason: "labels do not match the token sequences")
            }
            if let bad = labels.joined().first(where: { $0 < -1 || $0 >= c.vocabSize }) {
                throw .badBatch(task: name, reason: "label \(bad) outside the vocabulary")
            }
        case .captioning(let images, let captions), .retrieval(let images, let captions):
            try checkImages(images, count: captions.count)
            try checkTexts(captions)
        }
    }
}

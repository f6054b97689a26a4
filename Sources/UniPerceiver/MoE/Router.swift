import Foundation
import Kernels

// Dimension letters: N rows (B·T), D width, E experts, k chosen experts (top-k), U routing units
// (segments, modalities, the task, samples or tokens: whatever shares one decision).

/// Gaussian noise on the gate logits while training (uniperceiver-model.md §5.2, policy 'vmoe':
/// σ = 1/E, one draw per unit and expert per call). Draws happen in a fixed order (input pass, then
/// candidate pass; layers in order; attention decision before FFN decision; units in order), so a
/// seeded generator reproduces a step.
public final class RoutingNoise {
    public var generator: SeededRNG
    public init(generator: SeededRNG) { self.generator = generator }
    public convenience init(seed: UInt64) { self.init(generator: SeededRNG(seed: seed)) }
}

/// One routing decision (the attention pair or the FFN pair of linears of one MoE layer, for one
/// encoded batch) and what its backward needs (official `task_moe/gate.py`, `TopKGate`).
final class RouteDecision {
    let units: Int
    let topK: Int
    let experts: Int
    /// Unit of each row `[N]`.
    let unitOfRow: [Int]
    /// Rows of each unit, ascending; filled for the data-independent routings, whose linears merge
    /// the chosen experts once per unit.
    let rowsOfUnit: [[Int]]
    /// Whether the experts compute on their rows (token, context) rather than merged per unit:
    /// such a decision keeps no rows per unit.
    var isDispatched: Bool { rowsOfUnit.isEmpty }
    /// Chosen experts `[U, k]`, best first, and their renormalised weights `[U, k]`.
    var chosen: [Int]
    var weights: [Float]
    /// softmax of the (noisy) logits `[U, E]`.
    let probs: Buffer
    /// What `wg` saw `[U, D]`.
    let gateInput: Buffer
    /// Attribute routing: `tag_transform.0` output before its LayerNorm `[U, D]`, the LN statistics,
    /// and the attribute vectors `[U, 8]`.
    var tagPre: Buffer? = nil, tagMean: Buffer? = nil, tagRstd: Buffer? = nil
    var attributes: [Float] = []
    /// Units that count for the balance loss and statistics (token routing: not padding).
    var unitValid: [Bool]
    /// Balance loss terms (token and context routing): `f_e` (no gradient) and the weighted loss.
    var top1Fraction: [Float] = []
    var balanceLoss: Double = 0

    /// The same choices over the compact rows of `rows` (row i is `rows.rows[i]`), for the linears of
    /// a layer that computes only some rows after attention. Merged routings only (their linears read
    /// `rowsOfUnit`, `chosen` and `weights`); the gate's backward keeps the whole decision.
    func restricted(to rows: QueryRows) -> RouteDecision {
        precondition(!rowsOfUnit.isEmpty, "RouteDecision.restricted: only merged routings keep rows per unit")
        let unitOfRow = rows.rows.map { self.unitOfRow[$0] }
        var rowsOfUnit = [[Int]](repeating: [], count: units)
        for (i, u) in unitOfRow.enumerated() { rowsOfUnit[u].append(i) }
        let d = RouteDecision(
            units: units, topK: topK, experts: experts, width: gateInput.count / max(units, 1),
            unitOfRow: unitOfRow, rowsOfUnit: rowsOfUnit)
        d.chosen = chosen
        d.weights = weights
        return d
    }

    init(units: Int, topK: Int, experts: Int, width: Int, unitOfRow: [Int], rowsOfUnit: [[Int]]) {
        self.units = units
        self.topK = topK
        self.experts = experts
        self.unitOfRow = unitOfRow
        self.rowsOfUnit = rowsOfUnit
        chosen = [Int](repeating: 0, count: units * topK)
        weights = [Float](repeating: 0, count: units * topK)
        probs = Buffer(units * experts)
        gateInput = Buffer(units * width)
        unitValid = [Bool](repeating: true, count: units)
    }
}

/// The gate of one decision point: builds the gate input `c` of each unit, scores it with `wg`,
/// picks the top-k experts and renormalises their probabilities; backward runs the chain in reverse.
/// ```
/// c      = LN(Linear_8→D(a))        attribute (gate.py: tag_transform)
///        = Emb[modality] / Emb[task] modality / task
///        = mean of the LN'd rows     context (valid positions of the sample)
///        = the LN'd row itself       token
/// logits = c · wgᵀ  (+ N(0, 1/E²) when training)     gate.py: wg, noisy gating
/// p      = softmax(logits); top-k on logits; g_j = p_j / Σ_chosen p    TopKGate (top2gating)
/// ```
struct Router {
    let routing: Routing
    let gate: GateOffsets
    let experts: Int
    let topK: Int
    let width: Int
    /// GShard balance loss weight (uniperceiver-model.md §5.4): `0.01 · E · Σ_e f_e · P_e`.
    static let balanceWeight: Float = 0.01

    init(config c: ModelConfig, gate: GateOffsets) {
        routing = c.routing
        self.gate = gate
        experts = c.numExperts
        topK = c.topK
        width = c.hiddenSize
    }

    /// The units of `seq` and which rows each holds, with the decision still empty.
    func layout(_ seq: SequenceBatch) -> RouteDecision {
        let N = seq.tokenCount
        let T = seq.length
        let unitOfRow: [Int]
        let U: Int
        switch routing {
        case .attribute:
            U = seq.segmentCount
            unitOfRow = seq.segment
        case .modality:
            U = Modality.allCases.count
            unitOfRow = seq.segment.map {
                AttributeVector.modality(task: seq.task, side: seq.side, segment: $0).rawValue
            }
        case .task:
            U = 1
            unitOfRow = [Int](repeating: 0, count: N)
        case .context:
            U = seq.batchSize
            unitOfRow = (0..<N).map { $0 / T }
        case .token, .none:
            U = N
            unitOfRow = Array(0..<N)
        }
        var rowsOfUnit: [[Int]] = []
        if !routing.isDataDependent {
            rowsOfUnit = [[Int]](repeating: [], count: U)
            for (row, u) in unitOfRow.enumerated() { rowsOfUnit[u].append(row) }
        }
        return RouteDecision(
            units: U, topK: topK, experts: experts, width: width, unitOfRow: unitOfRow, rowsOfUnit: rowsOfUnit)
    }

    /// The key of unit u under which pre-merged experts are stored: the attribute vector's bits,
    /// the modality or the task index (data-independent routings only).
    func unitKey(_ u: Int, _ seq: SequenceBatch) -> Int {
        switch routing {
        case .attribute: AttributeVector.key(AttributeVector.vector(task: seq.task, side: seq.side, segment: u))
        case .modality: u
        default: TaskKind.allCases.firstIndex(of: seq.task)!
        }
    }

    /// The decision of a data-independent routing (attribute, modality, task) for `seq`: the gate
    /// sees no hidden state, so it can be made before the encoder runs (`SharedRoutes`).
    func decideWithoutHiddenStates(_ seq: SequenceBatch, _ P: ParameterPointers, noise: RoutingNoise?) -> RouteDecision {
        precondition(!routing.isDataDependent, "Router: \(routing.rawValue) routing needs the hidden states")
        let d = layout(seq)
        switch routing {
        case .attribute:
            let vectors = (0..<d.units).map { AttributeVector.vector(task: seq.task, side: seq.side, segment: $0) }
            attributeGateInputs(d, vectors: vectors, P)
        case .modality:
            embeddingGateInputs(d, rows: Modality.allCases.map(\.rawValue), P)
        default:
            embeddingGateInputs(d, rows: [TaskKind.allCases.firstIndex(of: seq.task)!], P)
        }
        score(d, P, noise: noise)
        return d
    }

    /// The decision of `whole` (made by `decideWithoutHiddenStates` for a whole pass) for `slice`,
    /// a range of its sequences: the same units, experts and weights, the slice's rows.
    func slice(_ whole: RouteDecision, _ slice: SequenceBatch) -> RouteDecision {
        let d = layout(slice)
        precondition(d.units == whole.units, "Router.slice: \(d.units) units against \(whole.units)")
        d.chosen = whole.chosen
        d.weights = whole.weights
        return d
    }

    /// The decision for the rows `x [N, D]` (the LN'd input of the deciding linear) of `seq`.
    func decide(
        _ x: UnsafePointer<Float>, _ seq: SequenceBatch, _ P: ParameterPointers, noise: RoutingNoise?
    ) -> RouteDecision {
        if !routing.isDataDependent { return decideWithoutHiddenStates(seq, P, noise: noise) }
        let T = seq.length
        let D = width
        let d = layout(seq)
        let U = d.units
        let N = seq.tokenCount
        let c = d.gateInput.base
        switch routing {
        case .attribute, .modality, .task:
            preconditionFailure("unreachable: handled by decideWithoutHiddenStates")
        case .context:
            // Mean over the sample's valid positions (padding would make the decision depend on
            // the batch's longest text).
            for b in 0..<U {
                let cb = c + b * D
                var count = 0
                for t in 0..<T where seq.valid[b * T + t] {
                    let row = x + (b * T + t) * D
                    for i in 0..<D { cb[i] += row[i] }
                    count += 1
                }
                let inv = 1 / Float(max(count, 1))
                for i in 0..<D { cb[i] *= inv }
            }
        case .token, .none:
            c.update(from: x, count: N * D)
            d.unitValid = seq.valid
        }
        score(d, P, noise: noise)
        return d
    }

    /// Attribute gate inputs `c_u = LN(W_tag · a_u + b_tag)` (gate.py `tag_transform`).
    func attributeGateInputs(_ d: RouteDecision, vectors: [[Float]], _ P: ParameterPointers) {
        let U = d.units
        let D = width
        let A = AttributeVector.width
        d.attributes = vectors.flatMap { $0 }
        let pre = Buffer(U * D)
        let mean = Buffer(U)
        let rstd = Buffer(U)
        d.attributes.withUnsafeBufferPointer { a in
            linearForward(
                output: pre.base, input: a.baseAddress!, weight: P(gate.tagWeight), bias: P(gate.tagBias),
                rows: U, inFeatures: A, outFeatures: D)
        }
        layerNormForward(
            output: d.gateInput.base, mean: mean.base, rstd: rstd.base, input: pre.base,
            weight: P(gate.tagNormWeight), bias: P(gate.tagNormBias), rows: U, cols: D)
        d.tagPre = pre
        d.tagMean = mean
        d.tagRstd = rstd
    }

    /// Embedding gate inputs `c_u = Emb[rows[u]]` (modality or task routing).
    func embeddingGateInputs(_ d: RouteDecision, rows: [Int], _ P: ParameterPointers) {
        for (u, r) in rows.enumerated() {
            (d.gateInput.base + u * width).update(from: P(gate.embedding) + r * width, count: width)
        }
    }

    /// logits → (noise) → softmax → top-k → renormalised weights; the balance loss for the
    /// data-dependent routings.
    func score(_ d: RouteDecision, _ P: ParameterPointers, noise: RoutingNoise?) {
        let U = d.units
        let E = experts
        let k = topK
        let p = d.probs.base
        // logits = c · wgᵀ, computed in fp32 as gate.py does; over OpenBLAS's threading threshold from
        // batch 32 of token routing, hence single-threaded (as is the gate's backward).
        gemmSingleThreaded(
            transposeA: false, transposeB: true, m: U, n: E, k: width, a: d.gateInput.base, lda: width,
            b: P(gate.wg), ldb: width, beta: 0, c: p, ldc: E)
        if let noise {
            let sigma = 1 / Double(E)
            for i in 0..<(U * E) { p[i] += Float(sigma * noise.generator.nextGaussian()) }
        }
        softmaxForward(probs: p, logits: p, rows: U, cols: E)
        // Top-k on the (noisy) logits = top-k on their softmax (monotone); ties go to the lower
        // index, as torch.topk does on CPU.
        for u in 0..<U {
            let row = p + u * E
            var best = 0
            for e in 1..<E where row[e] > row[best] { best = e }
            d.chosen[u * k] = best
            if k == 2 {
                var second = best == 0 ? 1 : 0
                for e in 0..<E where e != best && row[e] > row[second] { second = e }
                d.chosen[u * k + 1] = second
            }
            var sum: Float = 0
            for j in 0..<k { sum += row[d.chosen[u * k + j]] }
            for j in 0..<k { d.weights[u * k + j] = row[d.chosen[u * k + j]] / sum }
        }
        if routing.isDataDependent {
            // GShard: L_aux = E · Σ_e f_e · P_e over the valid units, f_e = share of units whose top-1
            // is e (no gradient), P_e = mean gate probability of e.
            var f = [Float](repeating: 0, count: E)
            var meanP = [Double](repeating: 0, count: E)
            var count = 0
            for u in 0..<U where d.unitValid[u] {
                f[d.chosen[u * k]] += 1
                for e in 0..<E { meanP[e] += Double(p[u * E + e]) }
                count += 1
            }
            let n = Float(max(count, 1))
            for e in 0..<E { f[e] /= n }
            var loss = 0.0
            for e in 0..<E { loss += Double(f[e]) * meanP[e] / Double(n) }
            d.top1Fraction = f
            d.balanceLoss = Double(Router.balanceWeight) * Double(E) * loss
        }
    }

    /// Backward from `dWeights [U, k]` (Double; the gradient of the renormalised weights, summed over the
    /// linears sharing the decision) plus the balance loss: renormalisation → softmax → `wg` → gate
    /// input. **Accumulates** into the gate parameters and, for token and context routing, into
    /// `dInput [N, D]` (the gradient of the LN'd rows the gate saw).
    func backward(
        _ d: RouteDecision, dWeights: [Double], dInput: UnsafeMutablePointer<Float>, _ seq: SequenceBatch,
        _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let U = d.units
        let E = experts
        let k = topK
        let D = width
        let p = d.probs.base
        // In Double: with top-2, ∂L/∂logit is g1·g2·(∂L/∂g1 − ∂L/∂g2), a small difference of two
        // large sums, and Float here would cost three digits of the gate's gradient.
        var dProbs = [Double](repeating: 0, count: U * E)
        // g_j = p_j / S, S = Σ_chosen p: ∂L/∂p_i = (∂L/∂g_i − Σ_j ∂L/∂g_j · g_j) / S (chosen i only).
        for u in 0..<U {
            var sum = 0.0
            var dot = 0.0
            for j in 0..<k {
                sum += Double(p[u * E + d.chosen[u * k + j]])
                dot += dWeights[u * k + j] * Double(d.weights[u * k + j])
            }
            for j in 0..<k { dProbs[u * E + d.chosen[u * k + j]] += (dWeights[u * k + j] - dot) / sum }
        }
        if routing.isDataDependent {
            let valid = d.unitValid.filter { $0 }.count
            let scale = Double(Router.balanceWeight) * Double(E) / Double(max(valid, 1))
            for u in 0..<U where d.unitValid[u] {
                for e in 0..<E { dProbs[u * E + e] += scale * Double(d.top1Fraction[e]) }
            }
        }
        // softmax backward: dz_e = p_e · (dp_e − Σ_f p_f · dp_f).
        let dLogits = Buffer(U * E)
        for u in 0..<U {
            var dot = 0.0
            for e in 0..<E { dot += Double(p[u * E + e]) * dProbs[u * E + e] }
            for e in 0..<E { dLogits.base[u * E + e] = Float(Double(p[u * E + e]) * (dProbs[u * E + e] - dot)) }
        }
        // logits = c · wgᵀ: dwg += dLogitsᵀ · c, dc = dLogits · wg.
        let dc = Buffer(U * D)
        gemmSingleThreaded(
            transposeA: true, transposeB: false, m: E, n: D, k: U, a: dLogits.base, lda: E,
            b: d.gateInput.base, ldb: D, beta: 1, c: G(gate.wg), ldc: D)
        gemmSingleThreaded(
            transposeA: false, transposeB: false, m: U, n: D, k: E, a: dLogits.base, lda: E,
            b: P(gate.wg), ldb: D, beta: 0, c: dc.base, ldc: D)
        switch routing {
        case .attribute:
            let dPre = Buffer(U * D)
            layerNormBackward(
                dInput: dPre.base, dWeight: G(gate.tagNormWeight), dBias: G(gate.tagNormBias),
                dOutput: dc.base, input: d.tagPre!.base, weight: P(gate.tagNormWeight),
                mean: d.tagMean!.base, rstd: d.tagRstd!.base, rows: U, cols: D)
            d.attributes.withUnsafeBufferPointer { a in
                linearBackward(
                    dInput: nil, dWeight: G(gate.tagWeight), dBias: G(gate.tagBias), dOutput: dPre.base,
                    input: a.baseAddress!, weight: P(gate.tagWeight), rows: U,
                    inFeatures: AttributeVector.width, outFeatures: D)
            }
        case .modality, .task:
            let rows = routing == .modality
                ? Modality.allCases.map(\.rawValue) : [TaskKind.allCases.firstIndex(of: seq.task)!]
            for (u, r) in rows.enumerated() {
                let dst = G(gate.embedding) + r * D
                for i in 0..<D { dst[i] += dc.base[u * D + i] }
            }
        case .context:
            let T = seq.length
            for b in 0..<U {
                let rows = (0..<T).filter { seq.valid[b * T + $0] }
                let inv = 1 / Float(max(rows.count, 1))
                for t in rows {
                    let dst = dInput + (b * T + t) * D
                    for i in 0..<D { dst[i] += inv * dc.base[b * D + i] }
                }
            }
        case .token, .none:
            for i in 0..<(U * D) { dInput[i] += dc.base[i] }
        }
    }
}

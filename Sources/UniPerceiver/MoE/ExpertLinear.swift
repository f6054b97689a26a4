import Kernels

// Dimension letters: N rows, I input features, O output features, E experts, k chosen experts,
// U routing units. Every expert has PyTorch `[O, I]` weights and its own bias.

/// One MoE-ised linear: `y_r = Σ_j g_{u(r),j} · (W_{e_j} · x_r + b_{e_j})` with the decision
/// (`e_j`, `g_j`) of the row's unit (official `task_moe/experts.py`, `layer.py`).
///
/// Two ways to compute it, chosen by the routing:
/// * **merged** (attribute, modality, task — one decision per unit of many rows): merge once per
///   unit, `W_u = Σ_j g_j W_{e_j}`, `b_u = Σ_j g_j b_{e_j}`, then one dense GEMM on the unit's rows
///   (experts.py merges per segment exactly this way; the cost is a dense layer's);
/// * **dispatched** (token, context): group the rows per expert, one GEMM per expert on the gathered
///   rows, scatter-add the weighted outputs.
struct ExpertLinear {
    let experts: ExpertOffsets
    let inFeatures: Int
    let outFeatures: Int

    final class Cache {
        /// Merged: `W_u [U, O, I]` and `b_u [U, O]`. Dispatched: each chosen expert's output
        /// `[N, k, O]` (needed for the gradient of its gate weight).
        var merged: Buffer? = nil
        var mergedBias: Buffer? = nil
        var expertOutputs: Buffer? = nil
    }

    /// `output [N, O]` (overwritten) from `input [N, I]`. `premerged(u)`, when given, supplies the
    /// merged weight and bias of unit u instead of merging (pre-merged inference).
    func forward(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows N: Int,
        decision d: RouteDecision, _ P: ParameterPointers,
        premerged: ((Int) -> (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>))? = nil
    ) -> Cache {
        let cache = Cache()
        if d.rowsOfUnit.isEmpty {
            forwardDispatched(output: output, input: input, rows: N, decision: d, P, cache: cache)
            return cache
        }
        let I = inFeatures
        let O = outFeatures
        if premerged == nil {
            // Every used unit's slice is overwritten by `merge` (unused units are never read).
            cache.merged = Buffer(uninitialized: d.units * O * I)
            cache.mergedBias = Buffer(uninitialized: d.units * O)
        }
        for u in 0..<d.units where !d.rowsOfUnit[u].isEmpty {
            let weight: UnsafePointer<Float>
            let bias: UnsafePointer<Float>
            if let premerged {
                (weight, bias) = premerged(u)
            } else {
                let w = cache.merged!.base + u * O * I
                let b = cache.mergedBias!.base + u * O
                merge(weight: w, bias: b, unit: u, decision: d, P)
                (weight, bias) = (UnsafePointer(w), UnsafePointer(b))
            }
            let rows = d.rowsOfUnit[u]
            if rows.count == N {
                // The unit covers the whole batch (every single-segment sequence): no gather.
                linearForward(
                    output: output, input: input, weight: weight, bias: bias, rows: N, inFeatures: I,
                    outFeatures: O)
            } else {
                let x = gather(input, rows: rows, width: I)
                let y = Buffer(uninitialized: rows.count * O)
                linearForward(
                    output: y.base, input: x.base, weight: weight, bias: bias, rows: rows.count,
                    inFeatures: I, outFeatures: O)
                for (i, r) in rows.enumerated() { (output + r * O).update(from: y.base + i * O, count: O) }
            }
        }
        return cache
    }

    /// `W_u = Σ_j g_j W_{e_j}`, `b_u = Σ_j g_j b_{e_j}` (experts.py: the weighted sum of the chosen
    /// experts' parameters, once per segment), overwriting `weight` and `bias`.
    func merge(
        weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>, unit u: Int,
        decision d: RouteDecision, _ P: ParameterPointers
    ) {
        let k = d.topK
        let chosen = (0..<k).map { d.chosen[u * k + $0] }
        let gates = (0..<k).map { d.weights[u * k + $0] }
        expertMerge(
            merged: weight, experts: chosen.map { P(experts.weights[$0]) }, gates: gates,
            count: outFeatures * inFeatures)
        expertMerge(merged: bias, experts: chosen.map { P(experts.biases[$0]) }, gates: gates, count: outFeatures)
    }

    private func forwardDispatched(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows N: Int,
        decision d: RouteDecision, _ P: ParameterPointers, cache: Cache
    ) {
        let I = inFeatures
        let O = outFeatures
        let k = d.topK
        let outputs = Buffer(N * k * O)
        output.update(repeating: 0, count: N * O)
        for (e, slots) in dispatch(d, rows: N).enumerated() where !slots.isEmpty {
            let x = gather(input, rows: slots.map(\.row), width: I)
            let y = Buffer(slots.count * O)
            linearForward(
                output: y.base, input: x.base, weight: P(experts.weights[e]), bias: P(experts.biases[e]),
                rows: slots.count, inFeatures: I, outFeatures: O)
            for (i, slot) in slots.enumerated() {
                let src = y.base + i * O
                (outputs.base + (slot.row * k + slot.j) * O).update(from: src, count: O)
                let g = d.weights[d.unitOfRow[slot.row] * k + slot.j]
                let dst = output + slot.row * O
                for o in 0..<O { dst[o] += g * src[o] }
            }
        }
        cache.expertOutputs = outputs
    }

    /// Backward: **accumulates** into the chosen experts' gradients, `dInput [N, I]` and
    /// `dWeights [U, k]` (the gradient of each unit's renormalised gate weights, in Double: the gate's
    /// gradient is a small difference of these, see `Router.backward`).
    ///
    /// Merged: `dW_u = dYᵀ·X`, `db_u = Σ dY` over the unit's rows; `dX += dY·W_u`;
    /// `dW_e += g_j·dW_u`, `db_e += g_j·db_u`; `dg_j += ⟨dW_u, W_e⟩ + ⟨db_u, b_e⟩`.
    /// Dispatched: per expert, `dY_e = g·dY` on its rows through the expert's linear backward, and
    /// `dg_j += ⟨dy_r, W_e·x_r + b_e⟩`.
    func backward(
        _ cache: Cache, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>,
        input: UnsafePointer<Float>, rows N: Int, decision d: RouteDecision, dWeights: inout [Double],
        _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let I = inFeatures
        let O = outFeatures
        let k = d.topK
        if d.rowsOfUnit.isEmpty {
            let outputs = cache.expertOutputs!.base
            for (e, slots) in dispatch(d, rows: N).enumerated() where !slots.isEmpty {
                let x = gather(input, rows: slots.map(\.row), width: I)
                let dy = Buffer(slots.count * O)
                for (i, slot) in slots.enumerated() {
                    let u = d.unitOfRow[slot.row]
                    let g = d.weights[u * k + slot.j]
                    let src = dOutput + slot.row * O
                    let ye = outputs + (slot.row * k + slot.j) * O
                    var dot = 0.0
                    for o in 0..<O {
                        dy.base[i * O + o] = g * src[o]
                        dot += Double(src[o]) * Double(ye[o])
                    }
                    dWeights[u * k + slot.j] += dot
                }
                let dx = Buffer(slots.count * I)
                linearBackward(
                    dInput: dx.base, dWeight: G(experts.weights[e]), dBias: G(experts.biases[e]),
                    dOutput: dy.base, input: x.base, weight: P(experts.weights[e]), rows: slots.count,
                    inFeatures: I, outFeatures: O)
                for (i, slot) in slots.enumerated() {
                    let dst = dInput + slot.row * I
                    let src = dx.base + i * I
                    for c in 0..<I { dst[c] += src[c] }
                }
            }
            return
        }
        // dW_u and db_u are written whole by each unit (GEMM with beta = 0, column sums from 0), so
        // the scratch is neither zero-filled at allocation nor between units.
        let dW = Buffer(uninitialized: O * I)
        let db = Buffer(uninitialized: O)
        for u in 0..<d.units where !d.rowsOfUnit[u].isEmpty {
            let rows = d.rowsOfUnit[u]
            let weight = cache.merged!.base + u * O * I
            if rows.count == N {
                // The unit covers the whole batch: no gather, dX accumulates in place.
                unitBackward(
                    dWeight: dW.base, dBias: db.base, dInput: dInput, dInputBeta: 1, dOutput: dOutput,
                    input: input, merged: weight, rows: N)
            } else {
                let x = gather(input, rows: rows, width: I)
                let dy = gather(dOutput, rows: rows, width: O)
                let dx = Buffer(uninitialized: rows.count * I)
                unitBackward(
                    dWeight: dW.base, dBias: db.base, dInput: dx.base, dInputBeta: 0, dOutput: dy.base,
                    input: x.base, merged: weight, rows: rows.count)
                for (i, r) in rows.enumerated() { axpy(count: I, alpha: 1, x: dx.base + i * I, y: dInput + r * I) }
            }
            // dW_e += g_j·dW_u, db_e += g_j·db_u; ∂L/∂g_j += ⟨dW_u, W_e⟩ + ⟨db_u, b_e⟩.
            let chosen = (0..<k).map { d.chosen[u * k + $0] }
            let gates = (0..<k).map { d.weights[u * k + $0] }
            let dotW = expertMergeBackward(
                dExperts: chosen.map { G(experts.weights[$0]) }, dMerged: dW.base,
                experts: chosen.map { P(experts.weights[$0]) }, gates: gates, count: O * I)
            let dotB = expertMergeBackward(
                dExperts: chosen.map { G(experts.biases[$0]) }, dMerged: db.base,
                experts: chosen.map { P(experts.biases[$0]) }, gates: gates, count: O)
            for j in 0..<k { dWeights[u * k + j] += dotW[j] + dotB[j] }
        }
    }

    /// One merged unit's linear backward on `rows` rows: `dW_u = dYᵀ·X` and `db_u = Σ_rows dY`
    /// **overwritten** (they are scratch, split among the chosen experts afterwards), and
    /// `dX = dY·W_u + dInputBeta·dX` (1: accumulate into the layer's dX; 0: a gathered scratch).
    private func unitBackward(
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, dInputBeta: Float, dOutput: UnsafePointer<Float>,
        input: UnsafePointer<Float>, merged: UnsafePointer<Float>, rows R: Int
    ) {
        let I = inFeatures
        let O = outFeatures
        gemm(
            transposeA: true, transposeB: false, m: O, n: I, k: R, a: dOutput, lda: O, b: input, ldb: I,
            beta: 0, c: dWeight, ldc: I)
        dBias.update(from: dOutput, count: O)
        for r in 1..<R {
            let row = dOutput + r * O
            for o in 0..<O { dBias[o] += row[o] }
        }
        gemm(
            transposeA: false, transposeB: false, m: R, n: I, k: O, a: dOutput, lda: O, b: merged, ldb: I,
            beta: dInputBeta, c: dInput, ldc: I)
    }

    /// For each expert, the (row, slot j) pairs routed to it, rows ascending.
    private func dispatch(_ d: RouteDecision, rows N: Int) -> [[(row: Int, j: Int)]] {
        var lists = [[(row: Int, j: Int)]](repeating: [], count: experts.weights.count)
        let k = d.topK
        for r in 0..<N {
            let u = d.unitOfRow[r]
            for j in 0..<k { lists[d.chosen[u * k + j]].append((r, j)) }
        }
        return lists
    }

    private func gather(_ source: UnsafePointer<Float>, rows: [Int], width: Int) -> Buffer {
        let out = Buffer(rows.count * width)
        for (i, r) in rows.enumerated() { (out.base + i * width).update(from: source + r * width, count: width) }
        return out
    }
}

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
///   rows, scatter-add the weighted outputs; each loop over the experts runs once in lanes, each
///   lane a share of every expert's columns (`inExpertLanes`).
struct ExpertLinear {
    /// Where a GELU epilogue writes (`forward(…activation:)`): the activation and its slope, both
    /// `[N, O]`, as `geluForward` would from the whole output.
    struct GELUOutput {
        let output: UnsafeMutablePointer<Float>
        let slope: UnsafeMutablePointer<Float>
    }

    let experts: ExpertOffsets
    let inFeatures: Int
    let outFeatures: Int

    final class Cache {
        /// Merged: `W_u [U, O, I]` and `b_u [U, O]`.
        var merged: Buffer? = nil
        var mergedBias: Buffer? = nil
        /// Dispatched: the N·k (row, slot) pairs grouped by expert, the gathered input rows
        /// `[N·k, I]` in that order (backward's `dW_e = dYᵀ·X` reads them again) and each expert's
        /// output `[N·k, O]` (needed for the gradient of its gate weight).
        var dispatch: Dispatch? = nil
        var gatheredInput: Buffer? = nil
        var expertOutputs: Buffer? = nil
        /// Dispatched with a GELU epilogue (`forward(…activation:)`): the activation's rows gathered
        /// in slot order, the next linear's input when it reuses this decision (FFN `dense2`).
        var gatheredActivation: Buffer? = nil
        /// Merged, in one lane of a laned pass (`SharedRoutes`): this lane's share of each unit's
        /// `db_u [U, O]`, accumulated by `backward` instead of updating the experts, which
        /// `mergeBackward` does once for the whole pass.
        var partialBias: Buffer? = nil
        /// Merged, in one lane of a laned pass: per unit, the lane's `dY` and `X` rows of
        /// `dW_u = dYᵀ·X` (nil: no rows in this lane). `backward` leaves `dW_u` to `mergeBackward`,
        /// which computes it once over every lane's rows after the join, as `Encoder.backwardWeights`
        /// does for dense linears: no per-lane `[U, O, I]` share to zero, fill and add.
        var deferredRows: [DeferredRows?] = []
        /// True in a lane of a laned pass (see `partialBias`).
        var isLaneShare: Bool { partialBias != nil }
    }

    /// One lane's rows of a merged unit for `dW_u = dYᵀ·X`. The pointers are the layer's own
    /// buffers when the unit covers every row (kept alive by the block cache: its linear inputs and
    /// `weightGradientOutputs`), or the gathered copies `keep` holds.
    struct DeferredRows {
        let dY: UnsafePointer<Float>
        let x: UnsafePointer<Float>
        let rows: Int
        let keep: [Buffer]
    }

    /// The rows routed to each expert as one flat list: slot s holds row `rows[s]` in its top-k
    /// place `places[s]`; expert e owns slots `start[e]..<start[e + 1]`, rows ascending.
    struct Dispatch {
        let rows: [Int]
        let places: [Int]
        let start: [Int]
        /// Row r's slots in slot (= expert) order: `slotsOfRow[r·k ..< r·k + k]`.
        let slotsOfRow: [Int]
    }

    /// `output [N, O]` (overwritten) from `input [N, I]`. `premerged(u)`, when given, supplies the
    /// merged weight and bias of unit u instead of merging (pre-merged inference, or a lane of a
    /// laned pass, which also passes its `laneCache`).
    ///
    /// Dispatched only (token, context): `activation` also writes GELU of the output and its slope
    /// (`geluForward`), each lane on its own columns right after combining them, and keeps the
    /// activation gathered in slot order (`Cache.gatheredActivation`); `gathered` is such a buffer
    /// for this linear's input, made by the previous linear under the same decision, so its rows
    /// need not be gathered again (FFN `dense` → GELU → `dense2`).
    func forward(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows N: Int,
        decision d: RouteDecision, _ P: ParameterPointers,
        premerged: ((Int) -> (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>))? = nil,
        cache given: Cache? = nil, activation: GELUOutput? = nil, gathered: Buffer? = nil
    ) -> Cache {
        let cache = given ?? Cache()
        if d.isDispatched {
            forwardDispatched(
                output: output, input: input, rows: N, decision: d, P, cache: cache, activation: activation,
                gathered: gathered)
            return cache
        }
        precondition(activation == nil && gathered == nil, "ExpertLinear.forward: a GELU epilogue is for dispatched routing only")
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

    /// A cache holding every unit's merged weights and bias for `d` (units without rows skipped),
    /// shared by the lanes of a pass (`SharedRoutes`).
    func mergeUnits(_ d: RouteDecision, _ P: ParameterPointers) -> Cache {
        let cache = Cache()
        let O = outFeatures
        let I = inFeatures
        cache.merged = Buffer(uninitialized: d.units * O * I)
        cache.mergedBias = Buffer(uninitialized: d.units * O)
        for u in 0..<d.units where !d.rowsOfUnit[u].isEmpty {
            merge(weight: cache.merged!.base + u * O * I, bias: cache.mergedBias!.base + u * O, unit: u, decision: d, P)
        }
        return cache
    }

    /// A lane's cache over `shared`'s merged weights, with a zeroed share of `db_u` for `backward` to
    /// accumulate into and room for its rows of `dW_u`.
    func laneCache(sharing shared: Cache, units: Int) -> Cache {
        let cache = Cache()
        cache.merged = shared.merged
        cache.mergedBias = shared.mergedBias
        cache.partialBias = Buffer(units * outFeatures)
        cache.deferredRows = [DeferredRows?](repeating: nil, count: units)
        return cache
    }

    /// The merge-backward of a laned pass (`partials`: one cache per lane part, in part order). Per
    /// unit of the whole pass's decision `d`: `dW_u = Σ_parts dYᵀ·X` over every part's rows, `db_u`
    /// the sum of the parts' shares; then the chosen experts' gradients and `∂L/∂g_j` into
    /// `dWeights` — what `backward` does in one lane. Parts are summed in order, so the result does
    /// not depend on which lane ran them.
    func mergeBackward(
        partials: [Cache], decision d: RouteDecision, overwrite: [[Bool]], dWeights: inout [Double],
        _ P: ParameterPointers, _ G: GradientPointers
    ) {
        let O = outFeatures
        let I = inFeatures
        guard let first = partials.first else { return }
        let dW = Buffer(uninitialized: O * I)
        for u in 0..<d.units where !d.rowsOfUnit[u].isEmpty {
            // Zeroed, then GEMM with beta = 1: beta = 0 makes OpenBLAS run its slower scalar zeroing.
            dW.zero()
            for part in partials {
                guard let share = part.deferredRows[u] else { continue }
                gemm(
                    transposeA: true, transposeB: false, m: O, n: I, k: share.rows, a: share.dY, lda: O,
                    b: share.x, ldb: I, beta: 1, c: dW.base, ldc: I)
            }
            let db = first.partialBias!.base + u * O
            for other in partials.dropFirst() { addInLanes(db, other.partialBias!.base + u * O, count: O, lanes: 1) }
            distribute(
                dMerged: dW.base, dMergedBias: db, unit: u, decision: d, overwrite: overwrite[u], dWeights: &dWeights, P, G)
        }
    }

    /// The first-write claims `mergeBackward` will use, per unit with rows (see `Model.gradient`),
    /// made in unit order before any lane runs: the claim set is not shared across threads.
    func claimFirstWrites(_ d: RouteDecision, _ G: GradientPointers) -> [[Bool]] {
        let k = d.topK
        return (0..<d.units).map { u in
            d.rowsOfUnit[u].isEmpty ? [] : (0..<k).map { G.claimFirstWrite(experts.weights[d.chosen[u * k + $0]]) }
        }
    }

    /// `dW_e += g_j·dW_u`, `db_e += g_j·db_u` (an expert's first write overwrites, see
    /// `Model.gradient`); `∂L/∂g_j += ⟨dW_u, W_e⟩ + ⟨db_u, b_e⟩`.
    private func distribute(
        dMerged dW: UnsafePointer<Float>, dMergedBias db: UnsafePointer<Float>, unit u: Int,
        decision d: RouteDecision, overwrite: [Bool]? = nil, dWeights: inout [Double], _ P: ParameterPointers,
        _ G: GradientPointers
    ) {
        let k = d.topK
        let chosen = (0..<k).map { d.chosen[u * k + $0] }
        let gates = (0..<k).map { d.weights[u * k + $0] }
        let overwrite = overwrite ?? chosen.map { G.claimFirstWrite(experts.weights[$0]) }
        let dotW = expertMergeBackward(
            dExperts: chosen.map { G(experts.weights[$0]) }, dMerged: dW,
            experts: chosen.map { P(experts.weights[$0]) }, gates: gates, count: outFeatures * inFeatures,
            overwrite: overwrite)
        let dotB = expertMergeBackward(
            dExperts: chosen.map { G(experts.biases[$0]) }, dMerged: db,
            experts: chosen.map { P(experts.biases[$0]) }, gates: gates, count: outFeatures, overwrite: overwrite)
        for j in 0..<k { dWeights[u * k + j] += dotW[j] + dotB[j] }
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

    /// Dispatched forward: the routed rows are gathered once, grouped by expert, so each expert is
    /// one GEMM over contiguous rows whose output lands where backward reads it (no copies); then
    /// each row adds its experts' outputs weighted by their gate weights, in expert order.
    private func forwardDispatched(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows N: Int,
        decision d: RouteDecision, _ P: ParameterPointers, cache: Cache, activation: GELUOutput?, gathered: Buffer?
    ) {
        let I = inFeatures
        let O = outFeatures
        let k = d.topK
        let plan = dispatch(d, rows: N)
        let S = plan.rows.count
        let y = Buffer(uninitialized: S * O)
        let x: Buffer
        if let gathered {
            precondition(gathered.count == S * I, "ExpertLinear.forward: gathered input of \(gathered.count) values, not \(S)×\(I)")
            x = gathered
        } else {
            x = Buffer(uninitialized: S * I)
            for (s, r) in plan.rows.enumerated() { (x.base + s * I).update(from: input + r * I, count: I) }
        }
        let nextInput = activation.map { _ in Buffer(uninitialized: S * O) }
        // Every expert's product in one set of lanes, each lane a share of every expert's output
        // features (`inExpertLanes`), which it then combines: no other lane's columns are needed.
        Self.inExpertLanes { lane, lanes in
            let columns = laneColumns(O, lane: lane, of: lanes)
            let (c0, n) = (columns.lowerBound, columns.count)
            for e in 0..<experts.weights.count where plan.start[e] < plan.start[e + 1] {
                let first = plan.start[e]
                linearForward(
                    output: y.base + first * O, input: x.base + first * I, weight: P(experts.weights[e]),
                    bias: P(experts.biases[e]), rows: plan.start[e + 1] - first, inFeatures: I, outFeatures: O,
                    columns: columns)
            }
            guard n > 0 else { return }
            // Each row's outputs summed in expert order, written once (top-2: one fused pass).
            for r in 0..<N {
                let slots = plan.slotsOfRow[(r * k)..<(r * k + k)]
                let u = d.unitOfRow[r]
                let out = output + r * O + c0
                if k == 2 {
                    let (s0, s1) = (slots[r * k], slots[r * k + 1])
                    weightedPairSum(
                        output: out, y.base + s0 * O + c0, d.weights[u * k + plan.places[s0]], y.base + s1 * O + c0,
                        d.weights[u * k + plan.places[s1]], count: n)
                } else {
                    out.update(repeating: 0, count: n)
                    for s in slots {
                        axpy(count: n, alpha: d.weights[u * k + plan.places[s]], x: y.base + s * O + c0, y: out)
                    }
                }
                guard let activation, let nextInput else { continue }
                let a = activation.output + r * O + c0
                geluForward(output: a, slope: activation.slope + r * O + c0, input: out, count: n)
                for s in slots { (nextInput.base + s * O + c0).update(from: a, count: n) }
            }
        }
        cache.dispatch = plan
        cache.gatheredInput = x
        cache.expertOutputs = y
        cache.gatheredActivation = nextInput
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
        if d.isDispatched {
            // Dispatched: per slot, dY_s = g·dY_row and ∂L/∂g += ⟨dY_row, y_s⟩ (Double, as in the
            // merged path); per expert, dX_s = dY_s·W_e into a slot-ordered scratch, dW_e += dY_sᵀ·X_s
            // and db_e += Σ dY_s over its contiguous slots; then dX rows are scattered back.
            let plan = cache.dispatch!
            let x = cache.gatheredInput!.base
            let y = cache.expertOutputs!.base
            let S = plan.rows.count
            let dy = Buffer(uninitialized: S * O)
            for s in 0..<S {
                let r = plan.rows[s]
                let u = d.unitOfRow[r]
                let g = d.weights[u * k + plan.places[s]]
                dWeights[u * k + plan.places[s]] += expertRowBackward(
                    output: dy.base + s * O, dOutput: dOutput + r * O, gate: g, expertOutput: y + s * O,
                    count: O)
            }
            // Every expert's dX slots are written whole by its own product: overwritten where the
            // unpacked kernel computes them; zeroed for BLAS, whose beta = 0 runs a slower zeroing pass.
            let overwrite = LinearKernel.active == .unpacked
            let dx = overwrite ? Buffer(uninitialized: S * I) : Buffer(S * I)
            Self.inExpertLanes { lane, lanes in
                // This lane's share of every expert's input features (dX) and output features (dW, db).
                let inputs = laneColumns(I, lane: lane, of: lanes)
                let outputs = laneColumns(O, lane: lane, of: lanes)
                for e in 0..<experts.weights.count where plan.start[e] < plan.start[e + 1] {
                    let first = plan.start[e]
                    let R = plan.start[e + 1] - first
                    let dye = dy.base + first * O
                    linearInputGradient(
                        dInput: dx.base + first * I, dOutput: dye, weight: P(experts.weights[e]), rows: R,
                        inFeatures: I, outFeatures: O, columns: inputs, accumulate: !overwrite)
                    guard !outputs.isEmpty else { continue }
                    linearWeightGradient(
                        dWeight: G(experts.weights[e]), dOutput: dye, input: x + first * I, rows: R,
                        inFeatures: I, outFeatures: O, outputs: outputs, accumulate: true)
                    addRows(
                        into: G(experts.biases[e]) + outputs.lowerBound, rows: dye + outputs.lowerBound, count: R,
                        width: outputs.count, stride: O)
                }
                // This lane's columns of every slot's dX are done: added back to their rows.
                let (i0, n) = (inputs.lowerBound, inputs.count)
                guard n > 0 else { return }
                for r in 0..<N {
                    let slots = plan.slotsOfRow[(r * k)..<(r * k + k)]
                    if k == 2 {
                        addPair(
                            into: dInput + r * I + i0, dx.base + slots[r * k] * I + i0, dx.base + slots[r * k + 1] * I + i0,
                            count: n)
                    } else {
                        for s in slots { addRows(into: dInput + r * I + i0, rows: dx.base + s * I + i0, count: 1, width: n) }
                    }
                }
            }
            return
        }
        // dW_u accumulates into zeroed scratch (GEMM beta = 1): with beta = 0 OpenBLAS first runs
        // its scalar `sgemm_beta` zeroing pass, which the profile showed at 3× the cost of memset.
        // db_u is written whole (column sums from the first row). In a lane of a laned pass, the
        // unit's rows are kept for `mergeBackward` instead and db_u is added to the lane's share.
        let lane = cache.isLaneShare
        let dW = Buffer(lane ? 0 : O * I)
        let db = Buffer(uninitialized: O)
        var dWIsZero = true
        for u in 0..<d.units where !d.rowsOfUnit[u].isEmpty {
            let rows = d.rowsOfUnit[u]
            if !lane && !dWIsZero { dW.zero() }
            dWIsZero = false
            let dWeight = lane ? nil : dW.base
            let weight = cache.merged!.base + u * O * I
            if rows.count == N {
                // The unit covers the whole batch: no gather, dX accumulates in place.
                unitBackward(
                    dWeight: dWeight, dBias: db.base, dInput: dInput, dOutput: dOutput,
                    input: input, merged: weight, rows: N)
                if lane { cache.deferredRows[u] = DeferredRows(dY: dOutput, x: input, rows: N, keep: []) }
            } else {
                let x = gather(input, rows: rows, width: I)
                let dy = gather(dOutput, rows: rows, width: O)
                let dx = Buffer(rows.count * I)
                unitBackward(
                    dWeight: dWeight, dBias: db.base, dInput: dx.base, dOutput: dy.base,
                    input: x.base, merged: weight, rows: rows.count)
                for (i, r) in rows.enumerated() { axpy(count: I, alpha: 1, x: dx.base + i * I, y: dInput + r * I) }
                if lane {
                    cache.deferredRows[u] = DeferredRows(dY: dy.base, x: x.base, rows: rows.count, keep: [dy, x])
                }
            }
            if let share = cache.partialBias {
                axpy(count: O, alpha: 1, x: db.base, y: share.base + u * O)
            } else {
                distribute(dMerged: dW.base, dMergedBias: db.base, unit: u, decision: d, dWeights: &dWeights, P, G)
            }
        }
    }

    /// One merged unit's linear backward on `rows` rows: `dW_u += dYᵀ·X` into zeroed scratch (nil:
    /// left to `mergeBackward`) and `db_u = Σ_rows dY` **overwritten** (both are split among the
    /// chosen experts afterwards), and `dX += dY·W_u` (the layer's dX, or zeroed scratch for
    /// gathered rows).
    private func unitBackward(
        dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>,
        input: UnsafePointer<Float>, merged: UnsafePointer<Float>, rows R: Int
    ) {
        let I = inFeatures
        let O = outFeatures
        if let dWeight {
            // Shares in lanes on single-threaded BLAS, as `linearBackward` does (`splitOutputs`).
            splitOutputs(O, rows: R, inner: I) { outputs in
                linearWeightGradient(
                    dWeight: dWeight, dOutput: dOutput, input: input, rows: R, inFeatures: I, outFeatures: O,
                    outputs: outputs, accumulate: true)
            }
        }
        dBias.update(from: dOutput, count: O)
        for r in 1..<R {
            let row = dOutput + r * O
            for o in 0..<O { dBias[o] += row[o] }
        }
        linearInputGradient(dInput: dInput, dOutput: dOutput, weight: merged, rows: R, inFeatures: I, outFeatures: O)
    }

    /// Tests pin `inExpertLanes`'s lane count: OpenBLAS's thread count is process-wide, and tests
    /// running beside each other change it (every laned forward pass sets it to 1 while it runs).
    @TaskLocal static var lanesForTesting: Int? = nil

    /// Runs `body(lane, lanes)` for the dispatched path's expert loops: one lane per OpenBLAS thread,
    /// on single-threaded BLAS, when OpenBLAS runs several here (so not inside a lane of the
    /// encoder), each lane a share of every expert's columns; else once, inline. One wake-up per
    /// loop: each expert's ~N/4-row products split on their own had woken the other core 16 times per
    /// FFN forward and 32 times in backward (OpenBLAS's threads), for products too small to pay for
    /// it (stop 42: the token FFN ÷ dense FFN at batch 8 fell from 3.05–3.45 to 2.19–2.70).
    static func inExpertLanes(_ body: (_ lane: Int, _ lanes: Int) -> Void) {
        let lanes = lanesForTesting ?? BLASThreads.count
        guard lanes > 1 else {
            body(0, 1)
            return
        }
        BLASThreads.singleThreaded { forEachLane(lanes) { body($0, lanes) } }
    }

    /// The (row, place) pairs grouped by expert, rows ascending within each (a counting sort).
    private func dispatch(_ d: RouteDecision, rows N: Int) -> Dispatch {
        let E = experts.weights.count
        let k = d.topK
        var start = [Int](repeating: 0, count: E + 1)
        for r in 0..<N {
            let u = d.unitOfRow[r]
            for j in 0..<k { start[d.chosen[u * k + j] + 1] += 1 }
        }
        for e in 0..<E { start[e + 1] += start[e] }
        var next = Array(start[0..<E])
        var rows = [Int](repeating: 0, count: start[E])
        var places = [Int](repeating: 0, count: start[E])
        var slotsOfRow = [Int](repeating: 0, count: N * k)
        for r in 0..<N {
            let u = d.unitOfRow[r]
            for j in 0..<k {
                let e = d.chosen[u * k + j]
                rows[next[e]] = r
                places[next[e]] = j
                slotsOfRow[r * k + j] = next[e]
                next[e] += 1
            }
            slotsOfRow[(r * k)..<(r * k + k)].sort()
        }
        return Dispatch(rows: rows, places: places, start: start, slotsOfRow: slotsOfRow)
    }

    private func gather(_ source: UnsafePointer<Float>, rows: [Int], width: Int) -> Buffer {
        let out = Buffer(uninitialized: rows.count * width)  // every row is copied over
        for (i, r) in rows.enumerated() { (out.base + i * width).update(from: source + r * width, count: width) }
        return out
    }
}

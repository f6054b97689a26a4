import Datasets
import Foundation
import Interference
import Storage
import Training
import UniPerceiver

/// How the exact look-ahead samples its pairs and how far it steps (`analyze --lookahead λ`).
public struct LookAheadOptions: Sendable, Equatable {
    /// λ > 0: the step's length in the group's parameter space (the step is `−λ·g_j(a)/‖g_j(a)‖`).
    public var stepSize: Double
    /// Samples b drawn per task i whose loss is measured.
    public var lossSamples: Int
    /// Samples a ≠ b drawn per (b, task j) that step. Pairs per group = T·lossSamples·T·stepSamples.
    public var stepSamples: Int
    /// Seed of `LookAheadPlan.pairs`.
    public var seed: UInt64
    /// How the actual loss change is computed (see ``LookAheadMethod``).
    public var method: LookAheadMethod

    /// 4 loss samples per task.
    public static let defaultLossSamples = 4
    /// 4 step samples per (loss sample, task).
    public static let defaultStepSamples = 4

    public init(
        stepSize: Double, lossSamples: Int = LookAheadOptions.defaultLossSamples,
        stepSamples: Int = LookAheadOptions.defaultStepSamples, seed: UInt64 = 0,
        method: LookAheadMethod = .difference
    ) {
        self.stepSize = stepSize
        self.lossSamples = lossSamples
        self.stepSamples = stepSamples
        self.seed = seed
        self.method = method
    }

    /// - Throws: `.badOption` for λ ≤ 0 or non-finite, or fewer than one sample.
    public func validate() throws(ProbeError) {
        guard stepSize.isFinite, stepSize > 0 else {
            throw .badOption(reason: "--lookahead λ must be a finite number > 0, got \(stepSize)")
        }
        guard lossSamples >= 1, stepSamples >= 1 else {
            throw .badOption(
                reason: "look-ahead samples must be ≥ 1, got \(lossSamples) loss and \(stepSamples) step samples")
        }
    }
}

/// The exact look-ahead of issue 5 item 4 (uniperceiver-model.md §6.1 and §6.4 step 5): the check that
/// the paper's first-order (Taylor) estimate holds for this model.
///
/// For a probe file written with `--store-gradients`, the checkpoint and data it was made from, and
/// every group of an analysis, on the pairs of `LookAheadPlan.pairs` (task i's sample b, task j's
/// sample a ≠ b):
///
///     Δ_exact = L_i(x_i^b; θ) − L_i(x_i^b; θ − λ·g_j(a)/‖g_j(a)‖)
///
/// where only the group's parameters move and `g_j(a)` is the stored row of task j's mini-batch a
/// restricted to the group (its norm over the group, in Double). Mini-batch b of task i is rebuilt as
/// the probe built it (`WorkPlan`: the same dataset indices, MLM masking and, for MoE models, the same
/// gate-noise seed for both evaluations, so the difference is only the step). `LookAheadPlan.firstOrder`
/// gives `λ·⟨ĝ_j(a), g_i(b)⟩` for the same pairs from the group's Gram; `LookAheadCheck` divides both the
/// way the metric does.
///
/// **Round-off.** The loss is a Float32 forward summed in Double; the stepped weights are computed in
/// Double, `θ_k − λ·g_k/‖g‖`, and rounded once. A λ too small leaves a loss change of the order of the
/// forward's round-off (~1e-7 of the loss); a λ too large lets curvature in. Both show in
/// `LookAheadCheck.lossChangeRelativeDifference`.
public enum ExactLookAhead {
    /// Adds a `LookAheadCheck` to every group of `analysis`.
    ///
    /// - Parameters:
    ///   - analysis: the first-order analysis of `probe` (its groups, layout and excluded samples).
    ///   - probe: the probe file; must hold raw rows of every parameter of every group.
    ///   - checkpoint, data: the files the probe was made from; their SHA-256 must equal the probe's.
    ///   - progress: called after each group with (done, total).
    /// - Throws: `ProbeError` — `.badOption` (λ, sample counts, tasks or split the build does not
    ///   know), `.noStoredGradients`, `.sourceMismatch`, `.notReproduced` (a rebuilt mini-batch whose
    ///   examples or loss differ from the probe's), `.checkpoint`, `.dataset`, `.model`, the probe
    ///   file's read errors; an `InterferenceError` as `ProbeError.reading(_:file:)` maps it.
    public static func check(
        _ analysis: InterferenceAnalysis, probe: URL, checkpoint: URL, data: URL,
        options: LookAheadOptions, progress: ((Int, Int) -> Void)? = nil
    ) throws(ProbeError) -> InterferenceAnalysis {
        try options.validate()
        let contents = try ProbeFile.read(probe, grams: false)
        let metadata = contents.metadata
        for (url, recorded, what) in [
            (checkpoint, metadata.checkpointSHA256, "checkpoint"), (data, metadata.dataSHA256, "data"),
        ] where !recorded.isEmpty {
            guard try FileFingerprint.sha256(ofFile: url) == recorded else {
                throw .sourceMismatch(file: url.path, probe: probe.path, what: what)
            }
        }
        for group in analysis.groups {
            for name in group.group.parameters where contents.parameter(named: name)?.hasGradients != true {
                throw .noStoredGradients(file: probe.path, parameter: name)
            }
        }
        let model: Model
        do { model = try Checkpoint.load(checkpoint) } catch { throw .checkpoint(error) }
        let dataset: DigitsDataset
        do { dataset = try DigitsDataset.load(data) } catch { throw .dataset(error) }
        let evaluator = try LossEvaluator(
            probe: probe, contents: contents, model: model, dataset: dataset)

        let layout = analysis.layout
        let n = metadata.samplesPerTask
        let kept = (0..<n).filter { !analysis.excludedSamples.contains($0) }
        guard kept.count == layout.samplesPerTask, layout.tasks == metadata.tasks else {
            throw .badContent(
                file: probe.path, path: "/",
                reason: "the analysis (\(layout.tasks), N = \(layout.samplesPerTask)) is not of this probe")
        }
        let pairs = LookAheadPlan.pairs(
            layout: layout, lossSamples: options.lossSamples, stepSamples: options.stepSamples,
            seed: options.seed)
        let grams: ProbeGrams
        do { grams = try ProbeGrams(url: probe) } catch { throw .reading(error, file: probe) }

        var out = analysis
        for (k, group) in analysis.groups.enumerated() {
            let members = try group.group.parameters.map { name throws(ProbeError) -> ParameterEntry in
                guard let entry = model.table.entry(named: name) else {
                    throw .badContent(
                        file: probe.path, path: "/parameters/\(name)",
                        reason: "not a parameter of the checkpoint's model")
                }
                return entry
            }
            // Stored rows of every step sample the pairs use, restricted to the group, in Double.
            let stepRows = Set(pairs.map { $0.stepTask * n + kept[$0.stepSample] })
            let directions = try unitDirections(
                rows: stepRows, members: members, probe: probe, stepSize: options.stepSize)
            var exact = pairs
            for p in exact.indices {
                let i = pairs[p].lossTask
                let b = kept[pairs[p].lossSample]
                let step = directions[pairs[p].stepTask * n + kept[pairs[p].stepSample]]!
                exact[p].lossChange = try evaluator.lossChange(
                    task: i, miniBatch: b, step: step, method: options.method)
            }
            // Every ratio divides by a task's change under its own step: all zero leaves only n/a.
            let own = exact.filter { $0.lossTask == $0.stepTask }
            if !own.isEmpty, own.allSatisfy({ $0.lossChange == 0 }) {
                throw .badOption(
                    reason: "--lookahead: at λ = \(options.stepSize) no task's loss changes under its own step on group \(group.name) (all \(own.count) changes are 0 in Float32), so every ratio would be undefined; choose a larger λ\(options.method == .difference ? " or --lookahead-method integral" : "")")
            }
            var gramTotal: GramMatrix
            do {
                var parts: [GramMatrix] = []
                for name in group.group.parameters { parts.append(try grams.gram(of: name)) }
                gramTotal = try GramMatrix.sum(parts, name: group.name)
                let firstOrder = try LookAheadPlan.firstOrder(
                    pairs, gram: gramTotal, layout: layout, stepSize: options.stepSize)
                out.groups[k].lookAhead = try LookAheadCheck(
                    stepSize: options.stepSize, seed: options.seed, method: options.method, exactChanges: exact,
                    firstOrderChanges: firstOrder, layout: layout)
            } catch { throw .reading(error, file: probe) }
            progress?(k + 1, analysis.groups.count)
        }
        return out
    }

    /// `−λ·g/‖g‖` of each stored row over the group's members (‖g‖ over all of them, in Double), as
    /// (table range, step values) pieces.
    static func unitDirections(
        rows: Set<Int>, members: [ParameterEntry], probe: URL, stepSize: Double
    ) throws(ProbeError) -> [Int: [(range: Range<Int>, step: [Double])]] {
        let file = try ProbeFile.open(probe)
        defer { file.discard() }
        var out: [Int: [(range: Range<Int>, step: [Double])]] = [:]
        for r in rows.sorted() {
            var pieces: [(range: Range<Int>, step: [Double])] = []
            var squaredNorm = 0.0
            for entry in members {
                let path = ProbeFile.gradientsPath(entry.name)
                let row = try ProbeFile.reading(file) { () throws(StorageError) in
                    try file.readRows(r..<(r + 1), from: path, as: Float.self)
                }
                guard row.values.count == entry.count else {
                    throw .badContent(
                        file: probe.path, path: path,
                        reason: "row of \(row.values.count) values, the model's tensor has \(entry.count)")
                }
                let values = row.values.map(Double.init)
                for v in values { squaredNorm += v * v }
                pieces.append((entry.range, values))
            }
            let norm = squaredNorm.squareRoot()
            guard norm > 0, norm.isFinite else {
                throw .badContent(
                    file: probe.path, path: "/parameters", reason: "gradient row \(r) has norm \(norm) over the group")
            }
            let scale = -stepSize / norm
            out[r] = pieces.map { ($0.range, $0.step.map { $0 * scale }) }
        }
        return out
    }
}

/// Evaluates the loss of the probe's mini-batches at θ and at θ + step, rebuilding each mini-batch
/// and its gate noise exactly as the probe did.
final class LossEvaluator {
    let probe: URL
    let plan: WorkPlan
    let dataset: DigitsDataset
    /// Restored to the checkpoint's values after every stepped evaluation.
    var model: Model
    let original: [Float]
    /// L_i(x_i^b; θ) by work item `t·N + b`.
    var before: [Int: Double] = [:]
    /// Scratch for the integral method's gradients.
    var gradient: [Float] = []
    let recordedLosses: [[Float]]

    init(probe: URL, contents: ProbeContents, model: Model, dataset: DigitsDataset) throws(ProbeError) {
        let metadata = contents.metadata
        // `contents` comes from `ProbeFile.read`, whose metadata reader refused unknown names.
        let tasks = metadata.tasks.map { TaskKind(rawValue: $0)! }
        let split = DatasetSplit(rawValue: metadata.split)!
        do {
            try dataset.checkImageShape(imageSize: model.config.imageSize, channels: model.config.channels)
        } catch { throw .dataset(error) }
        let options = ProbeOptions(
            tasks: tasks, samplesPerTask: metadata.samplesPerTask, batchSize: metadata.batchSize,
            split: split, seed: metadata.seed)
        plan = try WorkPlan(options: options, dataset: dataset)
        for (t, task) in metadata.tasks.enumerated() where contents.examples[task] != plan.examples[t] {
            throw .notReproduced(
                file: probe.path, task: task, miniBatch: 0,
                reason: "the rebuilt dataset indices differ from /tasks/\(task)/examples")
        }
        self.probe = probe
        self.dataset = dataset
        self.model = model
        original = model.parameters
        recordedLosses = metadata.tasks.map { contents.losses[$0] ?? [] }
    }

    /// The training-style loss (gate noise of the probe's seed) of mini-batch `miniBatch` of task
    /// `task` at the model's current weights.
    func loss(task: Int, miniBatch: Int) throws(ProbeError) -> Double {
        let w = task * plan.samplesPerTask + miniBatch
        do { return try model.forward(plan.batch(w, dataset: dataset), noise: plan.noise(w)).loss } catch {
            throw .model(error)
        }
    }

    /// `L(θ) − L(θ + step)` on mini-batch `miniBatch` of task `task`, by `method`; `L(θ)` is computed
    /// once and checked against the loss the probe recorded (Float32 of the same computation).
    func lossChange(
        task: Int, miniBatch: Int, step: [(range: Range<Int>, step: [Double])], method: LookAheadMethod
    ) throws(ProbeError) -> Double {
        let w = task * plan.samplesPerTask + miniBatch
        let base: Double
        if let known = before[w] {
            base = known
        } else {
            base = try loss(task: task, miniBatch: miniBatch)
            let recorded = Double(recordedLosses[task][miniBatch])
            guard abs(base - recorded) <= 1e-5 * max(1, abs(recorded)) else {
                throw .notReproduced(
                    file: probe.path, task: plan.tasks[task].rawValue, miniBatch: miniBatch,
                    reason: "loss \(base), the probe recorded \(recorded)")
            }
            before[w] = base
        }
        defer {
            for piece in step {
                for index in piece.range { model.parameters[index] = original[index] }
            }
        }
        // A λ below Float32's resolution at these weights moves nothing, and 0/0 would fill the
        // check with NaN.
        let moves = step.contains { piece in
            piece.range.enumerated().contains { k, index in
                Float(Double(original[index]) + piece.step[k]) != original[index]
            }
        }
        guard moves else {
            throw .badOption(
                reason: "--lookahead: the step moves no Float32 weight of the group (λ below Float32's resolution at these weights); choose a larger λ")
        }
        let change = try stepped(task: task, miniBatch: miniBatch, base: base, step: step, method: method)
        // A step so long that the loss leaves Float's range says nothing about the Taylor term.
        guard change.isFinite else {
            throw .badOption(
                reason: "--lookahead: the step makes the loss of task \(plan.tasks[task].rawValue), mini-batch \(miniBatch) non-finite (\(change)); choose a smaller λ")
        }
        return change
    }

    /// The loss change of `lossChange` at the stepped weights (restored by the caller).
    private func stepped(
        task: Int, miniBatch: Int, base: Double, step: [(range: Range<Int>, step: [Double])], method: LookAheadMethod
    ) throws(ProbeError) -> Double {
        switch method {
        case .difference:
            move(along: step, fraction: 1)
            return base - (try loss(task: task, miniBatch: miniBatch))
        case .integral:
            // The step actually taken: the Float32-rounded endpoint minus θ, exact in Double.
            let taken = step.map { piece in
                (range: piece.range, step: piece.range.enumerated().map { k, index in
                    Double(Float(Double(original[index]) + piece.step[k])) - Double(original[index])
                })
            }
            var change = 0.0
            for (t, weight) in LookAheadMethod.nodes {
                move(along: taken, fraction: t)
                change -= weight * (try directionalDerivative(task: task, miniBatch: miniBatch, along: taken))
            }
            return change
        }
    }

    /// Sets the group's parameters to `θ + fraction·step` (in Double, rounded once).
    private func move(along step: [(range: Range<Int>, step: [Double])], fraction: Double) {
        for piece in step {
            for (k, index) in piece.range.enumerated() {
                model.parameters[index] = Float(Double(original[index]) + fraction * piece.step[k])
            }
        }
    }

    /// `⟨∇L, step⟩` at the model's current weights (same mini-batch and gate noise), in Double.
    private func directionalDerivative(
        task: Int, miniBatch: Int, along step: [(range: Range<Int>, step: [Double])]
    ) throws(ProbeError) -> Double {
        let w = task * plan.samplesPerTask + miniBatch
        let pass: ForwardPass
        do { pass = try model.forward(plan.batch(w, dataset: dataset), noise: plan.noise(w)) } catch {
            throw .model(error)
        }
        if gradient.count != model.parameters.count { gradient = [Float](repeating: 0, count: model.parameters.count) }
        model.gradient(pass, into: &gradient)
        var dot = 0.0
        for piece in step {
            for (k, index) in piece.range.enumerated() { dot += Double(gradient[index]) * piece.step[k] }
        }
        return dot
    }
}

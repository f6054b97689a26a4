import Datasets
import Foundation
import Kernels
import UniPerceiver

/// What one training step did (one line of the JSON-lines log).
public struct StepRecord: Sendable, Equatable {
    /// 1-based: the n-th optimizer update of the run.
    public var step: Int
    public var task: TaskKind
    /// The task loss before the loss weight.
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping (after the loss weight).
    public var gradientNorm: Double
    /// Seconds of training since the run began (summed over resumed sessions).
    public var seconds: Double

    /// `{"step":…,"task":…,"loss":…,"lr":…,"grad_norm":…,"seconds":…}` with keys in this order.
    public var jsonLine: String {
        "{\"step\":\(step),\"task\":\"\(task.rawValue)\",\"loss\":\(loss),\"lr\":\(learningRate),"
            + "\"grad_norm\":\(gradientNorm),\"seconds\":\((seconds * 1000).rounded() / 1000)}"
    }
}

/// The multi-task training loop in memory: one task per step drawn by sampling weight, a seeded
/// mini-batch of it, forward, backward, loss weight, global norm clipping, AdamW with the
/// warm-up + cosine schedule (uniperceiver-model.md §4). Files are `TrainingSession`'s business.
///
/// Everything random is seeded by `options.seed`:
/// * the task of each step: `TaskSampler.draw` on a generator seeded `seed ^ 0x7461736B` whose state
///   is saved with the optimizer;
/// * the examples: task t's n-th mini-batch is `BatchSampler.indices(ofBatch: n)` (a pure function of
///   the seed, the task and n; the counters n per task are saved);
/// * MLM masking of step s: a generator seeded from `(seed, s)` (`maskingSeed`), so nothing to save.
public final class Trainer {
    public let dataset: DigitsDataset
    public let options: TrainingOptions
    public private(set) var model: Model
    public private(set) var optimizer: AdamW
    /// Steps completed so far.
    public private(set) var step: Int
    /// The state of the generator that draws each step's task.
    public private(set) var taskRNG: SeededRNG
    /// Mini-batches drawn so far per task, in `TaskKind.allCases` order.
    public private(set) var batchesDrawn: [Int]
    let taskSampler: TaskSampler
    /// The step's gradient, reused (see `trainStep`).
    private var gradient: [Float] = []
    /// The experts `gradient` holds zero-filled from the last step (`Model.gradient(_:into:zeroed:)`).
    private var zeroedExperts = Model.ZeroedExperts()
    let samplers: [TaskKind: BatchSampler]

    /// A fresh run from `model`'s current parameters.
    /// - Throws: `TrainingError.badOption` / `.dataset` for bad options, a dataset that does not
    ///   fit the model (image shape, vocabulary, text length) or a split smaller than a batch.
    public convenience init(model: Model, dataset: DigitsDataset, options: TrainingOptions) throws(TrainingError) {
        try self.init(
            model: model, dataset: dataset, options: options,
            optimizer: AdamW(table: model.table, settings: options.adam), step: 0,
            taskRNG: SeededRNG(seed: options.seed ^ 0x7461_736B),
            batchesDrawn: Array(repeating: 0, count: TaskKind.allCases.count))
    }

    /// A run continued from saved state (`TrainingSession.resume`).
    init(
        model: Model, dataset: DigitsDataset, options: TrainingOptions, optimizer: AdamW, step: Int,
        taskRNG: SeededRNG, batchesDrawn: [Int]
    ) throws(TrainingError) {
        try options.validate()
        try Self.checkCompatible(model.config, dataset)
        self.dataset = dataset
        self.options = options
        self.model = model
        self.optimizer = optimizer
        self.step = step
        self.taskRNG = taskRNG
        self.batchesDrawn = batchesDrawn
        taskSampler = options.taskSampler
        var samplers: [TaskKind: BatchSampler] = [:]
        for task in taskSampler.tasks {
            do {
                samplers[task] = try dataset.sampler(
                    task: task, split: .train, batchSize: options.batchSize, seed: options.seed)
            } catch { throw .dataset(error) }
        }
        self.samplers = samplers
    }

    /// Checks that `dataset` can feed a model of `config`: image shape, vocabulary size, longest
    /// token sequence.
    public static func checkCompatible(_ config: ModelConfig, _ dataset: DigitsDataset) throws(TrainingError) {
        do { try dataset.checkImageShape(imageSize: config.imageSize, channels: config.channels) } catch {
            throw .dataset(error)
        }
        if dataset.vocabulary.count != config.vocabSize {
            throw .incompatible(
                file: dataset.file,
                reason: "vocabulary of \(dataset.vocabulary.count) words, the model has vocab_size \(config.vocabSize)")
        }
        let longest = ModelPresets.longestSequence(dataset)
        if longest > config.maxTextLength {
            throw .incompatible(
                file: dataset.file,
                reason: "token sequences up to \(longest) long, the model has max_text_length \(config.maxTextLength)")
        }
    }

    /// The seed of step `step`'s MLM masking generator (0-based step).
    static func maskingSeed(_ seed: UInt64, step: Int) -> UInt64 {
        var mixer = SeededRNG(seed: seed ^ 0x6D61_736B ^ (UInt64(step) &* 0xA24B_AED4_963E_E407))
        return mixer.next()
    }

    /// The seed of step `step`'s gate-noise generator (MoE models; 0-based step), so a resumed run
    /// draws the noise an uninterrupted run draws.
    static func noiseSeed(_ seed: UInt64, step: Int) -> UInt64 {
        maskingSeed(seed ^ 0x6E6F_6973_6521, step: step)
    }

    /// The mini-batch of `task` that step `step` (0-based) trains on, given its batch counter.
    func batch(task: TaskKind, number: Int, step: Int) -> Batch {
        let indices = samplers[task]!.indices(ofBatch: number)
        var rng = SeededRNG(seed: Self.maskingSeed(options.seed, step: step))
        return dataset.makeBatch(task: task, split: .train, indices: indices, rng: &rng)
    }

    /// Runs one step and applies it.
    /// - Throws: `.nonFiniteLoss` / `.nonFiniteGradient` naming the step and task (nothing of the
    ///   step is applied; the trainer stays at the previous step), `.nonFiniteWeights` when the
    ///   update made a weight non-finite (the weights are then unusable: do not save them),
    ///   `.model` for a bad batch.
    public func trainStep(seconds: () -> Double = { 0 }) throws(TrainingError) -> StepRecord {
        var rng = taskRNG
        let task = taskSampler.draw(&rng)
        let taskIndex = TaskKind.allCases.firstIndex(of: task)!
        let batch = batch(task: task, number: batchesDrawn[taskIndex], step: step)
        let pass: ForwardPass
        do {
            if model.config.routing == .none {
                pass = try model.forward(batch)
            } else {
                pass = try model.forward(batch, noise: RoutingNoise(seed: Self.noiseSeed(options.seed, step: step)))
            }
        } catch { throw .model(error) }
        guard pass.loss.isFinite else { throw .nonFiniteLoss(step: step + 1, task: task.rawValue, value: pass.loss) }
        // One buffer for every step: `gradient(into:)` overwrites it whole (no fresh E×-expert-sized
        // allocation and zeroing per step).
        if gradient.count != model.parameters.count {
            gradient = [Float](repeating: 0, count: model.parameters.count)
            zeroedExperts = Model.ZeroedExperts()
        }
        model.gradient(pass, into: &gradient, zeroed: &zeroedExperts)
        let weight = options.lossWeight(task)
        if weight != 1 {
            let w = Float(weight)
            for i in gradient.indices { gradient[i] *= w }
        }
        let norm = clipGradientNorm(&gradient, maxNorm: options.gradientClip)
        guard norm.isFinite else {
            // The step is abandoned: the next one fills its buffer without trusting what this one
            // left there (clipping returns before scaling a non-finite norm, so the known zeros
            // are still 0; this keeps that from being load-bearing).
            zeroedExperts = Model.ZeroedExperts()
            throw .nonFiniteGradient(step: step + 1, task: task.rawValue)
        }
        let rate = options.schedule.rate(atStep: step)
        optimizer.update(parameters: &model.parameters, gradient: gradient, learningRate: rate)
        // A finite gradient can still step a weight to ±∞ (a huge learning rate, a damaged optimizer
        // state): stop before any checkpoint is written from such weights.
        if let index = model.parameters.withUnsafeBufferPointer({ firstNonFinite($0) }) {
            let name = model.table.entry(containing: index)?.name ?? "?"
            throw .nonFiniteWeights(step: step + 1, task: task.rawValue, tensor: name)
        }
        taskRNG = rng
        batchesDrawn[taskIndex] += 1
        step += 1
        return StepRecord(
            step: step, task: task, loss: pass.loss, learningRate: rate, gradientNorm: norm, seconds: seconds())
    }

    /// Replaces the model's parameters (tests: inject a NaN weight).
    public func setParameters(_ values: [Float]) {
        precondition(values.count == model.parameters.count, "Trainer.setParameters: \(values.count) values")
        model.parameters = values
    }
}

/// A stop request that another thread (a signal handler) raises and the training loop polls
/// between steps.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false

    public init() {}

    public func raise() { lock.withLock { raised = true } }

    public var isRaised: Bool { lock.withLock { raised } }
}

import Foundation
import UniPerceiver

/// Everything besides the model that determines a training run. With the model's initial
/// parameters (its configuration and init seed), the dataset and the machine, these fix every
/// checkpoint byte. Stored as JSON (snake_case keys) in the checkpoint's `training` metadata.
public struct TrainingOptions: Codable, Sendable, Equatable {
    /// Total optimizer steps of the run (the cosine reaches `minLearningRate` at the last one).
    public var steps: Int
    /// Seeds the task draws, the mini-batch orders and the MLM masking (the model's init seed is
    /// separate: `Model(config:seed:)`; the command line uses the same value for both).
    public var seed: UInt64
    /// Examples per mini-batch, every task.
    public var batchSize: Int
    public var peakLearningRate: Double
    public var minLearningRate: Double
    public var warmupSteps: Int
    public var adam: AdamWSettings
    /// Global gradient-norm clip (after the loss weight is applied).
    public var gradientClip: Double
    /// Sampling weight of each task (task name → weight; absent or 0 = never trained).
    public var samplingWeights: [String: Double]
    /// Loss weight of each task (absent = 1): the gradient of a step on task t is scaled by it.
    public var lossWeights: [String: Double]
    /// A checkpoint every this many steps (and always after the last step and on a stop request).
    public var checkpointEvery: Int

    public init(
        steps: Int, seed: UInt64 = 0, batchSize: Int = 32, peakLearningRate: Double = 2e-3,
        minLearningRate: Double = 1e-5, warmupSteps: Int = 100, adam: AdamWSettings = AdamWSettings(),
        gradientClip: Double = 1.0, samplingWeights: [String: Double] = TrainingOptions.defaultSamplingWeights,
        lossWeights: [String: Double] = [:], checkpointEvery: Int = 250
    ) {
        self.steps = steps
        self.seed = seed
        self.batchSize = batchSize
        self.peakLearningRate = peakLearningRate
        self.minLearningRate = minLearningRate
        self.warmupSteps = warmupSteps
        self.adam = adam
        self.gradientClip = gradientClip
        self.samplingWeights = samplingWeights
        self.lossWeights = lossWeights
        self.checkpointEvery = checkpointEvery
    }

    /// The demo's task mix (Sources/Training/README.md, "Demo configuration").
    public static let defaultSamplingWeights: [String: Double] = [
        TaskKind.imageClassification.rawValue: 1, TaskKind.mlm.rawValue: 1,
        TaskKind.captioning.rawValue: 1, TaskKind.retrieval.rawValue: 1,
    ]

    enum CodingKeys: String, CodingKey {
        case steps, seed
        case batchSize = "batch_size"
        case peakLearningRate = "peak_lr"
        case minLearningRate = "min_lr"
        case warmupSteps = "warmup_steps"
        case adam
        case gradientClip = "gradient_clip"
        case samplingWeights = "sampling_weights"
        case lossWeights = "loss_weights"
        case checkpointEvery = "checkpoint_every"
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(
            peak: peakLearningRate, floor: minLearningRate, warmupSteps: warmupSteps, totalSteps: steps)
    }

    /// The tasks with positive sampling weight and the sampler over them, in `TaskKind` order.
    public var taskSampler: TaskSampler {
        let tasks = TaskKind.allCases.filter { (samplingWeights[$0.rawValue] ?? 0) > 0 }
        return TaskSampler(tasks: tasks, weights: tasks.map { samplingWeights[$0.rawValue]! })
    }

    public func lossWeight(_ task: TaskKind) -> Double { lossWeights[task.rawValue] ?? 1 }

    /// Checks every value a user can set.
    /// - Throws: `TrainingError.badOption` naming the option, or `.dataset(.unknownTask)` for a
    ///   weight given to a task that does not exist.
    public func validate() throws(TrainingError) {
        func positive(_ name: String, _ value: Double) throws(TrainingError) {
            guard value.isFinite && value > 0 else { throw .badOption(name: name, reason: "must be a positive number, got \(value)") }
        }
        guard steps > 0 else { throw .badOption(name: "--steps", reason: "must be positive, got \(steps)") }
        guard batchSize > 0 else { throw .badOption(name: "--batch-size", reason: "must be positive, got \(batchSize)") }
        guard warmupSteps >= 0 else { throw .badOption(name: "--warmup", reason: "must not be negative, got \(warmupSteps)") }
        guard checkpointEvery > 0 else {
            throw .badOption(name: "--checkpoint-every", reason: "must be positive, got \(checkpointEvery)")
        }
        try positive("--lr", peakLearningRate)
        guard minLearningRate.isFinite && minLearningRate >= 0 && minLearningRate <= peakLearningRate else {
            throw .badOption(name: "--min-lr", reason: "must lie in [0, lr], got \(minLearningRate)")
        }
        try positive("--clip", gradientClip)
        try positive("AdamW epsilon", adam.epsilon)
        for (name, beta) in [("AdamW beta1", adam.beta1), ("AdamW beta2", adam.beta2)] where !(beta >= 0 && beta < 1) {
            throw .badOption(name: name, reason: "must lie in [0, 1), got \(beta)")
        }
        guard adam.weightDecay.isFinite && adam.weightDecay >= 0 else {
            throw .badOption(name: "--weight-decay", reason: "must not be negative, got \(adam.weightDecay)")
        }
        let known = TaskKind.allCases.map(\.rawValue)
        for (option, table) in [("--sampling-weights", samplingWeights), ("--loss-weights", lossWeights)] {
            for (name, value) in table.sorted(by: { $0.key < $1.key }) {
                guard TaskKind(rawValue: name) != nil else { throw .dataset(.unknownTask(name: name, known: known)) }
                guard value.isFinite && value >= 0 else {
                    throw .badOption(name: option, reason: "\(name) must be a non-negative number, got \(value)")
                }
            }
        }
        guard samplingWeights.values.contains(where: { $0 > 0 }) else {
            throw .badOption(name: "--sampling-weights", reason: "no task has a positive sampling weight")
        }
    }

    /// The options as compact JSON with sorted keys (what checkpoints store).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    public static func fromJSON(_ text: String, file: String) throws(TrainingError) -> TrainingOptions {
        do { return try JSONDecoder().decode(TrainingOptions.self, from: Data(text.utf8)) } catch {
            throw .badState(file: file, reason: "cannot decode the training options (\(error))")
        }
    }
}

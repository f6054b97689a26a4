import Datasets
import Kernels
import UniPerceiver

/// The (task, mini-batch) work list of a probe, drawn whole from the seed before anything runs, so a
/// shard probes exactly the mini-batches an unsharded run would.
///
/// Item `w = t·N + a` is mini-batch `a` of `tasks[t]`: its dataset indices are batch `a` of the
/// task's `BatchSampler(seed:)` over `split` (batches without replacement, epoch by epoch), and its
/// MLM masking draws from `SeededRNG(seed: maskingSeed(seed, task, a))`, a generator of its own, so
/// any item can be rebuilt alone.
public struct WorkPlan: Sendable, Equatable {
    public let tasks: [TaskKind]
    public let samplesPerTask: Int
    public let batchSize: Int
    public let split: DatasetSplit
    public let seed: UInt64
    /// `examples[t][a]`: the dataset indices of mini-batch `a` of task `t`.
    public let examples: [[[Int]]]

    /// Draws every mini-batch of every task.
    /// - Throws: `ProbeError.dataset` when a split is empty or smaller than the batch size.
    public init(options: ProbeOptions, dataset: DigitsDataset) throws(ProbeError) {
        try options.validate()
        tasks = options.tasks
        samplesPerTask = options.samplesPerTask
        batchSize = options.batchSize
        split = options.split
        seed = options.seed
        var examples: [[[Int]]] = []
        for task in options.tasks {
            let sampler: BatchSampler
            do {
                sampler = try dataset.sampler(
                    task: task, split: options.split, batchSize: options.batchSize, seed: options.seed)
            } catch { throw .dataset(error) }
            examples.append(sampler.indices(ofBatches: 0..<options.samplesPerTask))
        }
        self.examples = examples
    }

    /// W = T·N work items.
    public var itemCount: Int { tasks.count * samplesPerTask }

    /// The task index and mini-batch number of item `w`.
    public func item(_ w: Int) -> (task: Int, miniBatch: Int) {
        (w / samplesPerTask, w % samplesPerTask)
    }

    /// The seed of the masking generator of mini-batch `miniBatch` of `task`.
    public static func maskingSeed(_ seed: UInt64, task: TaskKind, miniBatch: Int) -> UInt64 {
        let stream = UInt64(TaskKind.allCases.firstIndex(of: task)!)
        var mixer = SeededRNG(
            seed: seed ^ 0x5052_4F42_4550_524F ^ (stream &* 0xA076_1D64_78BD_642F)
                ^ (UInt64(miniBatch) &* 0xE703_7ED1_A0B4_28DB))
        return mixer.next()
    }

    /// The seed of the gate-noise generator of mini-batch `miniBatch` of `task` (MoE models probe
    /// "as in training", gate noise on; a dense model draws nothing). Own stream per mini-batch, so
    /// shards draw exactly what an unsharded run draws.
    public static func noiseSeed(_ seed: UInt64, task: TaskKind, miniBatch: Int) -> UInt64 {
        maskingSeed(seed ^ 0x6E6F_6973_6521, task: task, miniBatch: miniBatch)
    }

    /// The gate noise of item `w`.
    public func noise(_ w: Int) -> RoutingNoise {
        let (t, a) = item(w)
        return RoutingNoise(seed: Self.noiseSeed(seed, task: tasks[t], miniBatch: a))
    }

    /// The batch of item `w`, built from the dataset exactly as an unsharded run builds it.
    public func batch(_ w: Int, dataset: DigitsDataset) -> Batch {
        let (t, a) = item(w)
        var rng = SeededRNG(seed: Self.maskingSeed(seed, task: tasks[t], miniBatch: a))
        return dataset.makeBatch(task: tasks[t], split: split, indices: examples[t][a], rng: &rng)
    }
}

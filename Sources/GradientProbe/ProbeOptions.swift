import Foundation
import Datasets
import UniPerceiver

/// One slice of a sharded probe: shard `index` of `count` (1-based, as `--shard K/N` and Slurm's
/// `SLURM_ARRAY_TASK_ID` count).
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    /// K, `1 ≤ K ≤ N`.
    public let index: Int
    /// N, the number of shards.
    public let count: Int

    public init(index: Int, count: Int) throws(ProbeError) {
        guard count >= 1, (1...count).contains(index) else {
            throw .badOption(reason: "shard \(index)/\(count): need 1 ≤ K ≤ N")
        }
        self.index = index
        self.count = count
    }

    /// Parses `K/N` (e.g. `3/8`).
    public init(parsing text: String) throws(ProbeError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw .badOption(reason: "--shard '\(text)' is not K/N (e.g. 2/8)")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// This shard's contiguous slice of `total` work items: `⌊(K−1)·W/N⌋ ..< ⌊K·W/N⌋`. The slices of
    /// shards 1…N tile `0..<total` in order, so concatenating shards in order keeps rows task-major.
    public func slice(of total: Int) -> Range<Int> {
        ((index - 1) * total / count)..<(index * total / count)
    }
}

/// What to probe and how (`interference probe`'s options, callable from Swift).
public struct ProbeOptions: Sendable, Equatable {
    /// Tasks in row order (rows are task-major: row `t·N + a` is mini-batch `a` of `tasks[t]`).
    public var tasks: [TaskKind]
    /// N, mini-batches per task.
    public var samplesPerTask: Int
    /// B, examples per mini-batch.
    public var batchSize: Int
    /// The split mini-batches are drawn from (training batches, as the paper's lr-0 training loop).
    public var split: DatasetSplit
    /// Seeds the batch sampler and the MLM masking; the whole probe is a function of it.
    public var seed: UInt64
    /// Globs over parameter names (default: all `encoder.layers.*`).
    public var parameters: ParameterSelection
    /// Also write every raw gradient row (`/parameters/<name>/gradients`). Implied by `shard`.
    public var storeGradients: Bool
    /// Probe only this slice of the (task, mini-batch) work list; the file then holds rows, not Grams.
    public var shard: ShardSpec?
    /// Bytes of gradient rows kept in memory; parameters beyond it are spilled to the file.
    public var memoryBudget: Int
    /// Record a non-finite mini-batch (mask `/tasks/<task>/nonfinite`, zero row) instead of stopping.
    public var skipNonFinite: Bool

    /// 4 GiB.
    public static let defaultMemoryBudget = 4 << 30

    public init(
        tasks: [TaskKind], samplesPerTask: Int = 100, batchSize: Int = 16,
        split: DatasetSplit = .train, seed: UInt64 = 0,
        parameters: ParameterSelection = ParameterSelection(), storeGradients: Bool = false,
        shard: ShardSpec? = nil, memoryBudget: Int = ProbeOptions.defaultMemoryBudget,
        skipNonFinite: Bool = false
    ) {
        self.tasks = tasks
        self.samplesPerTask = samplesPerTask
        self.batchSize = batchSize
        self.split = split
        self.seed = seed
        self.parameters = parameters
        self.storeGradients = storeGradients
        self.shard = shard
        self.memoryBudget = memoryBudget
        self.skipNonFinite = skipNonFinite
    }

    /// Checks what can be checked without the model and the data.
    public func validate() throws(ProbeError) {
        guard !tasks.isEmpty else { throw .badOption(reason: "no task to probe") }
        var seen = Set<TaskKind>()
        for task in tasks where !seen.insert(task).inserted {
            throw .badOption(reason: "task \(task.rawValue) is listed twice")
        }
        // One sample per task would give a probe `analyze` must refuse: the metric's leave-one-out
        // needs another sample of the task (a shard may still hold one; --samples is the whole run's).
        guard samplesPerTask >= 2 else {
            throw .badOption(
                reason: "--samples must be at least 2 (leave-one-out needs two mini-batches per task), got \(samplesPerTask)")
        }
        guard batchSize >= 1 else {
            throw .badOption(reason: "--batch-size must be at least 1, got \(batchSize)")
        }
        guard memoryBudget >= 0 else {
            throw .badOption(reason: "--memory-budget must not be negative")
        }
        // The T·N × T·N Gram (and each lane's partial sum) is held in memory whatever the budget:
        // refuse a sample count whose Gram cannot fit, instead of running until the kernel kills it.
        let (rows, overflow) = tasks.count.multipliedReportingOverflow(by: samplesPerTask)
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        let gramBytes = Double(rows) * Double(rows) * 8 * Double(1 + GramAccumulator.lanes)
        guard !overflow, gramBytes <= memory else {
            throw .badOption(
                reason: "--samples \(samplesPerTask): \(tasks.count) tasks × \(samplesPerTask) rows need "
                    + String(format: "%.3g", gramBytes / 1e9) + " GB of Gram matrices, more than this machine's memory ("
                    + String(format: "%.3g", memory / 1e9) + " GB)")
        }
    }

    /// Parses a byte count such as `4GiB`, `512MiB`, `100MB`, `1e6` or `65536`.
    public static func parseBytes(_ text: String) throws(ProbeError) -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let kibi = 1024.0
        let units: [(String, Double)] = [
            ("KiB", kibi), ("MiB", kibi * kibi), ("GiB", kibi * kibi * kibi),
            ("TiB", kibi * kibi * kibi * kibi), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12),
            ("K", kibi), ("M", kibi * kibi), ("G", kibi * kibi * kibi), ("B", 1),
        ]
        var number = trimmed
        var scale = 1.0
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            number = String(trimmed.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0 else {
            throw .badOption(reason: "'\(text)' is not a byte count (a number with KiB, MiB, GiB, TiB, KB, MB, GB, TB or none, e.g. 4GiB, 512MiB, 65536)")
        }
        // A bare "0.5" is a fraction of a byte: most likely a unit left off, which would spill every row.
        guard scale != 1 || value.rounded(.towardZero) == value else {
            throw .badOption(reason: "'\(text)' is a fraction of a byte; give a whole number of bytes or a unit (e.g. 0.5GiB)")
        }
        guard value * scale < 9e18 else {
            throw .badOption(reason: "'\(text)' is more bytes than a machine can address (at most 8EiB)")
        }
        return Int(value * scale)
    }
}

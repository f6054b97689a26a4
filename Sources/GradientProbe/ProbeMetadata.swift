import Foundation

/// The root attributes of a probe file (architecture.md, "probe file"): what was probed, from which
/// model and data, and how. `merge` compares them field by field before joining shards.
public struct ProbeMetadata: Sendable, Equatable {
    /// The model configuration as JSON (snake_case keys, as in the checkpoint header).
    public var modelConfig: String
    /// Checkpoint path as given, and the SHA-256 of its bytes.
    public var checkpointPath: String
    public var checkpointSHA256: String
    /// Dataset path as given, and the SHA-256 of its bytes (attribute `data`, an addition to the
    /// architecture page's list so that `merge` can refuse shards of different data).
    public var dataPath: String
    public var dataSHA256: String
    /// The split mini-batches were drawn from (`train` or `validation`).
    public var split: String
    /// `dense` or `moe` (the checkpoint's `kind`), and the MoE routing (`none` for dense).
    public var kind: String
    public var routing: String
    /// Task names in row order.
    public var tasks: [String]
    /// N, mini-batches per task.
    public var samplesPerTask: Int
    /// B, examples per mini-batch.
    public var batchSize: Int
    /// The probe seed (stored as int64 with the same bits).
    public var seed: UInt64
    /// The `--parameters` globs.
    public var parameterPatterns: [String]
    /// Whether non-finite mini-batches were recorded and excluded instead of stopping the probe.
    public var skipNonFinite: Bool
    public var toolVersion: String
    /// ISO 8601 time of writing.
    public var created: String
    /// Set in shard files only: which shard, and which work items `t·N + a` it holds.
    public var shard: ShardSpec?
    public var shardItems: Range<Int>?

    public init(
        modelConfig: String, checkpointPath: String, checkpointSHA256: String, dataPath: String,
        dataSHA256: String, split: String, kind: String, routing: String, tasks: [String],
        samplesPerTask: Int, batchSize: Int, seed: UInt64, parameterPatterns: [String],
        skipNonFinite: Bool, toolVersion: String = Probe.toolVersion,
        created: String = ProbeMetadata.now(), shard: ShardSpec? = nil, shardItems: Range<Int>? = nil
    ) {
        self.modelConfig = modelConfig
        self.checkpointPath = checkpointPath
        self.checkpointSHA256 = checkpointSHA256
        self.dataPath = dataPath
        self.dataSHA256 = dataSHA256
        self.split = split
        self.kind = kind
        self.routing = routing
        self.tasks = tasks
        self.samplesPerTask = samplesPerTask
        self.batchSize = batchSize
        self.seed = seed
        self.parameterPatterns = parameterPatterns
        self.skipNonFinite = skipNonFinite
        self.toolVersion = toolVersion
        self.created = created
        self.shard = shard
        self.shardItems = shardItems
    }

    /// The current time in ISO 8601 (UTC, seconds).
    public static func now() -> String {
        ISO8601DateFormatter().string(from: Date())
    }

    /// The fields two shards must agree on to be merged, with the name `merge` reports.
    var identity: [(field: String, value: String)] {
        [
            ("model_config", modelConfig), ("checkpoint sha256", checkpointSHA256),
            ("data sha256", dataSHA256), ("split", split), ("kind", kind), ("routing", routing),
            ("tasks", tasks.joined(separator: ",")), ("samples_per_task", String(samplesPerTask)),
            ("batch_size", String(batchSize)), ("seed", String(seed)),
            ("parameters", parameterPatterns.joined(separator: ",")),
            ("skip_nonfinite", String(skipNonFinite)), ("shard count", String(shard?.count ?? 0)),
        ]
    }
}

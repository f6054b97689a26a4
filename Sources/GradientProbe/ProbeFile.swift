import Foundation
import Datasets
import Storage
import UniPerceiver

/// One parameter tensor of a probe file: its attributes and its Gram matrix.
public struct ProbeParameter: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// 0-based encoder layer, −1 for none.
    public let layer: Int
    /// e.g. `ffn.dense2`, `attention.self.qkv_proj`.
    public let role: String
    /// Expert index, −1 for none.
    public let expert: Int
    /// `⟨g_a, g_b⟩` over the T·N rows, task-major, row-major `[T·N · T·N]` (empty when the read was
    /// asked for attributes only).
    public let gram: [Double]
    /// Whether the file also holds the raw rows (`/parameters/<name>/gradients`).
    public let hasGradients: Bool
}

/// Everything a probe file holds except the raw gradient rows (read those with
/// ``ProbeFile/gradients(_:parameter:rows:)``).
public struct ProbeContents: Sendable, Equatable {
    /// The file's path.
    public let file: String
    public let metadata: ProbeMetadata
    /// Per task, the loss of each probed mini-batch `[N]`.
    public let losses: [String: [Float]]
    /// Per task, the dataset indices of each mini-batch `[N][B]`.
    public let examples: [String: [[Int]]]
    /// Per task, which mini-batches were non-finite and excluded (`--skip-nonfinite`); their rows
    /// are zero. All false when the file has no mask.
    public let excluded: [String: [Bool]]
    /// Selected parameters in the model's table order.
    public let parameters: [ProbeParameter]

    public var tasks: [String] { metadata.tasks }
    /// N, mini-batches per task.
    public var samplesPerTask: Int { metadata.samplesPerTask }
    /// T·N, the size of every Gram matrix.
    public var rowCount: Int { metadata.tasks.count * metadata.samplesPerTask }

    /// The parameter called `name`.
    public func parameter(named name: String) -> ProbeParameter? {
        parameters.first { $0.name == name }
    }

    /// The mini-batch numbers excluded in any task. The notebook pairs sample `b` of every task, so
    /// an analysis that drops excluded samples drops index `b` from every task at once.
    public var excludedSamples: [Int] {
        (0..<samplesPerTask).filter { b in excluded.values.contains { $0[b] } }
    }
}

/// The probe file (`probe.h5`, architecture.md "Files"): writing helpers for `Probe.run` and
/// `Probe.merge`, and the reader the analysis uses.
///
/// ```
/// /  attrs: format, version, model_config, checkpoint [path, sha256], data [path, sha256], split,
///           kind, routing, tasks, samples_per_task, batch_size, seed, parameters (globs),
///           skip_nonfinite, tool_version, created  (+ shard [K, N], shard_items [lo, hi] in shards)
/// /tasks/<task>/loss        float32 [N]            /tasks/<task>/examples int64 [N, B]
/// /tasks/<task>/nonfinite   uint8   [N]            only with --skip-nonfinite (1 = excluded)
/// /parameters/<name>        attrs: shape, layer, role, expert
/// /parameters/<name>/gram      float64 [T·N, T·N]  (not in shards; all-zero 8-row chunks unwritten)
/// /parameters/<name>/gradients float32 [T·N, P]    --store-gradients, spilled rows, and shards
/// ```
/// In a shard, `/tasks/<task>` holds only the shard's mini-batches of that task (attribute
/// `first_sample` gives the first one's number), and gradients hold only the shard's rows.
public enum ProbeFile {
    public static let format = "task-interference/probe"
    public static let version = 1

    static func taskPath(_ task: String) -> String { "/tasks/\(task)" }
    static func parameterPath(_ name: String) -> String { "/parameters/\(name)" }
    static func gramPath(_ name: String) -> String { "/parameters/\(name)/gram" }
    static func gradientsPath(_ name: String) -> String { "/parameters/\(name)/gradients" }

    // MARK: Reading

    /// Reads a complete (unsharded or merged) probe file.
    ///
    /// - Parameters:
    ///   - parameters: names to read (default: all); others are skipped.
    ///   - grams: false reads attributes only (`gram` left empty).
    /// - Throws: `ProbeError.unreadable` (missing, not HDF5, truncated), `.wrongFormat`,
    ///   `.unsupportedVersion`, `.missingAttribute`, `.missingDataset`, `.badContent` (a shape that
    ///   contradicts the root attributes), `.isShard`, each naming the file.
    public static func read(
        _ url: URL, parameters wanted: [String]? = nil, grams: Bool = true
    ) throws(ProbeError) -> ProbeContents {
        let file = try open(url)
        defer { file.discard() }
        let metadata = try readMetadata(file)
        if let shard = metadata.shard {
            throw .isShard(file: url.path, index: shard.index, count: shard.count)
        }
        let n = metadata.samplesPerTask
        let rows = metadata.tasks.count * n
        var losses: [String: [Float]] = [:]
        var examples: [String: [[Int]]] = [:]
        var excluded: [String: [Bool]] = [:]
        for task in metadata.tasks {
            let piece = try readTask(file, task: task, metadata: metadata, expectedCount: n)
            losses[task] = piece.losses
            examples[task] = piece.examples
            excluded[task] = piece.excluded
        }
        var result: [ProbeParameter] = []
        for name in try parameterNames(file) where wanted?.contains(name) ?? true {
            var parameter = try readParameter(file, name: name)
            if grams {
                let path = gramPath(name)
                let array = try reading(file) { () throws(StorageError) in try file.read(path, as: Double.self) }
                guard array.shape == [rows, rows] else {
                    throw .badContent(
                        file: url.path, path: path,
                        reason: "shape \(array.shape), expected [\(rows), \(rows)] (T·N = \(metadata.tasks.count)·\(n))")
                }
                parameter = ProbeParameter(
                    name: name, shape: parameter.shape, layer: parameter.layer, role: parameter.role,
                    expert: parameter.expert, gram: array.values, hasGradients: parameter.hasGradients)
            }
            result.append(parameter)
        }
        if let wanted, let missing = wanted.first(where: { name in !result.contains { $0.name == name } }) {
            throw .missingDataset(file: url.path, path: parameterPath(missing))
        }
        return ProbeContents(
            file: url.path, metadata: metadata, losses: losses, examples: examples, excluded: excluded,
            parameters: result)
    }

    /// Raw gradient rows `rows` of one parameter, `[rows.count · P]` Float32 (only in files written
    /// with `--store-gradients`, spilled rows, or shards).
    public static func gradients(
        _ url: URL, parameter name: String, rows: Range<Int>? = nil
    ) throws(ProbeError) -> (shape: [Int], values: [Float]) {
        let file = try open(url)
        defer { file.discard() }
        let path = gradientsPath(name)
        guard file.exists(path) else { throw .missingDataset(file: url.path, path: path) }
        let array = try reading(file) { () throws(StorageError) in
            if let rows { return try file.readRows(rows, from: path, as: Float.self) }
            return try file.read(path, as: Float.self)
        }
        return (array.shape, array.values)
    }

    static func open(_ url: URL) throws(ProbeError) -> HDF5File {
        do { return try HDF5File.open(url) } catch { throw ProbeError.reading(error) }
    }

    /// Runs a storage read, turning its error into the probe-level case.
    static func reading<T>(_ file: HDF5File, _ body: () throws(StorageError) -> T) throws(ProbeError) -> T {
        do { return try body() } catch { throw ProbeError.reading(error) }
    }

    /// Root attributes; refuses another format or version first.
    static func readMetadata(_ file: HDF5File) throws(ProbeError) -> ProbeMetadata {
        let name = file.url.path
        let format = try? file.stringAttribute("format")
        guard format == self.format else { throw .wrongFormat(file: name, found: format) }
        let version = try? file.intAttribute("version")
        guard version == self.version else {
            throw .unsupportedVersion(file: name, found: version, supported: self.version)
        }
        let metadata = try reading(file) { () throws(StorageError) -> ProbeMetadata in
            let checkpoint = try file.stringsAttribute("checkpoint")
            let data = try file.stringsAttribute("data")
            var metadata = ProbeMetadata(
                modelConfig: try file.stringAttribute("model_config"),
                checkpointPath: checkpoint.first ?? "", checkpointSHA256: checkpoint.dropFirst().first ?? "",
                dataPath: data.first ?? "", dataSHA256: data.dropFirst().first ?? "",
                split: try file.stringAttribute("split"), kind: try file.stringAttribute("kind"),
                routing: try file.stringAttribute("routing"), tasks: try file.stringsAttribute("tasks"),
                samplesPerTask: try file.intAttribute("samples_per_task"),
                batchSize: try file.intAttribute("batch_size"),
                seed: UInt64(bitPattern: Int64(try file.intAttribute("seed"))),
                parameterPatterns: try file.stringsAttribute("parameters"),
                skipNonFinite: try file.intAttribute("skip_nonfinite") != 0,
                toolVersion: try file.stringAttribute("tool_version"),
                created: try file.stringAttribute("created"))
            if file.hasAttribute("shard") {
                let shard = try file.intsAttribute("shard")
                let items = try file.intsAttribute("shard_items")
                if shard.count == 2, items.count == 2, items[0] <= items[1],
                    let spec = try? ShardSpec(index: shard[0], count: shard[1])
                {
                    metadata.shard = spec
                    metadata.shardItems = items[0]..<items[1]
                } else {
                    throw StorageError.outOfRange(
                        file: name, path: "/", reason: "bad shard attributes \(shard) \(items)")
                }
            }
            return metadata
        }
        // Names this tool cannot rebuild mini-batches for mean the file was not written by `probe`.
        if let unknown = metadata.tasks.first(where: { TaskKind(rawValue: $0) == nil }) {
            throw .badContent(
                file: name, path: "/",
                reason: "root attribute 'tasks' lists '\(unknown)', not a task of this tool (known: \(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard DatasetSplit(rawValue: metadata.split) != nil else {
            throw .badContent(
                file: name, path: "/",
                reason: "root attribute 'split' is '\(metadata.split)', not one of \(DatasetSplit.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        // Row counts and shapes are products of these: a damaged value must not overflow them.
        let (rows, overflow) = metadata.tasks.count.multipliedReportingOverflow(by: metadata.samplesPerTask)
        guard metadata.samplesPerTask >= 1, !overflow, rows <= Int(Int32.max) else {
            throw .badContent(
                file: name, path: "/", reason: "root attribute 'samples_per_task' is \(metadata.samplesPerTask)")
        }
        guard metadata.batchSize >= 1, metadata.batchSize <= Int(Int32.max) else {
            throw .badContent(file: name, path: "/", reason: "root attribute 'batch_size' is \(metadata.batchSize)")
        }
        return metadata
    }

    struct TaskPiece {
        var first: Int
        var losses: [Float]
        var examples: [[Int]]
        var excluded: [Bool]
    }

    /// One task's losses, examples and mask; `expectedCount` nil accepts any count (shards).
    static func readTask(
        _ file: HDF5File, task: String, metadata: ProbeMetadata, expectedCount: Int?
    ) throws(ProbeError) -> TaskPiece {
        let base = taskPath(task)
        let b = metadata.batchSize
        let name = file.url.path
        let (loss, examples, mask, first) = try reading(file) {
            () throws(StorageError) -> (HDF5Array<Float>, HDF5Array<Int>, HDF5Array<UInt8>?, Int) in
            let loss = try file.read("\(base)/loss", as: Float.self)
            let examples = try file.read("\(base)/examples", as: Int.self)
            let mask = file.exists("\(base)/nonfinite") ? try file.read("\(base)/nonfinite", as: UInt8.self) : nil
            let first = file.hasAttribute("first_sample", at: base) ? try file.intAttribute("first_sample", at: base) : 0
            return (loss, examples, mask, first)
        }
        let count = expectedCount ?? loss.shape.first ?? 0
        guard loss.shape == [count] else {
            throw .badContent(file: name, path: "\(base)/loss", reason: "shape \(loss.shape), expected [\(count)]")
        }
        guard examples.shape == [count, b] else {
            throw .badContent(
                file: name, path: "\(base)/examples", reason: "shape \(examples.shape), expected [\(count), \(b)]")
        }
        if let mask, mask.shape != [count] {
            throw .badContent(file: name, path: "\(base)/nonfinite", reason: "shape \(mask.shape), expected [\(count)]")
        }
        return TaskPiece(
            first: first, losses: loss.values,
            examples: (0..<count).map { Array(examples.values[($0 * b)..<(($0 + 1) * b)]) },
            excluded: mask.map { $0.values.map { $0 != 0 } } ?? Array(repeating: false, count: count))
    }

    static func parameterNames(_ file: HDF5File) throws(ProbeError) -> [String] {
        guard file.exists("/parameters") else {
            throw .missingDataset(file: file.url.path, path: "/parameters")
        }
        return try reading(file) { () throws(StorageError) in try file.children(of: "/parameters") }
    }

    /// A parameter's attributes (gram left empty).
    static func readParameter(_ file: HDF5File, name: String) throws(ProbeError) -> ProbeParameter {
        let path = parameterPath(name)
        return try reading(file) { () throws(StorageError) -> ProbeParameter in
            ProbeParameter(
                name: name, shape: try file.intsAttribute("shape", at: path),
                layer: try file.intAttribute("layer", at: path), role: try file.stringAttribute("role", at: path),
                expert: try file.intAttribute("expert", at: path), gram: [],
                hasGradients: file.exists(gradientsPath(name)))
        }
    }

    // MARK: Writing

    static func writeMetadata(_ metadata: ProbeMetadata, to file: HDF5File) throws(StorageError) {
        try file.setAttribute("format", .string(format))
        try file.setAttribute("version", .int(version))
        try file.setAttribute("model_config", .string(metadata.modelConfig))
        try file.setAttribute("checkpoint", .strings([metadata.checkpointPath, metadata.checkpointSHA256]))
        try file.setAttribute("data", .strings([metadata.dataPath, metadata.dataSHA256]))
        try file.setAttribute("split", .string(metadata.split))
        try file.setAttribute("kind", .string(metadata.kind))
        try file.setAttribute("routing", .string(metadata.routing))
        try file.setAttribute("tasks", .strings(metadata.tasks))
        try file.setAttribute("samples_per_task", .int(metadata.samplesPerTask))
        try file.setAttribute("batch_size", .int(metadata.batchSize))
        try file.setAttribute("seed", .int(Int(Int64(bitPattern: metadata.seed))))
        try file.setAttribute("parameters", .strings(metadata.parameterPatterns))
        try file.setAttribute("skip_nonfinite", .int(metadata.skipNonFinite ? 1 : 0))
        try file.setAttribute("tool_version", .string(metadata.toolVersion))
        try file.setAttribute("created", .string(metadata.created))
        if let shard = metadata.shard, let items = metadata.shardItems {
            try file.setAttribute("shard", .ints([shard.index, shard.count]))
            try file.setAttribute("shard_items", .ints([items.lowerBound, items.upperBound]))
        }
    }

    static func writeTask(
        _ piece: TaskPiece, task: String, batchSize: Int, mask: Bool, shard: Bool, to file: HDF5File
    ) throws(StorageError) {
        let base = taskPath(task)
        let count = piece.losses.count
        try file.createGroup(base)
        try file.write(piece.losses, shape: [count], to: "\(base)/loss")
        try file.write(piece.examples.flatMap { $0 }, shape: [count, batchSize], to: "\(base)/examples")
        if mask {
            try file.write(piece.excluded.map { $0 ? UInt8(1) : 0 }, shape: [count], to: "\(base)/nonfinite")
        }
        if shard { try file.setAttribute("first_sample", .int(piece.first), at: base) }
    }

    /// Rows per chunk of a Gram dataset: 8, fewer when 8 rows would pass 1 MiB (n > 16 384).
    static func gramChunkRows(_ n: Int) -> Int { max(1, min(8, (1 << 20) / max(8 * n, 1))) }

    /// Writes the Gram `[n · n]` of parameter `name`. Rows are taken in chunks of
    /// ``gramChunkRows(_:)`` (rows 0–7, 8–15, …; the last may be shorter). When some chunk is all
    /// zero, the dataset is chunked that way and the zero chunks are left out: they read
    /// back as 0 (the dataset's fill value) and take no space. An MoE expert's Gram is zero in the
    /// rows of every mini-batch that routed nothing to it; on the demo's MoE checkpoint (N = 100,
    /// B = 16) that is 45 % of its experts' chunks, and the probe file shrinks from 115 to 75 MB.
    /// A Gram without a zero chunk is written whole in chunks of up to 1 MiB, as other datasets are
    /// (8-row chunks there cost the dense probe 0.01–0.04 s more and 1.4 % more file).
    static func writeGram(_ gram: [Double], rows n: Int, name: String, to file: HDF5File) throws(StorageError) {
        let path = gramPath(name)
        let chunk = gramChunkRows(n)
        // By bits, so that a −0 would be written rather than read back as +0.
        let written = stride(from: 0, to: n, by: chunk).map { r0 in
            gram[(r0 * n)..<(min(r0 + chunk, n) * n)].contains { $0.bitPattern != 0 }
        }
        guard written.contains(false) else { return try file.write(gram, shape: [n, n], to: path) }
        try file.createDataset(path, of: Double.self, shape: [n, n], chunkRows: chunk)
        var first = 0
        while first < written.count {
            guard written[first] else { first += 1; continue }
            var end = first + 1
            while end < written.count && written[end] { end += 1 }
            try file.writeRows(Array(gram[(first * chunk * n)..<(min(end * chunk, n) * n)]), at: first * chunk, to: path)
            first = end
        }
    }

    static func writeParameterAttributes(_ p: ProbeParameter, to file: HDF5File) throws(StorageError) {
        let path = parameterPath(p.name)
        try file.createGroup(path)
        try file.setAttribute("shape", .ints(p.shape), at: path)
        try file.setAttribute("layer", .int(p.layer), at: path)
        try file.setAttribute("role", .string(p.role), at: path)
        try file.setAttribute("expert", .int(p.expert), at: path)
    }
}

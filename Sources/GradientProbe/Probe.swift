import Datasets
import Foundation
import Interference
import Kernels
import Storage
import Training
import UniPerceiver

/// What a probe or merge wrote.
public struct ProbeSummary: Sendable, Equatable {
    /// The output file (present under this name only because everything succeeded).
    public let file: URL
    /// Gradient rows recorded (T·N, or the shard's slice).
    public let rows: Int
    /// Parameters recorded.
    public let parameters: Int
    /// Parameters whose rows did not fit the memory budget and went through the file.
    public let spilled: [String]
    /// Mini-batches recorded as non-finite and excluded (`--skip-nonfinite`), as (task, mini-batch).
    public let excluded: [String]
    /// Seconds spent in forward and backward, and in Gram accumulation.
    public let gradientSeconds: Double
    public let gramSeconds: Double
    /// Seconds spent on each mini-batch's gradient after backward: the finiteness check, the zero
    /// test of each parameter's row and keeping the row (copied to memory, or written when spilled).
    public var rowSeconds = 0.0
    /// Seconds spent writing the file's contents after the mini-batches: metadata, per-task
    /// records, stored rows and the Grams (closing the file is not counted).
    public var fileSeconds = 0.0
    /// Multiply-adds the Gram needs (``GramAccumulator``, the upper triangle): `2 ×` this over
    /// `gramSeconds` is the Gram's achieved FLOP rate (with the disk reads, for spilled rows).
    public var gramMultiplyAdds = 0
    /// Seconds of the whole `Probe.run(checkpoint:…)`, from loading the checkpoint to the file under
    /// its final name (0 when the probe was given a model): what issue 5's "time outside forward and
    /// backward" is a share of.
    public var wallSeconds = 0.0
    /// How an MoE model routed the mini-batches this run probed and kept (not those `--skip-nonfinite`
    /// excluded), pooled from the probe's own forward passes (``ProbeRouting``) and written to the
    /// file's `/routing`; for a merge, the shards' tables pooled. Nil for a dense model.
    public var routing: RoutingTable?
    /// For a merge of an MoE run: the shards that hold mini-batches but no routing table (written
    /// before probe files stored one), so the merged file has none; empty otherwise.
    public var shardsWithoutRouting: [String] = []

    /// `"3.40 s, 16 % outside forward and backward"`, or "" without a wall time.
    public var wallDescription: String {
        guard wallSeconds > 0 else { return "" }
        let outside = 100 * max(0, wallSeconds - gradientSeconds) / wallSeconds
        return "\(String(format: "%.2f", wallSeconds)) s, \(String(format: "%.0f", outside)) % outside forward and backward"
    }

    /// Where the time outside forward and backward went, when the wall time is known:
    /// `"rows 0.05 s, Gram 0.16 s (9.1 GFLOP at 56.9 GFLOP/s), file 0.03 s, the rest 0.11 s"` (the
    /// rest: loading and hashing the checkpoint and data, allocating the row buffers, drawing the
    /// mini-batches, closing the file).
    public var outsideDescription: String {
        guard wallSeconds > 0 else { return "" }
        let rest = max(0, wallSeconds - gradientSeconds - rowSeconds - gramSeconds - fileSeconds)
        func s(_ x: Double) -> String { String(format: "%.2f", x) }
        return "rows \(s(rowSeconds)) s, Gram \(s(gramSeconds)) s (\(gramRate)), file \(s(fileSeconds)) s, "
            + "the rest \(s(rest)) s"
    }

    /// `"Gram 0.42 s, 12.1 GFLOP at 28.8 GFLOP/s"`.
    public var gramDescription: String { "Gram \(String(format: "%.2f", gramSeconds)) s, \(gramRate)" }

    /// `"12.1 GFLOP at 28.8 GFLOP/s"`: the Gram's needed FLOPs (`2 × gramMultiplyAdds`) and rate.
    private var gramRate: String {
        let flops = 2 * Double(gramMultiplyAdds)
        let rate = gramSeconds > 0 ? flops / gramSeconds / 1e9 : 0
        return "\(String(format: "%.1f", flops / 1e9)) GFLOP at \(String(format: "%.1f", rate)) GFLOP/s"
    }
}

/// Where the model and data of a probe came from (written to the file's root attributes).
public struct ProbeSource: Sendable, Equatable {
    public var checkpointPath: String
    public var checkpointSHA256: String
    public var dataPath: String
    public var dataSHA256: String
    /// `dense` or `moe`; the MoE routing (`none` for dense).
    public var kind: String
    public var routing: String

    public init(
        checkpointPath: String, checkpointSHA256: String, dataPath: String, dataSHA256: String,
        kind: String = "dense", routing: String = "none"
    ) {
        self.checkpointPath = checkpointPath
        self.checkpointSHA256 = checkpointSHA256
        self.dataPath = dataPath
        self.dataSHA256 = dataSHA256
        self.kind = kind
        self.routing = routing
    }
}

/// The gradient probe (issue 5 items 1–2; uniperceiver-model.md §6.3–6.4): at fixed weights, for
/// each task draw N mini-batches of B examples, take each mini-batch's full loss gradient, and for
/// every selected parameter accumulate the Gram matrix of the T·N gradient rows (task-major) into
/// the probe file.
///
/// **Memory.** Rows are gathered per parameter (`[T·N, P]` Float32). Parameters are taken in table
/// order and kept in memory while their rows fit `memoryBudget`; the others are *spilled*: each row
/// goes to `/parameters/<name>/gradients` as it is computed and the Gram is computed from the file
/// in blocks of rows that fit the budget (``GramAccumulator``). Both paths give the same Gram bit for
/// bit. Spilled rows stay in the file (as if `--store-gradients` had been asked for that parameter).
/// Beyond the budget the probe needs the model, one gradient buffer, one Gram (`(T·N)²` Doubles)
/// and `T·N × GramAccumulator.columnBlock` Doubles of conversion space.
///
/// **Shards.** A cross-shard Gram entry `⟨g_a, g_b⟩` needs both rows, so a shard cannot finish its
/// Gram: it stores its rows (`--store-gradients` is implied), writes no Gram, and `merge`
/// recomputes every Gram from all shards' rows with the same arithmetic as an unsharded run.
public enum Probe {
    /// Written to every file's `tool_version`.
    public static let toolVersion = "task-interference 0.1.0"

    /// Probes the model of `checkpoint` on the dataset `data` and writes `out` atomically.
    /// - Parameter progress: called after each mini-batch with (done, total).
    /// - Throws: `ProbeError` — `.checkpoint`, `.dataset` (including an image shape that does not
    ///   fit the model), `.badOption`, `.noParameterMatches`, `.nonFiniteGradient`, `.storage`.
    @discardableResult
    public static func run(
        checkpoint: URL, data: URL, options: ProbeOptions, out: URL,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(ProbeError) -> ProbeSummary {
        try options.validate()
        let clock = ContinuousClock()
        let start = clock.now
        let model: Model
        do { model = try Checkpoint.load(checkpoint) } catch { throw .checkpoint(error) }
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: checkpoint)) } catch {
            throw .unreadable(file: checkpoint.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let header = (try? SafeTensors.parse(bytes, file: checkpoint.path))?.metadata ?? [:]
        let dataset: DigitsDataset
        do { dataset = try DigitsDataset.load(data) } catch { throw .dataset(error) }
        let source = ProbeSource(
            checkpointPath: checkpoint.path, checkpointSHA256: SHA256.hex(of: bytes),
            dataPath: data.path, dataSHA256: try FileFingerprint.sha256(ofFile: data),
            kind: header["kind"] ?? "dense", routing: header["routing"] ?? "none")
        var summary = try run(
            model: model, dataset: dataset, source: source, options: options, out: out, progress: progress)
        summary.wallSeconds = (clock.now - start).seconds
        return summary
    }

    /// Probes `model` on `dataset` (see ``run(checkpoint:data:options:out:progress:)``).
    @discardableResult
    public static func run(
        model: Model, dataset: DigitsDataset, source: ProbeSource, options: ProbeOptions, out: URL,
        progress: ((Int, Int) -> Void)? = nil
    ) throws(ProbeError) -> ProbeSummary {
        // One buffer for every mini-batch, overwritten whole by `gradient(into:)` (the rows are
        // copied out of it before the next one); experts left unchosen stay zero between calls.
        var gradient = [Float](repeating: 0, count: model.parameters.count)
        var zeroed = Model.ZeroedExperts()
        return try run(
            model: model, dataset: dataset, source: source, options: options, out: out,
            progress: progress
        ) { (batch, noise) throws(ProbeError) in
            do throws(ModelError) {
                let pass = try model.forward(batch, noise: noise)
                model.gradient(pass, into: &gradient, zeroed: &zeroed)
                return ProbeGradient(
                    loss: pass.loss, values: gradient, zeroRanges: model.zeroRanges(of: zeroed),
                    routing: pass.routingStatistics)
            } catch { throw .model(error) }
        }
    }

    /// One mini-batch's loss and gradient, the ranges of the gradient known to hold zeros
    /// (`Model.zeroRanges(of:)`: unchosen experts), which the probe neither scans nor keeps, and how
    /// its forward pass routed (an MoE model's; pooled into the file's `/routing`).
    struct ProbeGradient {
        var loss: Double
        var values: [Float]
        var zeroRanges: [Range<Int>] = []
        var routing: [RoutingStatistics] = []
    }

    /// The probe with an injectable gradient (tests use it to plant a non-finite mini-batch).
    static func run(
        model: Model, dataset: DigitsDataset, source: ProbeSource, options: ProbeOptions, out: URL,
        progress: ((Int, Int) -> Void)?,
        gradient: (Batch, RoutingNoise) throws(ProbeError) -> ProbeGradient
    ) throws(ProbeError) -> ProbeSummary {
        try options.validate()
        do {
            try dataset.checkImageShape(imageSize: model.config.imageSize, channels: model.config.channels)
        } catch { throw .dataset(error) }
        let selected = try options.parameters.select(from: model.table)
        let plan = try WorkPlan(options: options, dataset: dataset)
        let items = options.shard?.slice(of: plan.itemCount) ?? 0..<plan.itemCount
        let isShard = options.shard != nil
        let storeGradients = options.storeGradients || isShard
        let rowCount = items.count

        // Which parameters keep their rows in memory: table order, while they fit the budget.
        var left = options.memoryBudget
        let inMemory = selected.map { p -> Bool in
            let bytes = rowCount * p.count * MemoryLayout<Float>.size
            guard bytes <= left else { return false }
            left -= bytes
            return true
        }

        let metadata = ProbeMetadata(
            modelConfig: model.config.jsonString(), checkpointPath: source.checkpointPath,
            checkpointSHA256: source.checkpointSHA256, dataPath: source.dataPath,
            dataSHA256: source.dataSHA256, split: options.split.rawValue, kind: source.kind,
            routing: source.routing, tasks: options.tasks.map(\.rawValue),
            samplesPerTask: options.samplesPerTask, batchSize: options.batchSize, seed: options.seed,
            parameterPatterns: options.parameters.patterns, skipNonFinite: options.skipNonFinite,
            shard: options.shard, shardItems: isShard ? items : nil)

        let file: HDF5File
        do { file = try HDF5File.create(out) } catch { throw .storage(error) }
        do throws(ProbeError) {
            let summary = try record(
                file: file, model: model, dataset: dataset, plan: plan, items: items,
                selected: selected, inMemory: inMemory, metadata: metadata, options: options,
                storeGradients: storeGradients, progress: progress, gradient: gradient)
            do { try file.close() } catch { throw ProbeError.storage(error) }
            return summary
        } catch {
            file.discard()
            throw error
        }
    }

    private static func record(
        file: HDF5File, model: Model, dataset: DigitsDataset, plan: WorkPlan, items: Range<Int>,
        selected: [SelectedParameter], inMemory: [Bool], metadata: ProbeMetadata,
        options: ProbeOptions, storeGradients: Bool,
        progress: ((Int, Int) -> Void)?,
        gradient: (Batch, RoutingNoise) throws(ProbeError) -> ProbeGradient
    ) throws(ProbeError) -> ProbeSummary {
        let rowCount = items.count
        let isShard = options.shard != nil
        func storage(_ body: () throws(StorageError) -> Void) throws(ProbeError) {
            do { try body() } catch { throw .storage(error) }
        }
        // In memory, an MoE expert keeps only its rows that are not all zero, and where each went:
        // its row is zero for every mini-batch that routed nothing to it (three quarters of the demo
        // MoE's 0.94 GB); the Gram skips the others unread. Any other parameter keeps every row in
        // place in one zeroed buffer: appending rows cost the dense probe 0.1 s. An expert's buffer
        // reserves room for every row up front: untouched pages cost address space, not memory, and
        // growing by reallocation had copied and page-faulted its rows over and over.
        var buffers = zip(selected, inMemory).map { p, memory -> GramAccumulator.RowBlock in
            guard memory else { return GramAccumulator.RowBlock(values: []) }
            guard p.expert >= 0 else { return GramAccumulator.RowBlock(values: zeroedRows(rowCount * p.count)) }
            var values: [Float] = []
            values.reserveCapacity(rowCount * p.count)
            return GramAccumulator.RowBlock(values: values, places: [Int](repeating: -1, count: rowCount))
        }
        // Per expert buffer: Floats of its reserved room whose pages `prefaultAhead` faulted in.
        var populated = [Int](repeating: 0, count: selected.count)
        try storage { () throws(StorageError) in
            for (p, memory) in zip(selected, inMemory) where !memory {
                try file.createDataset(
                    ProbeFile.gradientsPath(p.name), of: Float.self, shape: [rowCount, p.count], chunkRows: 1)
            }
        }

        var losses = [[Float]](repeating: [], count: plan.tasks.count)
        var excluded = [[Bool]](repeating: [], count: plan.tasks.count)
        var excludedNames: [String] = []
        let clock = ContinuousClock()
        var gradientTime = Duration.zero
        var rowTime = Duration.zero
        var routingPasses: [RoutingTable] = []
        for (local, w) in items.enumerated() {
            let (t, a) = plan.item(w)
            let task = plan.tasks[t].rawValue
            let batch = plan.batch(w, dataset: dataset)
            let start = clock.now
            let result = try gradient(batch, plan.noise(w))
            let (loss, zeroRanges) = (result.loss, result.zeroRanges)
            var values = result.values
            let rowStart = clock.now
            gradientTime += rowStart - start
            var bad = false
            let nonFinite = values.withUnsafeBufferPointer { firstNonFinite($0, skipping: zeroRanges) }
            if !loss.isFinite || nonFinite != nil {
                guard options.skipNonFinite else {
                    let what: String
                    if !loss.isFinite {
                        what = "loss \(loss)"
                    } else {
                        let index = nonFinite!
                        let name = model.table.entry(containing: index)?.name ?? "?"
                        what = "gradient (first at \(name))"
                    }
                    throw .nonFiniteGradient(task: task, miniBatch: a, what: what)
                }
                bad = true
                excludedNames.append("\(task)#\(a)")
                values = [Float](repeating: 0, count: values.count)
            }
            losses[t].append(Float(loss))
            excluded[t].append(bad)
            // Routing of the mini-batches the metric keeps (an excluded one's may hold NaN weights).
            if !bad && !result.routing.isEmpty {
                routingPasses.append(ProbeRouting.table(result.routing, of: model.config))
            }
            // Start of each known-zero range → its end: a selected tensor inside one is zero unread.
            let knownZero = Dictionary(zeroRanges.map { ($0.lowerBound, $0.upperBound) }, uniquingKeysWith: max)
            for (k, p) in selected.enumerated() {
                if let end = knownZero[p.range.lowerBound], p.range.upperBound <= end { continue }
                let zero = values.withUnsafeBufferPointer { isAllZero(UnsafeBufferPointer(rebasing: $0[p.range])) }
                if zero { continue }
                if inMemory[k] {
                    if buffers[k].places == nil {
                        buffers[k].values.withUnsafeMutableBufferPointer { dst in
                            values.withUnsafeBufferPointer { src in
                                (dst.baseAddress! + local * p.count).update(from: src.baseAddress! + p.offset, count: p.count)
                            }
                        }
                    } else {
                        buffers[k].places![local] = buffers[k].values.count / p.count
                        prefaultAhead(&buffers[k].values, needed: p.count, populated: &populated[k])
                        buffers[k].values.append(contentsOf: values[p.range])
                    }
                } else {
                    // An all-zero row (an MoE expert this mini-batch did not route to) is not
                    // written: the dataset's unwritten rows read as 0 and take no space.
                    let row = Array(values[p.range])
                    try storage { () throws(StorageError) in
                        try file.writeRows(row, at: local, to: ProbeFile.gradientsPath(p.name))
                    }
                }
            }
            rowTime += clock.now - rowStart
            progress?(local + 1, rowCount)
        }

        // Tasks: losses, examples, mask (a shard holds only its own mini-batches of each task).
        var fileTime = Duration.zero
        let metadataStart = clock.now
        let routingTable = ProbeRouting.pooled(routingPasses, of: model.config, tasks: plan.tasks)
        try storage { () throws(StorageError) in
            try ProbeFile.writeMetadata(metadata, to: file)
            try routingTable?.write(to: file)
            for (t, task) in plan.tasks.enumerated() {
                let numbers = items.map { plan.item($0) }.filter { $0.task == t }.map(\.miniBatch)
                guard let first = numbers.first else { continue }
                let piece = ProbeFile.TaskPiece(
                    first: first, losses: losses[t], examples: numbers.map { plan.examples[t][$0] },
                    excluded: excluded[t])
                try ProbeFile.writeTask(
                    piece, task: task.rawValue, batchSize: plan.batchSize, mask: options.skipNonFinite,
                    shard: isShard, to: file)
            }
        }
        fileTime += clock.now - metadataStart

        var gramTime = Duration.zero
        var multiplyAdds = 0
        let workspace = GramAccumulator.Workspace()
        for (k, p) in selected.enumerated() {
            let attributes = ProbeParameter(
                name: p.name, shape: p.shape, layer: p.layer, role: p.role, expert: p.expert, gram: [],
                hasGradients: false)
            let writeStart = clock.now
            try storage { () throws(StorageError) in
                try ProbeFile.writeParameterAttributes(attributes, to: file)
                if inMemory[k] && storeGradients {
                    // Runs of consecutive rows present, one write each; zero rows stay unwritten
                    // and read as 0, as in the spilled path.
                    let path = ProbeFile.gradientsPath(p.name)
                    try file.createDataset(path, of: Float.self, shape: [rowCount, p.count], chunkRows: 1)
                    let places = buffers[k].places ?? Array(0..<rowCount)
                    var first = 0
                    while first < rowCount {
                        guard places[first] >= 0 else { first += 1; continue }
                        var end = first + 1
                        while end < rowCount && places[end] >= 0 { end += 1 }
                        let values = buffers[k].values[(places[first] * p.count)..<(places[end - 1] + 1) * p.count]
                        try file.writeRows(Array(values), at: first, to: path)
                        first = end
                    }
                }
            }
            fileTime += clock.now - writeStart
            if isShard {
                buffers[k] = GramAccumulator.RowBlock(values: [])
                continue
            }
            let start = clock.now
            let gram: [Double]
            if inMemory[k] {
                gram = GramAccumulator.gram(
                    rowCount: rowCount, width: p.count, rows: buffers[k], multiplyAdds: &multiplyAdds,
                    workspace: workspace)
                buffers[k] = GramAccumulator.RowBlock(values: [])
            } else {
                let path = ProbeFile.gradientsPath(p.name)
                gram = try GramAccumulator.gram(
                    rowCount: rowCount, width: p.count,
                    superRows: GramAccumulator.superRows(width: p.count, budget: options.memoryBudget),
                    multiplyAdds: &multiplyAdds, workspace: workspace
                ) { (range) throws(ProbeError) -> [Float] in
                    do throws(StorageError) { return try file.readRows(range, from: path, as: Float.self).values } catch {
                        throw .storage(error)
                    }
                }
            }
            let gramEnd = clock.now
            gramTime += gramEnd - start
            try storage { () throws(StorageError) in
                try ProbeFile.writeGram(gram, rows: rowCount, name: p.name, to: file)
            }
            fileTime += clock.now - gramEnd
        }
        return ProbeSummary(
            file: file.url, rows: rowCount, parameters: selected.count,
            spilled: zip(selected, inMemory).filter { !$1 }.map { $0.0.name }, excluded: excludedNames,
            gradientSeconds: gradientTime.seconds, gramSeconds: gramTime.seconds, rowSeconds: rowTime.seconds,
            fileSeconds: fileTime.seconds, gramMultiplyAdds: multiplyAdds, routing: routingTable)
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}

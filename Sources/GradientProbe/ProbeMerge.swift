import Foundation
import Interference
import Kernels
import Storage

extension Probe {
    /// Joins the shards of one sharded probe into the probe file an unsharded run would have
    /// written: the same losses, examples and masks, and every Gram recomputed from all shards'
    /// rows with the unsharded run's arithmetic (``GramAccumulator``), hence bit for bit equal.
    ///
    /// Shards may be given in any order; together they must be shards 1…N of one run, each once.
    ///
    /// - Parameters:
    ///   - storeGradients: also copy the raw rows into `out`.
    ///   - memoryBudget: bytes of rows held at once while computing the Grams.
    /// - Throws: `ProbeError.mismatchedShards` naming the two files and the field they disagree on
    ///   (model, checkpoint, data, split, tasks, N, B, seed, parameters, shard count, routing table);
    ///   `.incompleteShards` for a missing, repeated or unsharded file; read errors naming the file.
    @discardableResult
    public static func merge(
        shards urls: [URL], out: URL, storeGradients: Bool = false,
        memoryBudget: Int = ProbeOptions.defaultMemoryBudget
    ) throws(ProbeError) -> ProbeSummary {
        guard !urls.isEmpty else { throw .incompleteShards(reason: "no shard to merge") }
        var files: [HDF5File] = []
        defer { for file in files { file.discard() } }
        var shards: [(url: URL, file: HDF5File, metadata: ProbeMetadata)] = []
        for url in urls {
            let file = try ProbeFile.open(url)
            files.append(file)
            let metadata = try ProbeFile.readMetadata(file)
            guard metadata.shard != nil, metadata.shardItems != nil else {
                throw .incompleteShards(reason: "\(url.path) is not a shard (no 'shard' attribute)")
            }
            shards.append((url, file, metadata))
        }

        // Same model, data and request.
        let reference = shards[0]
        let names = try ProbeFile.parameterNames(reference.file)
        for other in shards.dropFirst() {
            for (mine, theirs) in zip(reference.metadata.identity, other.metadata.identity)
            where mine.value != theirs.value {
                throw .mismatchedShards(first: reference.url.path, second: other.url.path, field: mine.field)
            }
            if try ProbeFile.parameterNames(other.file) != names {
                throw .mismatchedShards(
                    first: reference.url.path, second: other.url.path, field: "parameter list")
            }
        }

        // Shards 1…N, each once, tiling the work list.
        let count = reference.metadata.shard!.count
        shards.sort { $0.metadata.shard!.index < $1.metadata.shard!.index }
        // Repeats first: a shard given twice is the likelier cause of another one missing.
        for k in 1...count {
            let matching = shards.filter { $0.metadata.shard!.index == k }
            if matching.count > 1 {
                throw .incompleteShards(
                    reason: "shard \(k)/\(count) is given twice (\(matching[0].url.path), \(matching[1].url.path))")
            }
        }
        for k in 1...count where !shards.contains(where: { $0.metadata.shard!.index == k }) {
            let given = shards.map { "\($0.url.path) is \($0.metadata.shard!.index)/\(count)" }.joined(separator: ", ")
            throw .incompleteShards(reason: "shard \(k)/\(count) is missing (\(given))")
        }
        let tasks = reference.metadata.tasks
        let n = reference.metadata.samplesPerTask
        let itemCount = tasks.count * n
        for shard in shards {
            let expected = shard.metadata.shard!.slice(of: itemCount)
            guard shard.metadata.shardItems == expected else {
                throw .badContent(
                    file: shard.url.path, path: "/",
                    reason: "shard_items \(shard.metadata.shardItems!) but shard \(shard.metadata.shard!) of \(itemCount) items is \(expected)")
            }
        }

        // Tasks: concatenate each task's pieces in shard order.
        var pieces: [ProbeFile.TaskPiece] = []
        for task in tasks {
            var merged = ProbeFile.TaskPiece(first: 0, losses: [], examples: [], excluded: [])
            for shard in shards where shard.file.exists(ProbeFile.taskPath(task)) {
                let piece = try ProbeFile.readTask(
                    shard.file, task: task, metadata: shard.metadata, expectedCount: nil)
                guard piece.first == merged.losses.count else {
                    throw .badContent(
                        file: shard.url.path, path: ProbeFile.taskPath(task),
                        reason: "first_sample \(piece.first), expected \(merged.losses.count)")
                }
                merged.losses += piece.losses
                merged.examples += piece.examples
                merged.excluded += piece.excluded
            }
            guard merged.losses.count == n else {
                throw .incompleteShards(reason: "task \(task) has \(merged.losses.count) of \(n) mini-batches")
            }
            pieces.append(merged)
        }

        // Routing: each shard pooled its own mini-batches; pooled again by tokens (to rounding). A
        // shard with no item has no table; so has one written before tables were stored, and then
        // the merged file has none either rather than a table of part of the run.
        var tables: [(url: URL, table: RoutingTable?)] = []
        for shard in shards where !shard.metadata.shardItems!.isEmpty {
            do { tables.append((shard.url, try RoutingTable.read(from: shard.file, tasks: tasks))) } catch {
                throw .reading(error, file: shard.url)
            }
        }
        let present = tables.compactMap { t in t.table.map { (url: t.url, table: $0) } }
        if let other = present.first(where: {
            $0.table.routing != present[0].table.routing || $0.table.experts != present[0].table.experts
        }) {
            throw .mismatchedShards(first: present[0].url.path, second: other.url.path, field: "routing table")
        }
        let routing = present.count == tables.count ? RoutingTable.pooled(present.map(\.table), tasks: tasks) : nil
        let withoutRouting = present.isEmpty ? [] : tables.filter { $0.table == nil }.map(\.url.path)

        var metadata = reference.metadata
        metadata.shard = nil
        metadata.shardItems = nil
        metadata.created = ProbeMetadata.now()
        metadata.toolVersion = toolVersion

        // Row r of the merged probe is row r − first of the shard whose items hold r.
        let owners = shards.map { (file: $0.file, items: $0.metadata.shardItems!) }
        func load(_ range: Range<Int>, name: String) throws(ProbeError) -> [Float] {
            var rows: [Float] = []
            for owner in owners {
                let lo = max(range.lowerBound, owner.items.lowerBound)
                let hi = min(range.upperBound, owner.items.upperBound)
                guard lo < hi else { continue }
                let local = (lo - owner.items.lowerBound)..<(hi - owner.items.lowerBound)
                let piece = try ProbeFile.reading(owner.file) { () throws(StorageError) in
                    try owner.file.readRows(local, from: ProbeFile.gradientsPath(name), as: Float.self).values
                }
                // A probe never stores a non-finite row (it stops, or zeroes the row with
                // --skip-nonfinite), so one here is damage, and it would poison every Gram entry.
                if let index = piece.withUnsafeBufferPointer({ firstNonFinite($0) }) {
                    let width = piece.count / max(local.count, 1)
                    throw .badContent(
                        file: owner.file.url.path, path: ProbeFile.gradientsPath(name),
                        reason: "non-finite value \(piece[index]) in row \(local.lowerBound + index / max(width, 1))")
                }
                rows += piece
            }
            return rows
        }

        let output: HDF5File
        do { output = try HDF5File.create(out) } catch { throw .storage(error) }
        let clock = ContinuousClock()
        var gramTime = Duration.zero
        var multiplyAdds = 0
        let workspace = GramAccumulator.Workspace()
        do throws(ProbeError) {
            func storage(_ body: () throws(StorageError) -> Void) throws(ProbeError) {
                do { try body() } catch { throw .storage(error) }
            }
            try storage { () throws(StorageError) in
                try ProbeFile.writeMetadata(metadata, to: output)
                try routing?.write(to: output)
                for (task, piece) in zip(tasks, pieces) {
                    try ProbeFile.writeTask(
                        piece, task: task, batchSize: metadata.batchSize, mask: metadata.skipNonFinite,
                        shard: false, to: output)
                }
            }
            for name in names {
                let attributes = try ProbeFile.readParameter(reference.file, name: name)
                let width = attributes.shape.reduce(1, *)
                for shard in shards {
                    let path = ProbeFile.gradientsPath(name)
                    let shape = try ProbeFile.reading(shard.file) { () throws(StorageError) in
                        try shard.file.shape(of: path)
                    }
                    guard shape == [shard.metadata.shardItems!.count, width] else {
                        throw ProbeError.badContent(
                            file: shard.url.path, path: path,
                            reason: "shape \(shape), expected [\(shard.metadata.shardItems!.count), \(width)]")
                    }
                }
                try storage { () throws(StorageError) in
                    try ProbeFile.writeParameterAttributes(attributes, to: output)
                }
                let superRows = GramAccumulator.superRows(width: width, budget: memoryBudget)
                if storeGradients {
                    let path = ProbeFile.gradientsPath(name)
                    try storage { () throws(StorageError) in
                        try output.createDataset(path, of: Float.self, shape: [itemCount, width], chunkRows: 1)
                    }
                    for start in stride(from: 0, to: itemCount, by: superRows) {
                        let rows = try load(start..<min(start + superRows, itemCount), name: name)
                        try storage { () throws(StorageError) in try output.writeRows(rows, at: start, to: path) }
                    }
                }
                let start = clock.now
                let gram = try GramAccumulator.gram(
                    rowCount: itemCount, width: width, superRows: superRows, multiplyAdds: &multiplyAdds,
                    workspace: workspace
                ) {
                    (range) throws(ProbeError) in try load(range, name: name)
                }
                gramTime += clock.now - start
                try storage { () throws(StorageError) in
                    try ProbeFile.writeGram(gram, rows: itemCount, name: name, to: output)
                }
            }
            do { try output.close() } catch { throw ProbeError.storage(error) }
        } catch {
            output.discard()
            throw error
        }
        var summary = ProbeSummary(
            file: out, rows: itemCount, parameters: names.count, spilled: [],
            excluded: zip(tasks, pieces).flatMap { task, piece in
                piece.excluded.enumerated().filter(\.element).map { "\(task)#\($0.offset)" }
            },
            gradientSeconds: 0, gramSeconds: gramTime.seconds, gramMultiplyAdds: multiplyAdds, routing: routing)
        summary.shardsWithoutRouting = withoutRouting
        return summary
    }
}

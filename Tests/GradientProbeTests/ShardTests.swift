import Foundation
import Interference
import Testing
import UniPerceiver

@testable import GradientProbe
@testable import Storage

@Suite struct ShardTests {
    /// Five shards of 12 work items cut across task boundaries (2, 3, 2, 3, 2 items).
    @Test func mergedShardsEqualOneUnshardedRunBitForBit() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        try checkMergedShards(fixture, gradientsOf: ["encoder.layers.0.ffn.dense2.weight", "encoder.layers.1.attention.self.qkv_proj.bias"])
    }

    /// The same with an attribute-routed MoE, whose expert rows are mostly zero: shards keep and
    /// write only the others, and the merge must still give the unsharded run's Grams and rows.
    @Test func moeMergedShardsEqualOneUnshardedRunBitForBit() throws {
        let fixture = try ProbeFixture(model: ProbeFixture.moeModel())
        defer { fixture.remove() }
        let names = try checkMergedShards(fixture, gradientsOf: nil)
        #expect(names.contains { $0.contains(".experts.") })
        // The routing table: the shards' tables pooled by tokens equal the whole run's to rounding
        // (the sums run in another order), the tokens exactly; a dense shard beside them is refused.
        let whole = try #require(try ProbeGrams(url: fixture.file("whole.h5")).routing)
        let merged = try #require(try ProbeGrams(url: fixture.file("merged.h5")).routing)
        #expect(merged.routing == whole.routing && merged.experts == whole.experts)
        #expect(merged.rows.map(\.tokens) == whole.rows.map(\.tokens))
        #expect(merged.rows.map { [$0.layer, $0.segment] } == whole.rows.map { [$0.layer, $0.segment] })
        for (m, w) in zip(merged.rows, whole.rows) {
            #expect(m.task == w.task && m.decision == w.decision && m.side == w.side)
            #expect(zip(m.weightShare, w.weightShare).allSatisfy { abs($0 - $1) <= 1e-12 }, "\(m) vs \(w)")
            #expect(abs(m.meanEntropy - w.meanEntropy) <= 1e-12)
        }
        // Shards that disagree on the table are refused, naming both.
        let edited = try HDF5File.open(fixture.file("shard3.h5"), writable: true)
        try edited.setAttribute("routing", .string("token"), at: RoutingTable.path)
        try edited.close()
        let shards = (1...5).map { fixture.file("shard\($0).h5") }
        #expect(throws: ProbeError.mismatchedShards(first: shards[0].path, second: shards[2].path, field: "routing table")) {
            try Probe.merge(shards: shards, out: fixture.file("mixed.h5"))
        }
        // So are tables of another expert count (each consistent in itself), which would otherwise
        // leave the merged file without a table and without a word.
        let widened = try HDF5File.open(shards[1], writable: true)
        var table = try #require(try RoutingTable.read(from: widened, tasks: ProbeFixture.tasks.map(\.rawValue)))
        table.experts += 1
        for r in table.rows.indices { table.rows[r].weightShare.append(0) }
        try widened.removeIfPresent(RoutingTable.path)
        try table.write(to: widened)
        try widened.close()
        #expect(throws: ProbeError.mismatchedShards(first: shards[0].path, second: shards[1].path, field: "routing table")) {
            try Probe.merge(shards: shards, out: fixture.file("mixed.h5"))
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.file("mixed.h5").path))
    }

    /// More shards than mini-batches: some shards hold none, and have no table of their own; the
    /// merge still has the whole run's.
    @Test func emptyMoEShardsMergeWithTheirRoutingTable() throws {
        let fixture = try ProbeFixture(model: ProbeFixture.moeModel())
        defer { fixture.remove() }
        let whole = try #require(try fixture.probe("whole.h5", ProbeFixture.options()).routing)
        var shards: [URL] = []
        for k in 1...16 {
            try fixture.probe("shard\(k).h5", ProbeFixture.options(shard: try ShardSpec(index: k, count: 16)))
            shards.append(fixture.file("shard\(k).h5"))
        }
        func table(_ url: URL) throws -> RoutingTable? {
            let file = try HDF5File.open(url)
            defer { file.discard() }
            return try RoutingTable.read(from: file, tasks: ProbeFixture.tasks.map(\.rawValue))
        }
        #expect(try shards.filter { try table($0) == nil }.count == 4)  // 16 shards of 12 mini-batches
        let merged = try #require(try Probe.merge(shards: shards, out: fixture.file("merged.h5")).routing)
        #expect(merged.rows.map(\.tokens) == whole.rows.map(\.tokens))
        for (m, w) in zip(merged.rows, whole.rows) {
            #expect(zip(m.weightShare, w.weightShare).allSatisfy { abs($0 - $1) <= 1e-12 }, "\(m) vs \(w)")
        }
    }

    /// Probes `fixture` whole and in five shards, merges the shards, and expects the merged file to
    /// equal the whole one; compares the stored rows of `gradientsOf` (nil: every parameter).
    @discardableResult
    func checkMergedShards(_ fixture: ProbeFixture, gradientsOf names: [String]?) throws -> [String] {
        try fixture.probe("whole.h5", ProbeFixture.options(storeGradients: true))
        var shards: [URL] = []
        for k in 1...5 {
            let summary = try fixture.probe("shard\(k).h5", ProbeFixture.options(shard: try ShardSpec(index: k, count: 5)))
            #expect(summary.rows == (try ShardSpec(index: k, count: 5)).slice(of: 12).count)
            shards.append(fixture.file("shard\(k).h5"))
        }
        // A shard is not a probe file yet.
        #expect(throws: ProbeError.isShard(file: shards[1].path, index: 2, count: 5)) {
            try ProbeFile.read(shards[1])
        }
        // Given in any order; a small budget makes the merge read rows block by block.
        try Probe.merge(shards: shards.reversed(), out: fixture.file("merged.h5"), storeGradients: true, memoryBudget: 0)
        let whole = try ProbeFile.read(fixture.file("whole.h5"))
        let merged = try ProbeFile.read(fixture.file("merged.h5"))
        #expect(merged.parameters == whole.parameters)
        #expect(merged.losses == whole.losses)
        #expect(merged.examples == whole.examples)
        #expect(merged.excluded == whole.excluded)
        var expected = whole.metadata
        expected.created = merged.metadata.created
        #expect(merged.metadata == expected)
        // The merge writes each Gram as the probe does: the same chunks left out.
        let wholeFile = try HDF5File.open(fixture.file("whole.h5"))
        let mergedFile = try HDF5File.open(fixture.file("merged.h5"))
        for p in whole.parameters {
            let path = ProbeFile.gramPath(p.name)
            #expect(try mergedFile.storedBytes(of: path) == wholeFile.storedBytes(of: path), "\(p.name)")
        }
        let compared = names ?? whole.parameters.map(\.name)
        for name in compared {
            #expect(
                try ProbeFile.gradients(fixture.file("merged.h5"), parameter: name).values
                    == (try ProbeFile.gradients(fixture.file("whole.h5"), parameter: name).values), "\(name)")
        }
        return compared
    }

    @Test func mergeRefusesShardsOfAnotherRunNamingBothFilesAndTheField() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let options = ProbeFixture.options(parameters: ["*.ffn.dense2.weight"])
        func shard(_ k: Int, _ name: String, _ change: (inout ProbeOptions) -> Void = { _ in }) throws -> URL {
            var o = options
            o.shard = try ShardSpec(index: k, count: 2)
            change(&o)
            try fixture.probe(name, o)
            return fixture.file(name)
        }
        let one = try shard(1, "one.h5")
        let two = try shard(2, "two.h5")
        let otherSeed = try shard(2, "seed.h5") { $0.seed = 99 }
        let otherN = try shard(2, "n.h5") { $0.samplesPerTask = 5 }
        let otherB = try shard(2, "b.h5") { $0.batchSize = 3 }
        let otherTasks = try shard(2, "tasks.h5") { $0.tasks = [.mlm, .imageClassification, .captioning] }
        let otherParameters = try shard(2, "params.h5") { $0.parameters = ParameterSelection(patterns: ["*.ffn.dense.weight"]) }
        let otherCount = try shard(2, "count.h5") { $0.shard = try! ShardSpec(index: 2, count: 3) }
        let out = fixture.file("merged.h5")
        for (file, field) in [
            (otherSeed, "seed"), (otherN, "samples_per_task"), (otherB, "batch_size"), (otherTasks, "tasks"),
            (otherParameters, "parameters"), (otherCount, "shard count"),
        ] {
            #expect(throws: ProbeError.mismatchedShards(first: one.path, second: file.path, field: field)) {
                try Probe.merge(shards: [one, file], out: out)
            }
        }
        // Another model.
        let other = try ProbeFixture(model: ProbeFixture.model(seed: 12))
        defer { other.remove() }
        var o = options
        o.shard = try ShardSpec(index: 2, count: 2)
        try other.probe("two.h5", o)
        #expect(throws: ProbeError.mismatchedShards(first: one.path, second: other.file("two.h5").path, field: "checkpoint sha256")) {
            try Probe.merge(shards: [one, other.file("two.h5")], out: out)
        }
        // Incomplete, repeated, or not shards at all.
        #expect(throws: ProbeError.incompleteShards(reason: "shard 2/2 is missing (\(one.path) is 1/2)")) {
            try Probe.merge(shards: [one], out: out)
        }
        #expect(throws: ProbeError.self) { try Probe.merge(shards: [one, two, two], out: out) }
        // A repeated shard is named even when it leaves another one missing.
        #expect(throws: ProbeError.incompleteShards(reason: "shard 2/2 is given twice (\(two.path), \(two.path))")) {
            try Probe.merge(shards: [two, two], out: out)
        }
        // A damaged row (a valid shard never stores a non-finite one) is named, not merged into NaN Grams.
        let damaged = fixture.file("damaged.h5")
        try FileManager.default.copyItem(at: two, to: damaged)
        let name = "encoder.layers.1.ffn.dense2.weight"
        let file = try HDF5File.open(damaged, writable: true)
        var row = try file.readRows(1..<2, from: "/parameters/\(name)/gradients", as: Float.self).values
        row[3] = .nan
        try file.writeRows(row, at: 1, to: "/parameters/\(name)/gradients")
        try file.close()
        do {
            try Probe.merge(shards: [one, damaged], out: out)
            Issue.record("a shard with a NaN gradient merged")
        } catch {
            #expect(error.description.contains(damaged.path) && error.description.contains("non-finite") && error.description.contains("row 1"), "\(error)")
        }
        // shard_items that disagree with the shard's slice (an edited file): rows would land in the
        // wrong places, so the merge names the file instead.
        let moved = fixture.file("moved.h5")
        try FileManager.default.copyItem(at: two, to: moved)
        let edited = try HDF5File.open(moved, writable: true)
        try edited.setAttribute("shard_items", .ints([5, 11]))
        try edited.close()
        #expect(
            throws: ProbeError.badContent(
                file: moved.path, path: "/", reason: "shard_items 5..<11 but shard 2/2 of 12 items is 6..<12")
        ) {
            try Probe.merge(shards: [one, moved], out: out)
        }
        // Likewise a task's first_sample that does not follow the previous shard's mini-batches.
        let renumbered = fixture.file("renumbered.h5")
        try FileManager.default.copyItem(at: two, to: renumbered)
        let task = try HDF5File.open(renumbered, writable: true)
        let firstTask = try #require(options.tasks.first { task.exists(ProbeFile.taskPath($0.rawValue)) })
        let path = ProbeFile.taskPath(firstTask.rawValue)
        let first = try task.intAttribute("first_sample", at: path)
        try task.setAttribute("first_sample", .int(first + 1), at: path)
        try task.close()
        do {
            try Probe.merge(shards: [one, renumbered], out: out)
            Issue.record("a shard with a renumbered task merged")
        } catch {
            #expect(
                error.description.contains(renumbered.path) && error.description.contains("first_sample \(first + 1), expected \(first)"),
                "\(error)")
        }
        try fixture.probe("whole.h5", options)
        #expect(throws: ProbeError.incompleteShards(reason: "\(fixture.file("whole.h5").path) is not a shard (no 'shard' attribute)")) {
            try Probe.merge(shards: [one, fixture.file("whole.h5")], out: out)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        try Probe.merge(shards: [two, one], out: out)
        #expect(FileManager.default.fileExists(atPath: out.path))
    }
}

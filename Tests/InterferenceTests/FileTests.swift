import Foundation
import Interference
import Storage
import TestSupport
import Testing

/// A small probe file as `interference probe` writes it (only what the metric reads).
func writeProbe(
    to url: URL, tasks: [String], samples: Int, parameters: [String: [[Double]]],
    format: String = ProbeGrams.format,
    version: Int = ProbeGrams.version
) throws {
    try HDF5File.write(to: url) { (file: HDF5File) throws(StorageError) in
        try file.setAttribute("format", .string(format))
        try file.setAttribute("version", .int(version))
        try file.setAttribute("tasks", .strings(tasks))
        try file.setAttribute("samples_per_task", .int(samples))
        try file.setAttribute("kind", .string("dense"))
        for (name, rows) in parameters {
            let gram = try! GramMatrix(rows: rows)
            try file.createGroup("/parameters/\(name)")
            try file.write(
                gram.values, shape: [gram.size, gram.size], to: "/parameters/\(name)/gram")
        }
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "interference-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct FileTests {
    static let tasks = ["cls", "mlm", "cap"]
    static func parameters() -> [String: [[Double]]] {
        let rows = structuredRows(tasks: 3, samples: 6, width: 30, seed: 31)
        return [
            "encoder.layers.0.ffn.dense2.weight": rows.map { Array($0[0..<20]) },
            "encoder.layers.0.ffn.dense2.bias": rows.map { Array($0[20..<30]) },
            "encoder.layers.1.ffn.dense2.weight": structuredRows(
                tasks: 3, samples: 6, width: 12, seed: 32),
        ]
    }

    @Test func probeToAnalysisToFileRoundTrip() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let probeURL = dir.appendingPathComponent("probe.h5")
        let params = Self.parameters()
        try writeProbe(to: probeURL, tasks: Self.tasks, samples: 6, parameters: params)

        let probe = try ProbeGrams(url: probeURL)
        #expect(
            probe.layout.tasks == Self.tasks && probe.layout.samplesPerTask == 6
                && probe.kind == "dense")
        let analysis = try probe.analyze(grouping: .layer, bootstrapReplicates: 50, seed: 5)
        #expect(analysis.groups.map(\.name) == ["encoder.layers.0", "encoder.layers.1"])
        #expect(analysis.label == "dense")

        // Layer 0 from summed Grams equals layer 0 from its concatenated raw rows.
        let rows = structuredRows(tasks: 3, samples: 6, width: 30, seed: 31)
        let direct = try InterferenceMatrix(rows: rows, layout: probe.layout)
        let fromFile = try #require(analysis.group(named: "encoder.layers.0")).interference
        for i in 0..<3 { for j in 0..<3 { #expect(abs(fromFile[i, j] - direct[i, j]) < 1e-12) } }

        let out = dir.appendingPathComponent("interference.h5")
        try InterferenceFile.write(analysis, to: out)
        let back = try InterferenceFile.read(out)
        #expect(back == analysis)
        #expect(back.groups.allSatisfy { $0.lookAhead == nil })

        // A look-ahead check on layer 1 (measured changes = first-order ones perturbed) round-trips,
        // and its matrices are what its pairs give.
        var checked = analysis
        let gram = try probe.gram(of: "encoder.layers.1.ffn.dense2.weight")
        let pairs = LookAheadPlan.pairs(layout: probe.layout, lossSamples: 3, stepSamples: 2, seed: 4)
        let firstOrder = try LookAheadPlan.firstOrder(
            pairs, gram: gram, layout: probe.layout, stepSize: 0.01)
        var exact = firstOrder
        for k in exact.indices { exact[k].lossChange *= 1 + 0.01 * Double(k % 5) }
        checked.groups[1].lookAhead = try LookAheadCheck(
            stepSize: 0.01, seed: 4, method: .integral, exactChanges: exact, firstOrderChanges: firstOrder,
            layout: probe.layout)
        try InterferenceFile.write(checked, to: out)
        let backChecked = try InterferenceFile.read(out)
        #expect(backChecked == checked)
        let c = try #require(backChecked.groups[1].lookAhead)
        #expect(c.pairCount == 3 * 3 * 3 * 2 && c.stepSize == 0.01 && c.seed == 4 && c.method == .integral)
        #expect(c.lossChangeRelativeDifference > 0 && c.lossChangeRelativeDifference < 0.04)
        #expect(c.exact.values == checked.groups[1].lookAhead!.exact.values.map { $0 })
        #expect(backChecked.groups[0].lookAhead == nil)
    }

    /// A file written before the look-ahead recorded its method (the demo's MoE file of the
    /// previous stop, `Fixtures/interference_before_method.h5`) reads as the direct difference,
    /// the only method there was.
    @Test func lookAheadWithoutAMethodReadsAsTheDifference() throws {
        let old = try InterferenceFile.read(fixtureURL("interference_before_method.h5"))
        let checks = old.groups.compactMap(\.lookAhead)
        #expect(checks.count == 2)
        for c in checks {
            #expect(c.method == .difference)
            #expect(c.stepSize == 3e-4 && c.pairCount == 144)
        }
    }

    @Test func refusesAnotherFormatOrVersion() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wrongFormat = dir.appendingPathComponent("a.h5")
        try writeProbe(
            to: wrongFormat, tasks: Self.tasks, samples: 6, parameters: [:],
            format: "something-else")
        #expect(
            throws: InterferenceError.badFile(
                file: wrongFormat.path,
                reason: "format is 'something-else', expected 'task-interference/probe'"
            )
        ) { try ProbeGrams(url: wrongFormat) }
        let wrongVersion = dir.appendingPathComponent("b.h5")
        try writeProbe(to: wrongVersion, tasks: Self.tasks, samples: 6, parameters: [:], version: 9)
        #expect(throws: InterferenceError.self) { try ProbeGrams(url: wrongVersion) }
        // A probe file is not an interference file.
        #expect(throws: InterferenceError.self) { try InterferenceFile.read(wrongVersion) }
        // Not HDF5 at all.
        let text = dir.appendingPathComponent("c.h5")
        try Data("hello".utf8).write(to: text)
        do {
            _ = try InterferenceFile.read(text)
            Issue.record("read a text file")
        } catch {
            #expect(error.description.hasPrefix(text.path))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func interferenceFileOfAnotherVersionIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let probeURL = dir.appendingPathComponent("probe.h5")
        try writeProbe(to: probeURL, tasks: Self.tasks, samples: 6, parameters: Self.parameters())
        let analysis = try ProbeGrams(url: probeURL).analyze(
            grouping: .model, bootstrapReplicates: 0, seed: 1)
        #expect(analysis.groups.map(\.name) == ["model"] && analysis.groups[0].interval == nil)
        let url = dir.appendingPathComponent("interference.h5")
        try InterferenceFile.write(analysis, to: url)
        #expect(try InterferenceFile.read(url) == analysis)
        let file = try HDF5File.open(url, writable: true)
        try file.setAttribute("version", .int(2))
        try file.close()
        #expect(
            throws: InterferenceError.badFile(
                file: url.path, reason: "version 2, this tool reads version 1")
        ) {
            try InterferenceFile.read(url)
        }
    }

    /// A damaged Gram is refused naming the file and the dataset: a NaN, a negative squared norm
    /// (every ratio would turn NaN), or asymmetry (the probe writes an exact mirror).
    @Test func damagedGramsAreRefusedNamingFileAndDataset() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let name = "encoder.layers.0.ffn.dense2.bias"
        let path = "/parameters/\(name)/gram"
        for (damage, expected) in [("nan", "non-finite"), ("negative", "negative squared norm"), ("asymmetric", "not symmetric")] {
            let url = dir.appendingPathComponent("\(damage).h5")
            try writeProbe(to: url, tasks: Self.tasks, samples: 6, parameters: Self.parameters())
            let file = try HDF5File.open(url, writable: true)
            var values = try file.read(path, as: Double.self).values
            switch damage {
            case "nan": values[5] = .nan
            case "negative": values[2 * 18 + 2] = -values[2 * 18 + 2]
            default: values[3 * 18 + 7] += 1e-6 * abs(values[3 * 18 + 7]) + 1e-9
            }
            try file.write(values, shape: [18, 18], to: path)
            try file.close()
            let probe = try ProbeGrams(url: url)
            do {
                _ = try probe.analyze(grouping: .layer, bootstrapReplicates: 10, seed: 1)
                Issue.record("\(damage): a damaged Gram was analysed")
            } catch {
                #expect(error.description.hasPrefix(url.path) && error.description.contains(path), "\(damage): \(error)")
                #expect(error.description.contains(expected), "\(damage): \(error)")
            }
        }
        // The same file undamaged analyses; a bootstrap count beyond the bound is refused.
        let url = dir.appendingPathComponent("good.h5")
        try writeProbe(to: url, tasks: Self.tasks, samples: 6, parameters: Self.parameters())
        _ = try ProbeGrams(url: url).analyze(grouping: .layer, bootstrapReplicates: 10, seed: 1)
        #expect(throws: InterferenceError.invalidBootstrap(reason: "replicates must be in 2…100000, got 1000000000000")) {
            try ProbeGrams(url: url).analyze(grouping: .layer, bootstrapReplicates: 1_000_000_000_000, seed: 1)
        }
        // …and so is one replicate, whose "interval" is a single resampled value.
        #expect(throws: InterferenceError.invalidBootstrap(reason: "replicates must be in 2…100000, got 1")) {
            try ProbeGrams(url: url).analyze(grouping: .layer, bootstrapReplicates: 1, seed: 1)
        }
        _ = try ProbeGrams(url: url).analyze(grouping: .layer, bootstrapReplicates: 2, seed: 1)
    }

    /// The Gram checks reach every entry and hold to round-off: a negative first squared norm, an
    /// asymmetry in the last column, and one of a hundred-millionth of the norms are all refused.
    @Test func gramChecksReachTheFirstRowTheLastColumnAndSmallAsymmetries() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let name = "encoder.layers.0.ffn.dense2.bias"
        let path = "/parameters/\(name)/gram"
        let damages: [(name: String, expected: String, damage: (inout [Double]) -> Void)] = [
            ("first-diagonal", "negative squared norm", { $0[0] = -$0[0] }),
            ("last-column", "not symmetric", { $0[3 * 18 + 17] += 1e-3 * abs($0[3 * 18 + 17]) + 1e-9 }),
            ("small", "not symmetric", { $0[3 * 18 + 7] += 1e-8 * ($0[3 * 18 + 3] * $0[7 * 18 + 7]).squareRoot() }),
        ]
        for (damage, expected, change) in damages {
            let url = dir.appendingPathComponent("\(damage).h5")
            try writeProbe(to: url, tasks: Self.tasks, samples: 6, parameters: Self.parameters())
            let file = try HDF5File.open(url, writable: true)
            var values = try file.read(path, as: Double.self).values
            change(&values)
            try file.write(values, shape: [18, 18], to: path)
            try file.close()
            do {
                _ = try ProbeGrams(url: url).gram(of: name)
                Issue.record("\(damage): a damaged Gram was read")
            } catch {
                #expect(error.description.contains(path) && error.description.contains(expected), "\(damage): \(error)")
            }
        }
    }

    @Test func unknownParameterIsNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("probe.h5")
        try writeProbe(to: url, tasks: Self.tasks, samples: 6, parameters: Self.parameters())
        let probe = try ProbeGrams(url: url)
        #expect(throws: InterferenceError.missing(file: url.path, what: "parameter 'nope'")) {
            try probe.gram(of: "nope")
        }
    }
}

@Suite struct ProbeExclusionTests {
    /// A mini-batch marked non-finite in one task is dropped from every task, and a shard is refused.
    @Test func nonFiniteMiniBatchIsDroppedFromEveryTask() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("probe.h5")
        var rows = structuredRows(tasks: 3, samples: 6, width: 16, seed: 41)
        rows[6 + 2] = [Double](repeating: 0, count: 16)  // mlm mini-batch 2: skipped, zero rows
        try writeProbe(
            to: url, tasks: FileTests.tasks, samples: 6,
            parameters: ["encoder.layers.0.x.weight": rows])
        let file = try HDF5File.open(url, writable: true)
        try file.write([UInt8](repeating: 0, count: 6), shape: [6], to: "/tasks/cls/nonfinite")
        try file.write([0, 0, 1, 0, 0, 0] as [UInt8], shape: [6], to: "/tasks/mlm/nonfinite")
        try file.close()

        let probe = try ProbeGrams(url: url)
        #expect(probe.excludedSamples == [2])
        #expect(probe.layout.samplesPerTask == 5)
        let kept = (0..<18).filter { $0 % 6 != 2 }.map { rows[$0] }
        let expected = try InterferenceMatrix(
            rows: kept, layout: TaskLayout(tasks: FileTests.tasks, samplesPerTask: 5))
        let analysis = try probe.analyze(grouping: .model, bootstrapReplicates: 0, seed: 1)
        #expect(analysis.groups[0].interference == expected)
        #expect(analysis.excludedSamples == [2])
        let out = dir.appendingPathComponent("interference.h5")
        try InterferenceFile.write(analysis, to: out)
        #expect(try InterferenceFile.read(out).excludedSamples == [2])

        let shard = dir.appendingPathComponent("shard.h5")
        try writeProbe(to: shard, tasks: FileTests.tasks, samples: 6, parameters: [:])
        let shardFile = try HDF5File.open(shard, writable: true)
        try shardFile.setAttribute("shard", .ints([1, 4]))
        try shardFile.close()
        #expect(throws: InterferenceError.self) { try ProbeGrams(url: shard) }
    }

    /// A mask of another length than N is refused; any non-zero flag excludes its mini-batch.
    @Test func nonFiniteMasksOfAnotherLengthAreRefusedAndAnyNonZeroFlagExcludes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rows = structuredRows(tasks: 3, samples: 6, width: 16, seed: 41)
        for (mask, excluded) in [([0, 0, 0, 0, 0, 0, 1] as [UInt8], nil), ([0, 255, 0, 0, 0, 0], [1] as [Int]?)] {
            let url = dir.appendingPathComponent("probe-\(mask.count).h5")
            try writeProbe(
                to: url, tasks: FileTests.tasks, samples: 6, parameters: ["encoder.layers.0.x.weight": rows])
            let file = try HDF5File.open(url, writable: true)
            try file.write(mask, shape: [mask.count], to: "/tasks/mlm/nonfinite")
            try file.close()
            if let excluded {
                #expect(try ProbeGrams(url: url).excludedSamples == excluded)
            } else {
                #expect(
                    throws: InterferenceError.badFile(
                        file: url.path, reason: "'/tasks/mlm/nonfinite' has shape [7], expected [6]")
                ) { try ProbeGrams(url: url) }
            }
        }
    }
}

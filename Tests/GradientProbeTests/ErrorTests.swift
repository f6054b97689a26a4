import Datasets
import Foundation
import Storage
import Testing
import UniPerceiver

@testable import GradientProbe

@Suite struct ErrorTests {
    static func source(_ fixture: ProbeFixture) -> ProbeSource {
        ProbeSource(
            checkpointPath: fixture.checkpoint.path, checkpointSHA256: "0", dataPath: ProbeFixture.dataURL.path,
            dataSHA256: "0")
    }

    /// Runs the probe with mini-batch `bad` (0-based call order) returning a NaN gradient value, or
    /// with `infiniteLoss`, an infinite loss beside its finite gradient (cross-entropy on a target
    /// whose probability underflows to 0 gives both).
    static func probePlanting(
        _ fixture: ProbeFixture, nanAt bad: Int, infiniteLoss: Bool = false, options: ProbeOptions, out: URL
    ) throws(ProbeError) -> ProbeSummary {
        let model = ProbeFixture.model()
        var calls = 0
        return try Probe.run(
            model: model, dataset: ProbeFixture.dataset, source: source(fixture), options: options, out: out,
            progress: nil
        ) { (batch, _) throws(ProbeError) in
            defer { calls += 1 }
            var result: (loss: Double, gradient: [Float])
            do throws(ModelError) { result = try model.lossAndGradient(batch) } catch { throw .model(error) }
            if calls == bad && infiniteLoss {
                result.loss = .infinity
            } else if calls == bad {
                let entry = model.table.entry(named: "encoder.layers.1.ffn.dense.bias")!
                result.gradient[entry.offset + 3] = .nan
            }
            return Probe.ProbeGradient(loss: result.loss, values: result.gradient)
        }
    }

    @Test func nonFiniteGradientStopsNamingTaskAndMiniBatch() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let out = fixture.file("probe.h5")
        #expect(
            throws: ProbeError.nonFiniteGradient(
                task: "mlm", miniBatch: 2, what: "gradient (first at encoder.layers.1.ffn.dense.bias)")
        ) {
            try Self.probePlanting(fixture, nanAt: 4 + 2, options: ProbeFixture.options(), out: out)
        }
        #expect(try fixture.contents() == ["model.safetensors"])
    }

    @Test func anInfiniteLossStopsTheProbeThoughItsGradientIsFinite() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        #expect(throws: ProbeError.nonFiniteGradient(task: "captioning", miniBatch: 3, what: "loss inf")) {
            try Self.probePlanting(
                fixture, nanAt: 8 + 3, infiniteLoss: true, options: ProbeFixture.options(), out: fixture.file("probe.h5"))
        }
        #expect(try fixture.contents() == ["model.safetensors"])
        // With --skip-nonfinite the mini-batch is recorded and left out of every Gram.
        let summary = try Self.probePlanting(
            fixture, nanAt: 4, infiniteLoss: true, options: ProbeFixture.options(skipNonFinite: true),
            out: fixture.file("probe.h5"))
        #expect(summary.excluded == ["mlm#0"])
        let contents = try ProbeFile.read(fixture.file("probe.h5"))
        #expect(contents.excluded["mlm"] == [true, false, false, false])
        for p in contents.parameters { #expect((0..<12).allSatisfy { p.gram[4 * 12 + $0] == 0 }) }
    }

    @Test func aNaNWeightOfOneTaskStopsAtThatTasksFirstMiniBatch() throws {
        var model = ProbeFixture.model()
        let scale = try #require(model.table.entry(named: "predictor.logit_scale_text_mlm"))
        model.parameters[scale.offset] = .nan
        let fixture = try ProbeFixture(model: model)
        defer { fixture.remove() }
        // From a checkpoint, the NaN weight is refused at load, naming the file and the tensor…
        do {
            try fixture.probe("probe.h5", ProbeFixture.options())
            Issue.record("a checkpoint with a NaN weight loaded")
        } catch {
            let message = "\(error)"
            #expect(
                message.contains(fixture.file("model.safetensors").path) && message.contains("predictor.logit_scale_text_mlm")
                    && message.contains("non-finite"), "\(message)")
        }
        // …and a model given in memory stops at that task's first mini-batch.
        do {
            try Probe.run(
                model: model, dataset: ProbeFixture.dataset, source: ProbeSource(
                    checkpointPath: "memory", checkpointSHA256: "", dataPath: "memory", dataSHA256: ""),
                options: ProbeFixture.options(), out: fixture.file("probe.h5"))
            Issue.record("a NaN logit scale went unnoticed")
        } catch {
            guard case .nonFiniteGradient(let task, let miniBatch, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(task == "mlm")
            #expect(miniBatch == 0)
            #expect(error.description.contains("task mlm, mini-batch 0"))
        }
    }

    @Test func skipNonFiniteRecordsMasksAndExcludes() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let out = fixture.file("probe.h5")
        let summary = try Self.probePlanting(
            fixture, nanAt: 8 + 1, options: ProbeFixture.options(skipNonFinite: true), out: out)
        #expect(summary.excluded == ["captioning#1"])
        let contents = try ProbeFile.read(out)
        #expect(contents.metadata.skipNonFinite)
        #expect(contents.excluded["captioning"] == [false, true, false, false])
        #expect(contents.excluded["mlm"] == [false, false, false, false])
        #expect(contents.excludedSamples == [1])
        let row = 9
        for p in contents.parameters {
            #expect((0..<12).allSatisfy { p.gram[row * 12 + $0] == 0 && p.gram[$0 * 12 + row] == 0 })
        }
        let dense = try #require(contents.parameter(named: "encoder.layers.0.ffn.dense.weight"))
        #expect(dense.gram[8 * 12 + 8] > 0)
    }

    @Test func readerNamesTheFileAndWhatIsWrong() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        let good = fixture.file("probe.h5")
        try fixture.probe("probe.h5", ProbeFixture.options(parameters: ["*.ffn.dense2.weight"]))
        let metadata = try ProbeFile.read(good).metadata

        // Not there, not HDF5, truncated.
        let missing = fixture.file("missing.h5")
        #expect(throws: ProbeError.unreadable(file: missing.path, reason: "no such file")) {
            try ProbeFile.read(missing)
        }
        let text = fixture.file("text.h5")
        try Data("hello".utf8).write(to: text)
        #expect(throws: ProbeError.unreadable(file: text.path, reason: "not an HDF5 file")) {
            try ProbeFile.read(text)
        }
        let bytes = try Data(contentsOf: good)
        let truncated = fixture.file("truncated.h5")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        do {
            _ = try ProbeFile.read(truncated)
            Issue.record("a truncated file was read")
        } catch {
            guard case .unreadable(let file, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(file == truncated.path)
        }

        // Another format, another version.
        let format = fixture.file("format.h5")
        try HDF5File.write(to: format) { (file) throws(StorageError) in
            try file.setAttribute("format", .string("task-interference/interference"))
        }
        #expect(throws: ProbeError.wrongFormat(file: format.path, found: "task-interference/interference")) {
            try ProbeFile.read(format)
        }
        let version = fixture.file("version.h5")
        try HDF5File.write(to: version) { (file) throws(StorageError) in
            try ProbeFile.writeMetadata(metadata, to: file)
            try file.setAttribute("version", .int(2))
        }
        #expect(throws: ProbeError.unsupportedVersion(file: version.path, found: 2, supported: 1)) {
            try ProbeFile.read(version)
        }

        /// Metadata, every task's losses and examples (N = 4, B = 4), and parameter `w`'s
        /// attributes, without its Gram.
        func writeTasksAndParameterW(_ metadata: ProbeMetadata, to file: HDF5File) throws(StorageError) {
            try ProbeFile.writeMetadata(metadata, to: file)
            for task in metadata.tasks {
                let piece = ProbeFile.TaskPiece(
                    first: 0, losses: [1, 2, 3, 4], examples: Array(repeating: [0, 1, 2, 3], count: 4),
                    excluded: Array(repeating: false, count: 4))
                try ProbeFile.writeTask(piece, task: task, batchSize: 4, mask: false, shard: false, to: file)
            }
            try ProbeFile.writeParameterAttributes(
                ProbeParameter(name: "w", shape: [2], layer: -1, role: "w", expert: -1, gram: [], hasGradients: false),
                to: file)
        }

        // A parameter without its Gram; a task without its losses.
        let noGram = fixture.file("nogram.h5")
        try HDF5File.write(to: noGram) { (file) throws(StorageError) in
            try writeTasksAndParameterW(metadata, to: file)
        }
        #expect(throws: ProbeError.missingDataset(file: noGram.path, path: "/parameters/w/gram")) {
            try ProbeFile.read(noGram)
        }
        let noLoss = fixture.file("noloss.h5")
        try HDF5File.write(to: noLoss) { (file) throws(StorageError) in
            try ProbeFile.writeMetadata(metadata, to: file)
        }
        #expect(throws: ProbeError.missingDataset(file: noLoss.path, path: "/tasks/image-classification/loss")) {
            try ProbeFile.read(noLoss)
        }
        let badGram = fixture.file("badgram.h5")
        try HDF5File.write(to: badGram) { (file) throws(StorageError) in
            try writeTasksAndParameterW(metadata, to: file)
            try file.write([Double](repeating: 0, count: 9), shape: [3, 3], to: "/parameters/w/gram")
        }
        #expect(throws: ProbeError.badContent(file: badGram.path, path: "/parameters/w/gram", reason: "shape [3, 3], expected [12, 12] (T·N = 3·4)")) {
            try ProbeFile.read(badGram)
        }
    }

    @Test func badRequestsAreRefusedBeforeAnyWork() throws {
        let fixture = try ProbeFixture()
        defer { fixture.remove() }
        var options = ProbeFixture.options()
        options.tasks = [.mlm, .mlm]
        #expect(throws: ProbeError.badOption(reason: "task mlm is listed twice")) { try fixture.probe("p.h5", options) }
        options = ProbeFixture.options(parameters: ["decoder.*"])
        #expect(throws: ProbeError.noParameterMatches(pattern: "decoder.*")) { try fixture.probe("p.h5", options) }
        options = ProbeFixture.options()
        options.batchSize = 100_000
        #expect(throws: ProbeError.self) { try fixture.probe("p.h5", options) }
        // The library refuses what the command line would (a caller may build options itself).
        for (change, reason) in [
            ({ (o: inout ProbeOptions) in o.tasks = [] }, "no task to probe"),
            ({ $0.samplesPerTask = 1 }, "--samples must be at least 2 (leave-one-out needs two mini-batches per task), got 1"),
            ({ $0.batchSize = 0 }, "--batch-size must be at least 1, got 0"),
            ({ $0.memoryBudget = -1 }, "--memory-budget must not be negative"),
        ] {
            options = ProbeFixture.options()
            change(&options)
            #expect(throws: ProbeError.badOption(reason: reason)) { try fixture.probe("p.h5", options) }
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.file("p.h5").path))
        // A Gram that cannot fit in memory (and a T·N that overflows) is refused up front, not
        // after hours of mini-batches or an out-of-memory kill.
        for samples in [1_000_000_000, Int.max / 2] {
            options = ProbeFixture.options()
            options.samplesPerTask = samples
            do {
                try fixture.probe("p.h5", options)
                Issue.record("--samples \(samples) was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains("--samples \(samples)") && message.contains("memory"), "\(message)")
            }
        }
        #expect(try fixture.contents() == ["model.safetensors"])

        // A model for other images than the data's.
        var config = ProbeFixture.config
        config.imageSize = 12
        let wrong = try ProbeFixture(model: try Model(config: config, seed: 1))
        defer { wrong.remove() }
        do {
            try wrong.probe("p.h5", ProbeFixture.options())
            Issue.record("an image-size mismatch went unnoticed")
        } catch let error as ProbeError {
            guard case .dataset(.imageShapeMismatch) = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
    }
}

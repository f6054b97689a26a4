import Datasets
import Foundation
import Kernels
import Storage
import Testing
import Training
import UniPerceiver

/// The bundled dataset, loaded once for every test of this file.
let bundledDataset: DigitsDataset = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    do { return try DigitsDataset.load(root.appendingPathComponent("notebooks-data/digits.h5")) } catch {
        preconditionFailure("TrainingTests need notebooks-data/digits.h5: \(error)")
    }
}()

/// A model small enough that a step takes a few milliseconds in a debug build.
func tinyModel(seed: UInt64 = 3) throws -> Model {
    let config = try ModelPresets.config(ModelPreset.tiny.shape, for: bundledDataset)
    return try Model(config: config, seed: seed)
}

func tinyOptions(steps: Int, seed: UInt64 = 5, checkpointEvery: Int = 4) -> TrainingOptions {
    TrainingOptions(
        steps: steps, seed: seed, batchSize: 8, peakLearningRate: 3e-3, minLearningRate: 1e-4,
        warmupSteps: 2, lossWeights: ["mlm": 0.5], checkpointEvery: checkpointEvery)
}

func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }

@Suite struct TrainerTests {
    @Test("same seed, same machine → identical checkpoint and optimizer-state bytes; another seed differs")
    func deterministicBytes() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        var files: [[Data]] = []
        for (name, seed) in [("a", UInt64(5)), ("b", 5), ("c", 6)] {
            let directory = root.appendingPathComponent(name)
            let session = try TrainingSession.start(
                directory: directory, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 6, seed: seed))
            let summary = try session.run()
            #expect(summary.step == 6 && !summary.stopped)
            let state = directory.appendingPathComponent("optimizer-00000006.safetensors")
            files.append([try bytes(summary.checkpoint), try bytes(state)])
        }
        #expect(files[0] == files[1])
        #expect(files[0][0] != files[2][0])
    }

    @Test("a task's loss weight scales its gradient before clipping (the logged norm), not its logged loss")
    func lossWeightScalesTheGradient() throws {
        var weighted = tinyOptions(steps: 4)
        weighted.lossWeights = Dictionary(uniqueKeysWithValues: TaskKind.allCases.map { ($0.rawValue, 0.25) })
        var plain = tinyOptions(steps: 4)
        plain.lossWeights = [:]
        let a = try Trainer(model: tinyModel(), dataset: bundledDataset, options: weighted)
        let b = try Trainer(model: tinyModel(), dataset: bundledDataset, options: plain)
        let (ra, rb) = (try a.trainStep(), try b.trainStep())
        #expect(ra.task == rb.task && ra.loss == rb.loss)
        #expect(abs(ra.gradientNorm / rb.gradientNorm - 0.25) < 1e-5, "norms \(ra.gradientNorm) and \(rb.gradientNorm)")
    }

    @Test("k steps, stop, resume, k steps → the same parameters, optimizer and log as 2k steps at once")
    func resumeIsBitExact() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let k = 5
        let straight = try TrainingSession.start(
            directory: root.appendingPathComponent("straight"), model: tinyModel(), dataset: bundledDataset,
            options: tinyOptions(steps: 2 * k, checkpointEvery: 3))
        _ = try straight.run()

        let directory = root.appendingPathComponent("resumed")
        let first = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset,
            options: tinyOptions(steps: 2 * k, checkpointEvery: 3))
        var seen = 0
        let stopped = try first.run(shouldStop: { seen == k }, onStep: { _ in seen += 1 })
        #expect(stopped.stopped && stopped.step == k)
        let second = try TrainingSession.resume(directory: directory, dataset: bundledDataset)
        #expect(second.trainer.step == k)
        let finished = try second.run()
        #expect(!finished.stopped && finished.stepsThisSession == k)
        #expect(second.trainer.model.parameters == straight.trainer.model.parameters)
        #expect(second.trainer.optimizer == straight.trainer.optimizer)
        #expect(try bytes(finished.checkpoint) == bytes(straight.modelURL))
        // The log holds each step once, tasks and losses as in the uninterrupted run.
        func records(_ url: URL) throws -> [String] {
            try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
                String($0.replacing(/,"seconds":[^}]*/, with: ""))
            }
        }
        #expect(try records(second.logURL) == records(straight.logURL))
        #expect(try records(second.logURL).count == 2 * k)
        // Only the state file the model names is left.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["log.jsonl", "model.safetensors", "optimizer-00000010.safetensors"])
    }

    @Test("a stop request ends the session after the current step and writes a checkpoint")
    func stopFlag() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let flag = StopFlag()
        let session = try TrainingSession.start(
            directory: directory.appendingPathComponent("run"), model: tinyModel(), dataset: bundledDataset,
            options: tinyOptions(steps: 50, checkpointEvery: 100))
        let summary = try session.run(shouldStop: { flag.isRaised }, onStep: { if $0.step == 2 { flag.raise() } })
        #expect(summary.stopped && summary.step == 2)
        let saved = try Checkpoint.load(summary.checkpoint)
        #expect(saved.parameters == session.trainer.model.parameters)
        #expect(try SafeTensors.read(summary.checkpoint).metadata["step"] == "2")
    }

    @Test("a NaN weight stops training with the step and task named; the last checkpoint is untouched")
    func nonFiniteLoss() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let session = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset,
            options: tinyOptions(steps: 10, checkpointEvery: 3))
        var poisoned = false
        do {
            _ = try session.run(shouldStop: {
                // After the checkpoint of step 3, poison the encoder before step 4.
                if session.trainer.step == 3 && !poisoned {
                    poisoned = true
                    var values = session.trainer.model.parameters
                    values[session.trainer.model.table.entry(named: "predictor.proj.weight")!.offset] = .nan
                    session.trainer.setParameters(values)
                }
                return false
            })
            Issue.record("training with a NaN weight did not throw")
        } catch {
            guard case .nonFiniteLoss(let step, let task, _) = error else {
                Issue.record("expected nonFiniteLoss, got \(error)")
                return
            }
            #expect(step == 4)
            #expect(TaskKind(rawValue: task) != nil)
            #expect(error.description.contains("step 4") && error.description.contains(task))
            #expect(!error.description.contains("-nan"), "\(error)")
        }
        // A NaN reads as NaN whatever its sign bit.
        let negativeNaN = -Double.nan
        #expect(TrainingError.nonFiniteLoss(step: 1, task: "mlm", value: negativeNaN).description.hasPrefix("step 1, task mlm: loss is NaN;"))
        let saved = try Checkpoint.load(session.modelURL)
        #expect(saved.parameters.allSatisfy { $0.isFinite })
        #expect(try SafeTensors.read(session.modelURL).metadata["step"] == "3")
        // …and the run resumes from it.
        let resumed = try TrainingSession.resume(directory: directory, dataset: bundledDataset)
        #expect(resumed.trainer.step == 3)
    }

    @Test("a fresh run that fails before its first checkpoint leaves nothing, not even an optimizer state written before a failed model file")
    func failedFirstCheckpointLeavesNothing() throws {
        let parent = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let directory = parent.appendingPathComponent("run")
        let session = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset,
            options: tinyOptions(steps: 10, checkpointEvery: 5))
        #expect(throws: TrainingError.self) {
            _ = try session.run(shouldStop: {
                // What a checkpoint whose model file failed leaves (the state is written first),
                // then a NaN weight stops the run before any model file exists.
                if session.trainer.step == 1 {
                    try? Data("state".utf8).write(to: directory.appendingPathComponent("optimizer-00000001.safetensors"))
                    var values = session.trainer.model.parameters
                    values[session.trainer.model.table.entry(named: "predictor.proj.weight")!.offset] = .nan
                    session.trainer.setParameters(values)
                }
                return false
            })
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path), "\((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])")
        // …so the same command runs again.
        _ = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 1)
        ).run()
    }

    @Test("an update that makes a weight infinite stops training before any checkpoint holds it")
    func nonFiniteWeights() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = tinyOptions(steps: 4, checkpointEvery: 1)
        options.peakLearningRate = 1e39  // finite in Double, +∞ once the step is a Float
        options.warmupSteps = 0
        let session = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset, options: options)
        do {
            _ = try session.run()
            Issue.record("a learning rate of 1e39 trained")
        } catch {
            guard case .nonFiniteWeights(let step, _, let tensor) = error else {
                Issue.record("expected nonFiniteWeights, got \(error)")
                return
            }
            #expect(step == 1 && !tensor.isEmpty)
            #expect(error.description.contains("step 1") && error.description.contains(tensor))
        }
        #expect(!FileManager.default.fileExists(atPath: session.modelURL.path), "a checkpoint was written from infinite weights")
        // Nothing a resume could use was written, so nothing is left (not even the log).
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [])
        let fresh = directory.appendingPathComponent("made-by-start")
        var diverging = tinyOptions(steps: 4, checkpointEvery: 10)
        (diverging.peakLearningRate, diverging.warmupSteps) = (1e39, 0)
        #expect(throws: TrainingError.self) {
            try TrainingSession.start(directory: fresh, model: tinyModel(), dataset: bundledDataset, options: diverging).run()
        }
        #expect(!FileManager.default.fileExists(atPath: fresh.path), "the folder start made was left")
    }

    @Test("resume refuses a damaged optimizer state (naming file and tensor), fewer steps than done, and other data; the checkpoint is kept")
    func damagedOptimizerState() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 3, checkpointEvery: 3)
        ).run()
        let model = directory.appendingPathComponent(TrainingSession.modelFileName)
        let before = try bytes(model)
        let stateName = try #require(try SafeTensors.read(model).metadata["optimizer_state"])
        let stateURL = directory.appendingPathComponent(stateName)
        for (tensor, value) in [("exp_avg", Float.nan), ("exp_avg_sq", -1), ("exp_avg_sq", .infinity)] {
            let file = try SafeTensors.read(stateURL)
            let entries = try file.names.map { name -> SafeTensorsEntry in
                if let ints = try? file.ints(name) { return SafeTensorsEntry(name: name, shape: ints.shape, ints: ints.values) }
                var t = try file.tensor(name)
                if name == tensor { t.data[t.data.count / 2] = value }
                return SafeTensorsEntry(name: name, shape: t.shape, floats: t.data)
            }
            let damaged = directory.appendingPathComponent("damaged-" + stateName)
            // Written anew with its checksum: a well-formed file whose values are bad, not a damaged one.
            var metadata = file.metadata
            metadata[SafeTensors.checksumKey] = nil
            try SafeTensors.write(entries, metadata: metadata, checksum: true, to: damaged)
            let original = try bytes(stateURL)
            try FileManager.default.removeItem(at: stateURL)
            try FileManager.default.moveItem(at: damaged, to: stateURL)
            do {
                _ = try TrainingSession.resume(directory: directory, dataset: bundledDataset, steps: 6).run()
                Issue.record("\(tensor) = \(value) was resumed from")
            } catch {
                #expect(error.description.contains(stateURL.path) && error.description.contains(tensor), "\(error)")
            }
            #expect(try bytes(model) == before, "the checkpoint changed")
            try original.write(to: stateURL)
        }
        // Fewer total steps than the checkpoint has done is a mistake, not "train 0 steps".
        #expect(throws: TrainingError.badOption(name: "--steps", reason: "2 is fewer than the 3 steps \(model.path) has already trained")) {
            try TrainingSession.resume(directory: directory, dataset: bundledDataset, steps: 2)
        }
        #expect(try TrainingSession.resume(directory: directory, dataset: bundledDataset, steps: 3).trainer.step == 3)
        // Other data (here the same file with one more byte, which HDF5 reads as before) is refused.
        let other = directory.appendingPathComponent("other.h5")
        try (Data(contentsOf: URL(fileURLWithPath: bundledDataset.file)) + Data([0])).write(to: other)
        let otherDataset = try DigitsDataset.load(other)
        do {
            _ = try TrainingSession.resume(directory: directory, dataset: otherDataset)
            Issue.record("a run resumed on another dataset")
        } catch {
            #expect(error.description.hasPrefix(other.path) && error.description.contains(model.path), "\(error)")
        }
    }

    @Test("bad input: existing checkpoint or run file, nothing to resume, unknown task weight, image shape, bad options")
    func badInput() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: TrainingError.noCheckpoint(directory: directory.path)) {
            try TrainingSession.resume(directory: directory, dataset: bundledDataset)
        }
        _ = try TrainingSession.start(
            directory: directory, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 1)
        ).run()
        #expect(throws: TrainingError.existingCheckpoint(directory: directory.path)) {
            try TrainingSession.start(
                directory: directory, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 1))
        }
        // A folder holding a run's log or optimizer state but no checkpoint: a new run would
        // overwrite them, so it is refused naming the file, which stays as it was.
        for file in [TrainingSession.logFileName, "optimizer-00000007.safetensors"] {
            let other = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: other) }
            let kept = other.appendingPathComponent(file)
            try Data("notes".utf8).write(to: kept)
            #expect(throws: TrainingError.existingRunFile(directory: other.path, file: file)) {
                try TrainingSession.start(
                    directory: other, model: tinyModel(), dataset: bundledDataset, options: tinyOptions(steps: 1))
            }
            #expect(try Data(contentsOf: kept) == Data("notes".utf8))
        }
        var options = tinyOptions(steps: 1)
        options.samplingWeights["ocr"] = 1
        #expect(throws: TrainingError.dataset(.unknownTask(name: "ocr", known: TaskKind.allCases.map(\.rawValue)))) {
            try Trainer(model: tinyModel(), dataset: bundledDataset, options: options)
        }
        options = tinyOptions(steps: 0)
        #expect(throws: TrainingError.self) { try Trainer(model: tinyModel(), dataset: bundledDataset, options: options) }
        var config = try tinyModel().config
        config.imageSize = 12
        config.patchSize = 4
        let wrongImages = try Model(config: config, seed: 1)
        do {
            _ = try Trainer(model: wrongImages, dataset: bundledDataset, options: tinyOptions(steps: 1))
            Issue.record("a 12×12 model accepted 8×8 images")
        } catch {
            #expect(error.description.contains(bundledDataset.file) && error.description.contains("12"))
        }
    }
}

@Suite struct EvaluationTests {
    @Test("metrics lie in [0, 1] with the right chance levels and counts")
    func metrics() throws {
        let model = try tinyModel()
        let report = try Evaluation.evaluate(model, on: bundledDataset, retrievalChunk: 64)
        let validationImages = bundledDataset.indices(of: .imageClassification, in: .validation).count
        #expect(report.metrics.map(\.name) == [
            "image-classification/accuracy", "mlm/masked-token-accuracy", "captioning/token-accuracy",
            "retrieval/image-to-text-recall@1", "retrieval/text-to-image-recall@1",
        ])
        for metric in report.metrics {
            #expect(metric.value >= 0 && metric.value <= 1, "\(metric.name) = \(metric.value)")
            #expect(metric.count > 0)
        }
        #expect(report.metric("image-classification/accuracy")?.chance == 0.1)
        #expect(report.metric("image-classification/accuracy")?.count == validationImages)
        #expect(report.metric("mlm/masked-token-accuracy")?.chance == 1.0 / 82)
        #expect(report.metric("captioning/token-accuracy")?.chance == 1.0 / 82)
        let captionTokens = bundledDataset.indices(of: .captioning, in: .validation)
            .map { bundledDataset.captions[$0].count }.reduce(0, +)
        #expect(report.metric("captioning/token-accuracy")?.count == captionTokens)
        // Retrieval chance: about 1/64 per chunk, a little more where captions repeat inside a chunk.
        let chance = try #require(report.metric("retrieval/image-to-text-recall@1")?.chance)
        #expect(chance >= 1 / 64 && chance < 0.03)
        // Forward only and seeded: evaluating twice gives the same report.
        #expect(try Evaluation.evaluate(model, on: bundledDataset) == report)
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: Data(report.jsonString().utf8))
        #expect(decoded == report)
        // A chunk beyond the split is the whole split, and is reported as such.
        let whole = try Evaluation.evaluate(model, on: bundledDataset, retrievalChunk: 100_000)
        let retrievalImages = try #require(whole.metric("retrieval/image-to-text-recall@1")?.count)
        #expect(whole.retrievalChunk == retrievalImages && retrievalImages < 100_000)
        #expect(whole.table.contains("within chunks of \(retrievalImages) images"))
        // A chunk of 0 would rank every query among nothing; a batch of 0 would never end.
        #expect(throws: TrainingError.badOption(name: "--retrieval-chunk", reason: "must be positive, got 0")) {
            try Evaluation.evaluate(model, on: bundledDataset, retrievalChunk: 0)
        }
        #expect(throws: TrainingError.badOption(name: "--batch-size", reason: "must be positive, got 0")) {
            try Evaluation.evaluate(model, on: bundledDataset, batchSize: 0)
        }
    }

    @Test("a model for other images is refused naming the dataset file")
    func incompatibleModel() throws {
        var config = try tinyModel().config
        config.vocabSize = 90
        let model = try Model(config: config, seed: 1)
        #expect(throws: TrainingError.self) { try Evaluation.evaluate(model, on: bundledDataset) }
    }
}

/// The loss curves of `train --curves` (`TrainingCurves`).
@Suite struct TrainingCurvesTests {
    /// Each task's moving average is bias-corrected, so a constant loss draws a flat line at that
    /// loss from its first step; an axis whose top is a nice number ends there; a non-finite loss
    /// is left out.
    @Test func aConstantLossDrawsAFlatLineAtTheTopOfItsAxis() {
        let svg = TrainingCurves.svg(
            [(step: 1, task: .mlm, loss: 2.0), (step: 2, task: .mlm, loss: 2.0), (step: 2, task: .captioning, loss: .nan)],
            title: "constant")
        // The plot is 520 wide from x = 60 and 310 high from y = 40; the loss axis tops out at 2.
        #expect(svg.contains("points=\"320.0,40.0 580.0,40.0\""), "\(svg)")
        #expect(svg.components(separatedBy: "<polyline").count == 2 && !svg.contains("nan"), "\(svg)")
    }
}

@Suite struct ModelPresetsTests {
    /// The model's text positions cover the longest sequence of any kind: here a corpus sentence
    /// (in the bundled data a caption is the longest).
    @Test func theTextLengthCoversTheLongestCorpusSentence() throws {
        let vocabulary = bundledDataset.vocabulary
        let eot = vocabulary.endOfText
        let dataset = try DigitsDataset(
            file: "synthetic", imageSize: 8, channels: 1, pixels: [UInt8](repeating: 0, count: 2 * 64),
            labels: [0, 1], classNames: [[0, eot], [1, eot]], captions: [[2, eot], [3, 4, eot]],
            corpus: [Array(0..<8) + [eot], [4, eot]], vocabulary: vocabulary,
            imageSplits: [.train: [0], .validation: [1]], corpusSplits: [.train: [0], .validation: [1]])
        #expect(ModelPresets.longestSequence(dataset) == 9)
        #expect(try ModelPresets.config(ModelPreset.tiny.shape, for: dataset).maxTextLength == 9)
    }
}

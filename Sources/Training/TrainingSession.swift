import Datasets
import Foundation
import Kernels
import Storage
import UniPerceiver

/// How a session ended.
public struct TrainingSummary: Sendable, Equatable {
    /// Steps completed in total (including earlier sessions of a resumed run).
    public var step: Int
    /// Steps this session ran.
    public var stepsThisSession: Int
    /// True when a stop request ended the session before `options.steps`.
    public var stopped: Bool
    /// Training seconds of the whole run.
    public var seconds: Double
    public var checkpoint: URL
}

/// A training run in a directory: the `Trainer` plus its files.
///
/// ```
/// DIR/model.safetensors            the model (Checkpoint format); metadata adds
///                                  step, training (TrainingOptions JSON), optimizer_state (file name),
///                                  data_sha256 (the dataset file's, checked on resume)
/// DIR/optimizer-<step>.safetensors AdamW moments and the loop's counters (below)
/// DIR/log.jsonl                    one StepRecord.jsonLine per step
/// ```
/// The optimizer-state file holds F32 `exp_avg` and `exp_avg_sq` (`[P]`, the model's table
/// layout), I64 `adam_step` `[1]`, `task_rng_state` `[1]` (the task generator's UInt64 state as its
/// Int64 bit pattern) and `batches_drawn` `[4]` (per task, `TaskKind` order); metadata `format` =
/// `task-interference/optimizer-state`, `version` = 1, `step`, `training`.
///
/// A checkpoint is written in this order, each file atomically (temporary name, rename): the new
/// optimizer-state file, then the model file that names it, then older optimizer-state files are
/// removed. An interruption at any point leaves a model file and the state file it names, so
/// `--resume` always finds a consistent pair. Same options, seed and machine → identical bytes of
/// both files (no time or path is stored in them; the log holds the seconds).
public final class TrainingSession {
    public static let modelFileName = "model.safetensors"
    public static let logFileName = "log.jsonl"
    public static let stateFormat = "task-interference/optimizer-state"

    public let directory: URL
    public let trainer: Trainer
    /// Seconds of training before this session (from the kept log).
    let secondsBefore: Double
    private var log: FileHandle?

    public var modelURL: URL { directory.appendingPathComponent(Self.modelFileName) }
    public var logURL: URL { directory.appendingPathComponent(Self.logFileName) }

    static func stateFileName(step: Int) -> String {
        "optimizer-" + String(repeating: "0", count: max(0, 8 - String(step).count)) + "\(step).safetensors"
    }

    /// Whether `name` is an optimizer-state file's name (`stateFileName` of some step).
    static func isOptimizerStateName(_ name: String) -> Bool {
        name.hasPrefix("optimizer-") && name.hasSuffix(".safetensors")
    }

    private init(directory: URL, trainer: Trainer, secondsBefore: Double) {
        self.directory = directory
        self.trainer = trainer
        self.secondsBefore = secondsBefore
        dataFingerprint = Self.fingerprint(of: trainer.dataset)
    }

    /// SHA-256 of the dataset's file, recorded in every checkpoint (`data_sha256`) so that a resume
    /// on other data is refused; nil for a dataset that has no readable file (built in memory).
    private let dataFingerprint: String?

    static func fingerprint(of dataset: DigitsDataset) -> String? {
        try? SHA256.hex(ofFile: URL(fileURLWithPath: dataset.file))
    }

    /// A new run into `directory` (created if needed).
    /// - Throws: `.existingCheckpoint` when the directory already holds a model file,
    ///   `.existingRunFile` when it holds a log or optimizer state (which the run would overwrite),
    ///   `.io` when it cannot be created, and everything `Trainer.init` throws.
    public static func start(
        directory: URL, model: Model, dataset: DigitsDataset, options: TrainingOptions
    ) throws(TrainingError) -> TrainingSession {
        let trainer = try Trainer(model: model, dataset: dataset, options: options)
        let fm = FileManager.default
        if fm.fileExists(atPath: directory.appendingPathComponent(modelFileName).path) {
            throw .existingCheckpoint(directory: directory.path)
        }
        let present = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        if let file = present.sorted().first(where: { $0 == logFileName || isOptimizerStateName($0) }) {
            throw .existingRunFile(directory: directory.path, file: file)
        }
        let existed = fm.fileExists(atPath: directory.path)
        do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw .io(file: directory.path, reason: "cannot create the output directory (\(error.localizedDescription))")
        }
        let session = TrainingSession(directory: directory, trainer: trainer, secondsBefore: 0)
        session.createdDirectory = !existed
        try session.rewriteLog(keepingThrough: 0)
        return session
    }

    /// Whether `start` made the run's folder (so a run that fails before its first checkpoint can
    /// remove it again).
    private var createdDirectory = false

    /// A new run that failed before writing any checkpoint leaves nothing: its log (which no
    /// `--resume` could use) goes, and an optimizer state written just before a model file that
    /// failed (a full disk between the two), and the folder too when this session made it. Every
    /// such file is this session's: `start` refuses a folder that already holds one.
    private func removeUnfinishedRun() {
        guard !FileManager.default.fileExists(atPath: modelURL.path) else { return }
        try? log?.close()
        log = nil
        try? FileManager.default.removeItem(at: logURL)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where Self.isOptimizerStateName(name) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        if createdDirectory, (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Continues the run in `directory` from its checkpoint. `steps`, when given, replaces the
    /// run's total (the cosine is then stretched from here on; bit-exact continuation of an
    /// interrupted run needs the original total, the default).
    /// - Throws: `.noCheckpoint`, `.checkpoint` for an unreadable model file, `.badState` for a
    ///   missing or inconsistent optimizer-state file, `.badOption` for `steps` below the step
    ///   reached, `.incompatible` for a dataset other than the run's, and everything
    ///   `Trainer.init` throws.
    public static func resume(
        directory: URL, dataset: DigitsDataset, steps: Int? = nil
    ) throws(TrainingError) -> TrainingSession {
        let modelURL = directory.appendingPathComponent(modelFileName)
        guard FileManager.default.fileExists(atPath: modelURL.path) else { throw .noCheckpoint(directory: directory.path) }
        let model: Model
        do { model = try Checkpoint.load(modelURL) } catch { throw .checkpoint(error) }
        let header: SafeTensorsFile
        do { header = try SafeTensors.read(modelURL) } catch { throw .storage(error) }
        guard let optionsJSON = header.metadata["training"], let stepText = header.metadata["step"],
            let step = Int(stepText), let stateName = header.metadata["optimizer_state"]
        else {
            throw .badState(file: modelURL.path, reason: "no training metadata (step, training, optimizer_state): not written by `interference train`")
        }
        if let recorded = header.metadata["data_sha256"], let current = fingerprint(of: dataset), recorded != current {
            throw .incompatible(
                file: dataset.file,
                reason: "is not the dataset \(modelURL.path) was trained on (SHA-256 \(current.prefix(12))…, the run recorded \(recorded.prefix(12))…)")
        }
        var options = try TrainingOptions.fromJSON(optionsJSON, file: modelURL.path)
        if let steps {
            guard steps >= step else {
                throw .badOption(name: "--steps", reason: "\(steps) is fewer than the \(step) steps \(modelURL.path) has already trained")
            }
            options.steps = steps
        }
        let stateURL = directory.appendingPathComponent(stateName)
        let state: SafeTensorsFile
        do { state = try SafeTensors.read(stateURL) } catch { throw .storage(error) }
        guard state.metadata["format"] == stateFormat, state.metadata["step"] == stepText else {
            throw .badState(file: stateURL.path, reason: "not the optimizer state of step \(step) (format \(state.metadata["format"] ?? "missing"), step \(state.metadata["step"] ?? "missing"))")
        }
        let saved: SavedState
        do { saved = try SavedState.read(state, parameters: model.parameters.count) } catch { throw .storage(error) }
        let optimizer = AdamW(
            table: model.table, settings: options.adam, firstMoment: saved.firstMoment,
            secondMoment: saved.secondMoment, step: saved.adamStep)
        let rngState = saved.taskRNGState
        let drawn = saved.batchesDrawn
        let trainer = try Trainer(
            model: model, dataset: dataset, options: options, optimizer: optimizer, step: step,
            taskRNG: SeededRNG(seed: rngState), batchesDrawn: drawn)
        let session = TrainingSession(
            directory: directory, trainer: trainer, secondsBefore: Self.loggedSeconds(directory: directory, through: step))
        try session.rewriteLog(keepingThrough: step)
        return session
    }

    /// The `seconds` of the log's record of `step` (0 when absent).
    static func loggedSeconds(directory: URL, through step: Int) -> Double {
        let url = directory.appendingPathComponent(logFileName)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return 0 }
        var seconds = 0.0
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let s = object["step"] as? Int, s <= step
            else { continue }
            seconds = (object["seconds"] as? Double) ?? seconds
        }
        return seconds
    }

    /// Keeps the log's records of steps ≤ `step` (the ones the checkpoint contains), atomically,
    /// and opens it for appending.
    private func rewriteLog(keepingThrough step: Int) throws(TrainingError) {
        var kept = ""
        if step > 0, let text = try? String(contentsOf: logURL, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let s = object["step"] as? Int, s <= step
                {
                    kept += line + "\n"
                }
            }
        }
        do { try AtomicFile.write(data: Data(kept.utf8), to: logURL) } catch { throw .storage(error) }
        do {
            let handle = try FileHandle(forWritingTo: logURL)
            try handle.seekToEnd()
            log = handle
        } catch {
            throw .io(file: logURL.path, reason: "cannot open the log for appending (\(error.localizedDescription))")
        }
    }

    /// Writes the model and optimizer state of the current step (see the type's documentation).
    public func saveCheckpoint() throws(TrainingError) {
        let step = trainer.step
        let stateName = Self.stateFileName(step: step)
        let optimizer = trainer.optimizer
        let P = optimizer.firstMoment.count
        let entries = [
            SafeTensorsEntry(name: "exp_avg", shape: [P], floats: optimizer.firstMoment),
            SafeTensorsEntry(name: "exp_avg_sq", shape: [P], floats: optimizer.secondMoment),
            SafeTensorsEntry(name: "adam_step", shape: [1], ints: [optimizer.step]),
            SafeTensorsEntry(name: "task_rng_state", shape: [1], ints: [Int(Int64(bitPattern: trainer.taskRNG.state))]),
            SafeTensorsEntry(name: "batches_drawn", shape: [TaskKind.allCases.count], ints: trainer.batchesDrawn),
        ]
        let training = trainer.options.jsonString()
        let stateMetadata = ["format": Self.stateFormat, "version": "1", "step": "\(step)", "training": training]
        do {
            try SafeTensors.write(entries, metadata: stateMetadata, checksum: true, to: directory.appendingPathComponent(stateName))
        } catch { throw .storage(error) }
        do {
            try Checkpoint.save(
                trainer.model, to: modelURL,
                metadata: [
                    "step": "\(step)", "training": training, "optimizer_state": stateName,
                ].merging(dataFingerprint.map { ["data_sha256": $0] } ?? [:]) { $1 })
        } catch { throw .checkpoint(error) }
        // Older state files are no longer named by the model file.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where Self.isOptimizerStateName(name) && name != stateName {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// Trains until `options.steps` or until `shouldStop()` answers true between two steps; writes
    /// a checkpoint every `checkpointEvery` steps, after the last step and when stopped.
    /// `onStep` sees every record (progress display). On a thrown error nothing is written: the last
    /// checkpoint stays as it was, and a new run without one leaves no files.
    public func run(
        shouldStop: () -> Bool = { false }, onStep: (StepRecord) -> Void = { _ in }
    ) throws(TrainingError) -> TrainingSummary {
        do { return try runSteps(shouldStop: shouldStop, onStep: onStep) } catch {
            removeUnfinishedRun()
            throw error
        }
    }

    private func runSteps(
        shouldStop: () -> Bool, onStep: (StepRecord) -> Void
    ) throws(TrainingError) -> TrainingSummary {
        let start = DispatchTime.now().uptimeNanoseconds
        let before = secondsBefore
        func elapsed() -> Double { before + Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let first = trainer.step
        var stopped = false
        var dirty = false
        while trainer.step < trainer.options.steps {
            if shouldStop() {
                stopped = true
                break
            }
            let record = try trainer.trainStep(seconds: elapsed)
            dirty = true
            // `write(contentsOf:)` throws where the older `write(_:)` traps (a full disk, a quota).
            do { try log?.write(contentsOf: Data((record.jsonLine + "\n").utf8)) } catch {
                // Foundation's own text is "The operation could not be completed"; the POSIX one says why.
                let ns = error as NSError
                let why = (ns.userInfo[NSUnderlyingErrorKey] as? NSError)?.localizedDescription ?? ns.localizedDescription
                throw .io(file: logURL.path, reason: "cannot append to the training log (\(why))")
            }
            onStep(record)
            if record.step % trainer.options.checkpointEvery == 0 {
                try saveCheckpoint()
                dirty = false
            }
        }
        if dirty || !FileManager.default.fileExists(atPath: modelURL.path) { try saveCheckpoint() }
        try? log?.synchronize()
        return TrainingSummary(
            step: trainer.step, stepsThisSession: trainer.step - first, stopped: stopped, seconds: elapsed(),
            checkpoint: modelURL)
    }

    deinit { try? log?.close() }
}

/// The tensors of an optimizer-state file.
struct SavedState {
    var firstMoment: [Float]
    var secondMoment: [Float]
    var adamStep: Int
    var taskRNGState: UInt64
    var batchesDrawn: [Int]

    static func read(_ file: SafeTensorsFile, parameters P: Int) throws(StorageError) -> SavedState {
        let m = try file.tensor("exp_avg")
        let v = try file.tensor("exp_avg_sq")
        for (name, tensor) in [("exp_avg", m), ("exp_avg_sq", v)] {
            guard tensor.shape == [P] else {
                throw .shapeMismatch(file: file.file, name: name, expected: [P], found: tensor.shape)
            }
            // Adam's moments are finite, and the second one a mean of squares: anything else would
            // step the weights to NaN on the first update after resuming.
            if let index = tensor.data.firstIndex(where: { !$0.isFinite || (name == "exp_avg_sq" && $0 < 0) }) {
                throw .outOfRange(
                    file: file.file, path: name,
                    reason: "value \(tensor.data[index]) at index \(index) is not a valid Adam moment")
            }
        }
        let adamStep = try file.ints("adam_step")
        let rng = try file.ints("task_rng_state")
        let drawn = try file.ints("batches_drawn")
        for (name, shape, expected) in [
            ("adam_step", adamStep.shape, [1]), ("task_rng_state", rng.shape, [1]),
            ("batches_drawn", drawn.shape, [TaskKind.allCases.count]),
        ] where shape != expected {
            throw .shapeMismatch(file: file.file, name: name, expected: expected, found: shape)
        }
        return SavedState(
            firstMoment: m.data, secondMoment: v.data, adamStep: adamStep.values[0],
            taskRNGState: UInt64(bitPattern: Int64(rng.values[0])), batchesDrawn: drawn.values)
    }
}

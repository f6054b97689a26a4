import ArgumentParser
import Datasets
import Foundation
import Storage
import Training
import UniPerceiver

/// The models `--model` names: the dense model and the Conditional MoE with one of five routings.
enum ModelKind: String, CaseIterable, ExpressibleByArgument {
    case dense
    case moeAttribute = "moe-attribute"
    case moeToken = "moe-token"
    case moeContext = "moe-context"
    case moeModality = "moe-modality"
    case moeTask = "moe-task"

    /// The gate's routing (`.none` for the dense model).
    var routing: Routing {
        switch self {
        case .dense: .none
        case .moeAttribute: .attribute
        case .moeToken: .token
        case .moeContext: .context
        case .moeModality: .modality
        case .moeTask: .task
        }
    }
}

extension ModelPreset: ExpressibleByArgument {}

extension MoELayers: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on the four tasks of a dataset file.",
        discussion: """
            Writes OUT/model.safetensors (the model), OUT/optimizer-<step>.safetensors (AdamW \
            state for --resume) and OUT/log.jsonl (one line per step: step, task, loss, lr, \
            grad_norm, seconds). A checkpoint is written every --checkpoint-every steps, at the \
            end and on SIGINT, SIGTERM or SIGHUP (then the exit status is 128 + the signal). \
            With --resume the model and training options come from the checkpoint; options given \
            again must agree with it, except --steps, which may extend the run. The same seed on \
            the same machine gives the same checkpoint bytes.

            Demo: interference train --model dense --data notebooks-data/digits.h5 --steps 2000 --out runs/dense
            """)

    @Option(help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (with --resume: the checkpoint's).")
    var model: ModelKind?

    @Option(help: "Dataset file (HDF5, notebooks-data/README.md).")
    var data: String

    @Option(parsing: .unconditional, help: "Total optimizer steps of the run.")
    var steps: Int

    @Option(help: "Output directory.")
    var out: String

    @Option(parsing: .unconditional, help: "Seed of the initial weights, task draws, batches and masking (default 0).", transform: OptionValues.seed)
    var seed: UInt64?

    @Flag(help: "Continue the run in --out from its last checkpoint.")
    var resume = false

    @Option(parsing: .unconditional, help: "Examples per mini-batch (default 32).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Peak learning rate (default 2e-3).")
    var lr: Double?

    @Option(parsing: .unconditional, help: "Learning rate at the last step (default 1e-5).")
    var minLr: Double?

    @Option(parsing: .unconditional, help: "Linear warm-up steps (default 100).")
    var warmup: Int?

    @Option(parsing: .unconditional, help: "Global gradient-norm clip (default 1).")
    var clip: Double?

    @Option(parsing: .unconditional, help: "AdamW weight decay (default 0.05).")
    var weightDecay: Double?

    @Option(help: "Sampling weights, e.g. image-classification=1,mlm=1,captioning=1,retrieval=1 (default all 1).")
    var samplingWeights: String?

    @Option(help: "Per-task loss weights, e.g. mlm=0.5 (absent tasks: 1).")
    var lossWeights: String?

    @Option(parsing: .unconditional, help: "Write a checkpoint every this many steps (default 250).")
    var checkpointEvery: Int?

    @Option(help: "Model preset: small (the demo) or tiny (smoke tests); --width etc. override it.")
    var config: ModelPreset?

    @Option(parsing: .unconditional, help: "Hidden width D (overrides the preset).")
    var width: Int?

    @Option(parsing: .unconditional, help: "Encoder layers (overrides the preset).")
    var layers: Int?

    @Option(parsing: .unconditional, help: "Attention heads (overrides the preset).")
    var heads: Int?

    @Option(parsing: .unconditional, help: "FFN inner width (overrides the preset; default 4·width when --width is given).")
    var ffn: Int?

    @Option(parsing: .unconditional, help: "MoE: experts per MoE-ised linear (E; default 8).")
    var experts: Int?

    @Option(parsing: .unconditional, help: "MoE: experts chosen per routing decision (1 or 2; default 2).")
    var topK: Int?

    @Option(help: "MoE: which encoder layers get experts: all (default), odd (the 0-based even layers 0, 2, 4, …, as the released base and large configurations) or every-K (layers 0, K, 2K, …).")
    var moeLayers: MoELayers?

    @Option(parsing: .unconditional, help: "Image patch side (overrides the preset).")
    var patchSize: Int?

    @Option(help: "Also write the loss curves of the whole log as an SVG to this file.")
    var curves: String?

    @Flag(help: "No progress line (it is drawn only when stderr is a terminal).")
    var quiet = false

    /// The shape overrides, named here: the model config would call them hidden_size and so on.
    func validate() throws {
        for (value, option) in [(width, "--width"), (layers, "--layers"), (heads, "--heads"), (ffn, "--ffn"), (patchSize, "--patch-size")] {
            if let value { try OptionValues.require(value, atLeast: 1, option) }
        }
        guard model != nil || resume else {
            throw ValidationError(
                "--model is required (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))) unless --resume takes it from the checkpoint")
        }
        if let experts { try OptionValues.require(experts, atLeast: 1, "--experts") }
        if let topK, !(1...2).contains(topK) { throw ValidationError("--top-k must be 1 or 2, got \(topK)") }
        if model == .dense {
            // Ignoring them would train a dense model the user believes is an MoE.
            if experts != nil { throw ValidationError("--experts applies to the MoE models only, not --model dense") }
            if topK != nil { throw ValidationError("--top-k applies to the MoE models only, not --model dense") }
            if moeLayers != nil { throw ValidationError("--moe-layers applies to the MoE models only, not --model dense") }
        } else if !resume || (experts != nil && topK != nil), moeTopK > moeExperts {
            // With --resume an option not given comes from the checkpoint, not from the default.
            throw ValidationError("--top-k \(moeTopK) must be at most --experts \(moeExperts)")
        }
    }

    /// The MoE's expert count and top-k, the defaults where not given.
    var moeExperts: Int { experts ?? 8 }
    var moeTopK: Int { topK ?? 2 }

    func run() throws {
        let input = try FileChecks.input(data, option: "--data")
        let directory = try FileChecks.folder(out)
        try FileChecks.refuseInputs([input], in: directory, option: "--out", isOutput: Self.writes)
        try FileChecks.refuseNonRegularOutputs(in: directory, option: "--out", isOutput: Self.writes)
        let curvesURL = try curvesDestination(protecting: input, directory: directory)
        FileChecks.warnAbandoned(inFolder: directory)
        let dataset = try DigitsDataset.load(input.url)
        let session: TrainingSession
        if resume {
            session = try TrainingSession.resume(directory: directory, dataset: dataset, steps: steps)
            try checkAgreement(session)
        } else {
            guard let model else { preconditionFailure("validate() requires --model without --resume") }
            var config = try ModelPresets.config(shape, for: dataset)
            config.routing = model.routing
            if model != .dense {
                config.numExperts = moeExperts
                config.topK = moeTopK
                if let moeLayers { config.moeLayers = moeLayers }
            }
            let initial = try Model(config: config, seed: seed ?? 0)
            session = try TrainingSession.start(
                directory: directory, model: initial, dataset: dataset, options: try options(base: nil))
        }
        let total = session.trainer.options.steps
        let first = session.trainer.step
        let progress = ProgressLine(enabled: !quiet)
        let watcher = InterruptWatcher()
        defer { watcher.cancel() }
        let startSeconds = DispatchTime.now().uptimeNanoseconds
        let summary: TrainingSummary
        do {
            summary = try session.run(shouldStop: { watcher.flag.isRaised }) { record in
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startSeconds) / 1e9
                let done = record.step - first
                let eta = done > 0 ? elapsed / Double(done) * Double(total - record.step) : .nan
                progress.update(
                    "step \(record.step)/\(total)  \(record.task.rawValue)  loss \(String(format: "%.4f", record.loss))"
                        + "  lr \(String(format: "%.2e", record.learningRate))  ETA \(ProgressLine.duration(eta))",
                    seconds: elapsed, force: record.step == total)
            }
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        if let curvesURL {
            let log = (try? String(contentsOf: session.logURL, encoding: .utf8)) ?? ""
            let svg = TrainingCurves.svg(
                TrainingCurves.records(fromLog: log), title: "Training loss per task — \(directory.lastPathComponent)")
            try AtomicFile.write(data: Data(svg.utf8), to: curvesURL)
        }
        if summary.stopped {
            let number = watcher.signal ?? SIGINT
            throw Interrupted(
                message: "\(TerminationCleanup.name(number)): stopped at step \(summary.step)/\(total); checkpoint \(summary.checkpoint.path) written, continue with --resume",
                status: 128 + number)
        }
        print(
            "trained \(summary.stepsThisSession) steps (\(summary.step)/\(total)) in "
                + "\(String(format: "%.1f", summary.seconds)) s → \(summary.checkpoint.path)")
    }

    /// Whether training writes a file of this name into its folder.
    static func writes(_ name: String) -> Bool {
        name == TrainingSession.modelFileName || name == TrainingSession.logFileName
            || (name.hasPrefix("optimizer-") && name.hasSuffix(".safetensors"))
    }

    /// Where `--curves` goes, checked before training rather than after it: not empty, not a
    /// folder, in a folder that exists (or is the run folder, which training makes), and neither the
    /// data nor one of the run's own files.
    func curvesDestination(protecting input: InputFile, directory: URL) throws(InputError) -> URL? {
        guard let curves else { return nil }
        let url = URL(fileURLWithPath: curves)
        let inRunFolder =
            !curves.isEmpty && url.deletingLastPathComponent().standardizedFileURL.path == directory.standardizedFileURL.path
        if inRunFolder, Self.writes(url.lastPathComponent) {
            throw InputError("\(curves): --curves would overwrite the run's own \(url.lastPathComponent)")
        }
        if inRunFolder, !FileChecks.isDirectory(directory.path) { return url }
        let runFiles = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter(Self.writes).map { InputFile(option: "--out", url: directory.appendingPathComponent($0)) }
        return try FileChecks.output(curves, option: "--curves", inputs: [input] + runFiles)
    }

    /// The model shape: the preset (default small), then the explicit overrides.
    var shape: ModelShape {
        var shape = (config ?? .small).shape
        if let width {
            shape.hiddenSize = width
            // Saturating: an absurd width must reach the configuration's bounds check, not trap here.
            if ffn == nil { shape.ffnSize = width.multipliedReportingOverflow(by: 4).overflow ? Int.max : 4 * width }
        }
        if let layers { shape.numLayers = layers }
        if let heads { shape.numHeads = heads }
        if let ffn { shape.ffnSize = ffn }
        if let patchSize { shape.patchSize = patchSize }
        return shape
    }

    /// The training options: `base` (a resumed run's) or the defaults, with the given flags on top.
    func options(base: TrainingOptions?) throws -> TrainingOptions {
        var o = base ?? TrainingOptions(steps: steps)
        o.steps = steps
        if let seed { o.seed = seed }
        if let batchSize { o.batchSize = batchSize }
        if let lr { o.peakLearningRate = lr }
        if let minLr { o.minLearningRate = minLr }
        if let warmup { o.warmupSteps = warmup }
        if let clip { o.gradientClip = clip }
        if let weightDecay { o.adam.weightDecay = weightDecay }
        if let checkpointEvery { o.checkpointEvery = checkpointEvery }
        if let samplingWeights { o.samplingWeights = try Self.parseWeights(samplingWeights, option: "--sampling-weights") }
        if let lossWeights { o.lossWeights = try Self.parseWeights(lossWeights, option: "--loss-weights") }
        if base == nil && minLr == nil { o.minLearningRate = min(o.minLearningRate, o.peakLearningRate) }
        return o
    }

    /// Options given with --resume must agree with the checkpoint (only --steps may change).
    func checkAgreement(_ session: TrainingSession) throws {
        let saved = session.trainer.options
        let wanted = try options(base: saved)
        if wanted != saved {
            let differing = Self.differences(saved, wanted)
                .map { "\($0.option) \($0.given) given, the checkpoint has \($0.saved)" }
            throw InputError(
                "\(session.modelURL.path): with --resume give only --steps (or the checkpoint's values): "
                    + (differing.isEmpty ? "training options \(saved.jsonString())" : differing.joined(separator: "; ")))
        }
        let config = session.trainer.model.config
        if let model, config.routing != model.routing {
            throw InputError(
                "\(session.modelURL.path): the checkpoint's routing is '\(config.routing.rawValue)', not that of --model \(model.rawValue)")
        }
        for (given, saved, option) in [(experts, config.numExperts, "--experts"), (topK, config.topK, "--top-k")] {
            if let given, config.routing == .none || given != saved {
                let has = config.routing == .none ? "is dense" : "has \(option) \(saved)"
                throw InputError("\(session.modelURL.path): \(option) \(given) given, but the checkpoint \(has)")
            }
        }
        if let moeLayers, config.routing == .none || moeLayers != config.moeLayers {
            let has = config.routing == .none ? "is dense" : "has --moe-layers \(config.moeLayers.name)"
            throw InputError("\(session.modelURL.path): --moe-layers \(moeLayers.name) given, but the checkpoint \(has)")
        }
        if self.config != nil || width != nil || layers != nil || heads != nil || ffn != nil || patchSize != nil {
            let wantedShape = shape
            let savedShape = ModelShape(
                hiddenSize: config.hiddenSize, numLayers: config.numLayers, numHeads: config.numHeads,
                ffnSize: config.ffnSize, patchSize: config.patchSize)
            if wantedShape != savedShape {
                throw InputError("\(session.modelURL.path): the model shape given differs from the checkpoint's \(config.jsonString())")
            }
        }
    }

    /// The options `wanted` sets differently from the checkpoint's `saved`, by command-line name.
    static func differences(_ saved: TrainingOptions, _ wanted: TrainingOptions) -> [(option: String, given: String, saved: String)] {
        func weights(_ table: [String: Double]) -> String {
            table.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        let pairs: [(String, String, String)] = [
            ("--seed", "\(wanted.seed)", "\(saved.seed)"),
            ("--batch-size", "\(wanted.batchSize)", "\(saved.batchSize)"),
            ("--lr", "\(wanted.peakLearningRate)", "\(saved.peakLearningRate)"),
            ("--min-lr", "\(wanted.minLearningRate)", "\(saved.minLearningRate)"),
            ("--warmup", "\(wanted.warmupSteps)", "\(saved.warmupSteps)"),
            ("--clip", "\(wanted.gradientClip)", "\(saved.gradientClip)"),
            ("--weight-decay", "\(wanted.adam.weightDecay)", "\(saved.adam.weightDecay)"),
            ("--checkpoint-every", "\(wanted.checkpointEvery)", "\(saved.checkpointEvery)"),
            ("--sampling-weights", weights(wanted.samplingWeights), weights(saved.samplingWeights)),
            ("--loss-weights", weights(wanted.lossWeights), weights(saved.lossWeights)),
        ]
        // What the command line can set (--steps is the resumed session's already); Adam's betas and
        // epsilon always come from the checkpoint.
        return pairs.filter { $0.1 != $0.2 }.map { (option: $0.0, given: $0.1, saved: $0.2) }
    }

    /// `task=weight,task=weight` → dictionary; a task name that does not exist, an empty item or a
    /// task given twice is refused naming the option (the values are checked by
    /// `TrainingOptions.validate`).
    static func parseWeights(_ text: String, option: String) throws -> [String: Double] {
        var weights: [String: Double] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let value = Double(parts[1]) else {
                throw InputError("\(option): '\(item)' is not task=weight")
            }
            guard TaskKind(rawValue: parts[0]) != nil else {
                throw InputError(
                    "\(option): unknown task '\(parts[0])' (tasks: \(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard weights.updateValue(value, forKey: parts[0]) == nil else {
                throw InputError("\(option): task '\(parts[0])' is given twice")
            }
        }
        return weights
    }
}

import ArgumentParser
import Datasets
import Foundation
import Interference
import Storage
import Training
import UniPerceiver

/// The README's main command (issue 5 item 7): train (or reuse) the dense `small` model and its
/// attribute-routed MoE sibling on the bundled data, diagnose both, and report them side by side.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train (or reuse) a dense and an attribute-routed MoE model, diagnose both and report them side by side.",
        discussion: """
            Writes OUT/report.md (dense and MoE side by side with the MoE − dense difference, the \
            evaluation numbers and timings), the heatmaps, OUT/dense.h5 and OUT/moe.h5 (interference \
            files) and OUT/evaluation-<kind>.json. Checkpoints and probe files go to OUT/.work/ \
            (kept out of version control); a checkpoint trained with the same options is reused.
            """)

    @Option(help: "Output folder.")
    var out = "reports/demo"

    @Option(help: "Dataset file (HDF5).")
    var data = "notebooks-data/digits.h5"

    @Option(help: "Training steps of each model.")
    var steps = 2000

    @Option(help: "MoE experts per MoE-ised linear (top-2 routing).")
    var experts = 8

    @Option(help: "Probe mini-batches per task (N).")
    var samples = 50

    @Option(help: "Probe examples per mini-batch (B).")
    var batchSize = 16

    @Option(help: "Tasks diagnosed, comma-separated.")
    var tasks = "image-classification,mlm,captioning"

    @Option(help: "Bootstrap replicates.")
    var bootstrap = 1000

    @Option(help: "Seed of training, probe and bootstrap.")
    var seed: UInt64 = 0

    func run() throws {
        let started = Date()
        let directory = URL(fileURLWithPath: out)
        let work = directory.appendingPathComponent(".work")
        let dataURL = URL(fileURLWithPath: data)
        let dataset = try DigitsDataset.load(dataURL)
        var analyses: [InterferenceAnalysis] = []
        var appendix = ["", "## Models and evaluation", ""]
        appendix.append(
            "Data `\(data)`; \(steps) training steps per model (preset `small`, seed \(seed)); probe: "
                + "N = \(samples) mini-batches of B = \(batchSize) per task, parameters `encoder.layers.*`, "
                + "gate noise on as in training; \(bootstrap) bootstrap replicates.")
        for (kind, name) in [(ModelKind.dense, "dense"), (.moeAttribute, "moe")] {
            let runDirectory = work.appendingPathComponent("runs/\(name)")
            let (checkpoint, trainSeconds) = try train(
                kind: kind, dataset: dataset, directory: runDirectory)
            let probeStart = Date()
            let analysis = try Diagnosis.run(
                checkpoint: checkpoint, data: dataURL, directory: work.appendingPathComponent(name),
                tasks: tasks, samples: samples, batchSize: batchSize, seed: seed, bootstrap: bootstrap,
                grouping: .layer, label: name,
                probeFile: work.appendingPathComponent("\(name)-probe.h5"), writeReport: false)
            try InterferenceFile.write(analysis, to: directory.appendingPathComponent("\(name).h5"))
            let diagnoseSeconds = Date().timeIntervalSince(probeStart)
            analyses.append(analysis)
            let model = try Checkpoint.load(checkpoint)
            let evaluation = try Evaluation.evaluate(model, on: dataset)
            try AtomicFile.write(
                data: Data(evaluation.jsonString().utf8),
                to: directory.appendingPathComponent("evaluation-\(name).json"))
            appendix.append("")
            appendix.append(
                "### \(name) (`--model \(kind.rawValue)`\(kind == .dense ? "" : ", \(experts) experts, top-2"))")
            appendix.append("")
            appendix.append(
                "Training \(trainSeconds.map { String(format: "%.0f s", $0) } ?? "reused"); "
                    + "probe + analysis \(String(format: "%.0f s", diagnoseSeconds)).")
            appendix.append("")
            appendix.append("```")
            appendix.append(evaluation.table.trimmingCharacters(in: .newlines))
            appendix.append("```")
            print("\(name): trained, diagnosed and evaluated")
        }
        appendix.append("")
        appendix.append(
            "Whole demo: \(String(format: "%.0f", Date().timeIntervalSince(started))) s wall "
                + "(`interference demo --out \(out) --steps \(steps) --samples \(samples)`).")
        try Report.write(
            runs: analyses, to: directory.appendingPathComponent("report.md"),
            title: "Task interference: dense vs attribute-routed MoE (demo)",
            appendix: appendix.joined(separator: "\n") + "\n")
        print("wrote \(directory.appendingPathComponent("report.md").path)")
    }

    /// Trains `kind` into `directory`, or reuses the checkpoint there when it was trained with the
    /// same options (recorded in `demo-options.json`). Returns the checkpoint and the training time
    /// (nil when reused).
    func train(kind: ModelKind, dataset: DigitsDataset, directory: URL) throws -> (URL, Double?) {
        let checkpoint = directory.appendingPathComponent(TrainingSession.modelFileName)
        let stamp = directory.appendingPathComponent("demo-options.json")
        let wanted =
            "{\"model\":\"\(kind.rawValue)\",\"steps\":\(steps),\"seed\":\(seed),\"experts\":\(experts),\"data\":\"\(data)\"}"
        if FileManager.default.fileExists(atPath: checkpoint.path),
            (try? String(contentsOf: stamp, encoding: .utf8)) == wanted
        {
            print("\(kind.rawValue): reusing \(checkpoint.path)")
            return (checkpoint, nil)
        }
        try? FileManager.default.removeItem(at: directory)
        var config = try ModelPresets.config(ModelPreset.small.shape, for: dataset)
        config.routing = kind.routing
        if kind != .dense {
            config.numExperts = experts
            config.topK = 2
        }
        let model = try Model(config: config, seed: seed)
        var options = TrainingOptions(steps: steps)
        options.seed = seed
        let session = try TrainingSession.start(
            directory: directory, model: model, dataset: dataset, options: options)
        let summary = try session.run()
        try AtomicFile.write(data: Data(wanted.utf8), to: stamp)
        print("\(kind.rawValue): trained \(steps) steps in \(String(format: "%.0f", summary.seconds)) s")
        return (checkpoint, summary.seconds)
    }
}

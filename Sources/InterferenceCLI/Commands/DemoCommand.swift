import ArgumentParser
import Datasets
import Foundation
import GradientProbe
import Interference
import Kernels
import Reporter
import Storage
import Training
import UniPerceiver

/// The README's main command (issue 5 item 7): train (or reuse) the dense `small` model and its
/// attribute-routed MoE sibling on the bundled data, diagnose both, and report them side by side.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train (or reuse) a dense and an attribute-routed MoE model, diagnose both and report them side by side.",
        // Argument-parser abbreviates more than 12 options to "<options>", which reads as required;
        // every option here has a default.
        usage: "interference demo [<options>]",
        discussion: """
            Writes OUT/report.md (dense and MoE side by side with the MoE − dense difference, the \
            evaluation numbers and timings), the heatmaps, OUT/dense.h5 and OUT/moe.h5 (interference \
            files) and OUT/evaluation-<kind>.json. Checkpoints and probe files go to OUT/.work/ \
            (kept out of version control); a checkpoint trained with the same options is reused. \
            The report also holds the exact look-ahead check at --lookahead λ (the probes then \
            store their rows) and the MoE run's routing statistics on the probed mini-batches.
            """)

    @Option(help: "Output folder.")
    var out = "reports/demo"

    @Option(help: "Dataset file (HDF5).")
    var data = "notebooks-data/digits.h5"

    @Option(parsing: .unconditional, help: "Training steps of each model.")
    var steps = 2000

    @Option(parsing: .unconditional, help: "MoE experts per MoE-ised linear (top-2 routing).")
    var experts = 8

    @Option(parsing: .unconditional, help: "Probe mini-batches per task (N).")
    var samples = 50

    // 64, not the probe's default 16: on the converged demo models mini-batch gradients of 16 are
    // nearly orthogonal within a task (mean cosine ≈ 0.00), so most own-task loss changes s[i,i][b]
    // sit near 0 and the metric's ratios (and the look-ahead check) are dominated by noise; at 64 the
    // within-task cosines are 0.01–0.07 and exact and first-order look-ahead agree within 10 %.
    @Option(parsing: .unconditional, help: "Probe examples per mini-batch (B).")
    var batchSize = 64

    @Option(help: "Tasks diagnosed, comma-separated.")
    var tasks = "image-classification,mlm,captioning"

    @Option(parsing: .unconditional, help: "Bootstrap replicates.")
    var bootstrap = 1000

    @Option(parsing: .unconditional, help: "Seed of training, probe and bootstrap (default 0).", transform: OptionValues.seed)
    var seed: UInt64 = 0

    @Option(name: .customLong("lookahead"), parsing: .unconditional, help: "Step size λ of the exact look-ahead check (0: skip it).")
    var lookAhead = 3e-5

    // The integral: at λ this small the two losses' difference would be mostly Float32 round-off.
    @Option(name: .customLong("lookahead-method"), help: "How the check's actual loss changes are computed (default integral).")
    var lookAheadMethod: LookAheadMethod?

    @Option(
        name: .customLong("lookahead-sweep"), parsing: .unconditional,
        help: "Further λ[:method] values, comma-separated (method difference when absent), whose look-ahead summary goes to the report's appendix.")
    var lookAheadSweep =
        "1e-2,1e-2:integral,1e-3,3e-4,3e-4:integral,1e-4,3e-5"

    @OptionGroup var lookAheadCounts: LookAheadCounts

    @Flag(help: "Record a non-finite mini-batch of either probe and exclude it from the analysis instead of stopping (the report says which).")
    var skipNonfinite = false

    /// Every option is checked here, before anything is trained: a mistake found after the dense
    /// model was trained and diagnosed would cost minutes and name no option.
    func validate() throws {
        try OptionValues.require(steps, atLeast: 1, "--steps")
        try OptionValues.require(experts, atLeast: 2, "--experts", because: "the MoE routes every token to its top 2 experts")
        try OptionValues.require(samples, atLeast: 2, "--samples", because: "leave-one-out needs two mini-batches per task")
        try OptionValues.require(batchSize, atLeast: 1, "--batch-size")
        try OptionValues.requireBootstrap(bootstrap)
        try lookAheadCounts.check(samplesPerTask: samples, source: "--samples \(samples)")
        guard lookAhead.isFinite, lookAhead >= 0 else {
            throw ValidationError("--lookahead must be a finite λ > 0 (or 0 to skip), got \(lookAhead)")
        }
        if lookAhead == 0 {
            // Without the check these would change nothing and say nothing.
            for option in lookAheadCounts.given + (lookAheadMethod != nil ? ["--lookahead-method"] : []) {
                throw ValidationError("\(option) has no effect with --lookahead 0 (the check is skipped)")
            }
        }
        _ = try sweep()
    }

    /// The `--lookahead-sweep` values (empty string: none).
    func sweep() throws -> [(stepSize: Double, method: LookAheadMethod)] {
        try lookAheadSweep.split(separator: ",").map { item in
            let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let value = Double(parts[0]), value.isFinite, value > 0 else {
                throw ValidationError("--lookahead-sweep: '\(item)' is not a finite λ > 0")
            }
            guard let method = parts.count > 1 ? LookAheadMethod(rawValue: parts[1]) : .difference else {
                throw ValidationError(
                    "--lookahead-sweep: '\(item)': method must be one of "
                        + LookAheadMethod.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return (value, method)
        }
    }

    func run() throws {
        let started = Date()
        let directory = try FileChecks.folder(out)
        let work = directory.appendingPathComponent(".work")
        let input = try FileChecks.input(data, option: "--data")
        let dataURL = input.url
        try FileChecks.refuseInputs([input], in: directory, option: "--out", isOutput: Self.writes)
        try FileChecks.refuseNonRegularOutputs(in: directory, option: "--out", isOutput: Self.writes)
        try FileChecks.refuseInputs([input], in: work, option: "--out", isOutput: nil)
        // The counts drawn, so the report states them: defaults reduced to what --samples allows.
        let (lossSamples, stepSamples) = lookAheadCounts.resolved(samplesPerTask: samples)
        let lookAheadOptions =
            lookAhead > 0
            ? LookAheadOptions(
                stepSize: lookAhead, lossSamples: lossSamples, stepSamples: stepSamples, seed: seed,
                method: lookAheadMethod ?? .integral)
            : nil
        let probeOptions = try Diagnosis.probeOptions(
            tasks: tasks, samples: samples, batchSize: batchSize, seed: seed, storeGradients: lookAheadOptions != nil,
            skipNonFinite: skipNonfinite, command: "demo")
        let dataset = try DigitsDataset.load(dataURL)
        // Training is most of the demo's time, and it is GEMMs: say so when OpenBLAS runs slow kernels.
        if let warning = Machine.blasCoreWarning { print("note: \(warning)") }
        // The final files appear together at the end; a failure removes them and every folder this
        // run made (.work/ included), never what was there before.
        try StagedOutputs.run(protecting: [input]) { outputs in
            try outputs.makeFolder(work.appendingPathComponent("runs"))
            try produce(
                dataset: dataset, dataURL: dataURL, directory: directory, probeOptions: probeOptions,
                lookAheadOptions: lookAheadOptions, started: started, outputs: outputs)
        }
        print("wrote \(directory.appendingPathComponent("report.md").path)")
    }

    /// Trains, diagnoses and evaluates both models, then stages the report (see `run`).
    func produce(
        dataset: DigitsDataset, dataURL: URL, directory: URL, probeOptions: ProbeOptions,
        lookAheadOptions: LookAheadOptions?, started: Date, outputs: StagedOutputs
    ) throws {
        let work = directory.appendingPathComponent(".work")
        var analyses: [InterferenceAnalysis] = []
        var sweepRows: [String] = []
        var appendix = ["", "## Models and evaluation", ""]
        appendix.append(
            "Data `\(data)`; \(steps) training steps per model (preset `small`, seed \(seed)); probe: "
                + "N = \(samples) mini-batches of B = \(batchSize) per task, parameters `encoder.layers.*`, "
                + "gate noise on as in training; \(bootstrap) bootstrap replicates. Groups: each whole layer "
                + "(`encoder.layers.N`), and W2 alone (`encoder.layers.N.ffn.dense2`: the `ffn.dense2` weights, "
                + "every expert's in the MoE), the tensor of the paper's Table 1."
                + (lookAheadOptions.map {
                    " Look-ahead check: λ = \(String(format: "%g", $0.stepSize)), method \($0.method.rawValue), "
                        + "\($0.lossSamples) loss mini-batches per task × \($0.stepSamples) step mini-batches per "
                        + "task, seed \(seed)."
                } ?? ""))
        for (kind, name) in [(ModelKind.dense, "dense"), (.moeAttribute, "moe")] {
            let runDirectory = work.appendingPathComponent("runs/\(name)")
            let (checkpoint, trainSeconds) = try train(
                kind: kind, dataset: dataset, directory: runDirectory)
            let probeStart = Date()
            let (analysis, probe) = try Diagnosis.run(
                command: "demo", checkpoint: checkpoint, data: dataURL, directory: work.appendingPathComponent(name),
                options: probeOptions, bootstrap: bootstrap, grouping: .layer, label: name,
                probeFile: work.appendingPathComponent("\(name)-probe.h5"), writeReport: false,
                withPaperTensor: true, lookAhead: lookAheadOptions, outputs: outputs)
            try InterferenceFile.write(analysis, to: try outputs.stage(directory.appendingPathComponent("\(name).h5")))
            let diagnoseSeconds = Date().timeIntervalSince(probeStart)
            analyses.append(analysis)
            let model = try Checkpoint.load(checkpoint)
            if let chosen = lookAheadOptions {
                var checked = [analysis]
                for (lambda, method) in try sweep() where lambda != chosen.stepSize || method != chosen.method {
                    var options = chosen
                    options.stepSize = lambda
                    options.method = method
                    do {
                        checked.append(
                            try ExactLookAhead.check(
                                analysis, probe: probe,
                                checkpoint: checkpoint, data: dataURL, options: options))
                    } catch { throw InputError(error.description(command: "demo")) }
                }
                // Per group, largest λ first, the difference before the integral.
                checked.sort { a, b in
                    let (x, y) = (a.groups.first?.lookAhead, b.groups.first?.lookAhead)
                    if x?.stepSize != y?.stepSize { return (x?.stepSize ?? 0) > (y?.stepSize ?? 0) }
                    return (x?.method.rawValue ?? "") < (y?.method.rawValue ?? "")
                }
                for group in analysis.groups {
                    for run in checked { sweepRows += LookAheadSummary.rows(run, group: group.name) }
                }
            }
            var evaluation = try Evaluation.evaluate(model, on: dataset)
            evaluation.dataset = displayPath(dataURL)
            try outputs.write(
                Data(evaluation.jsonString().utf8), to: directory.appendingPathComponent("evaluation-\(name).json"))
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
            print("\(name): \(trainSeconds == nil ? "diagnosed and evaluated (training reused)" : "trained, diagnosed and evaluated")")
        }
        if !sweepRows.isEmpty {
            appendix += [
                "", "## Look-ahead check: sensitivity to λ", "",
                "The same pairs at other step sizes and by both methods (the report's check above uses "
                    + "λ = \(String(format: "%g", lookAhead)), \((lookAheadMethod ?? .integral).rawValue); only that check is "
                    + "stored in the interference files, these rows are printed here only). Curvature's share of the "
                    + "loss-change difference grows with λ, whatever the method. With the *difference* "
                    + "method, Float32 round-off of the two losses grows it as λ shrinks; the *integral* "
                    + "does not subtract two losses, so its difference falls with λ until it reaches the "
                    + "gradients' own round-off. Where it no longer falls between the two smallest λ, the check "
                    + "at the smallest is at that floor rather than limited by curvature. Where round-off is "
                    + "negligible for both (the largest λ) the two methods must agree on the loss changes (last "
                    + "column): that checks the quadrature. Their I can still differ there, since the I values "
                    + "divide by each mini-batch's own-task change `s[i,i][b]`, which is close to 0 for many "
                    + "mini-batches here (within-task gradient cosines ≈ 0), so a small difference in the loss "
                    + "changes can become a much larger one in I.",
                "",
                "| run | group | λ | pairs | method | off-diagonal I: exact vs first-order | loss changes: exact vs first-order |",
                "| --- | --- | ---: | ---: | --- | ---: | ---: |",
            ] + sweepRows
        }
        appendix.append("")
        appendix.append(
            "Whole demo: \(String(format: "%.0f", Date().timeIntervalSince(started))) s wall "
                + "(`interference demo --out \(out) --steps \(steps) --samples \(samples)`) on \(Machine.summary).")
        let report = try Report.make(runs: analyses, title: "Task interference: dense vs attribute-routed MoE (demo)")
        try Report.stage(
            report, appendix: appendix.joined(separator: "\n") + "\n", at: directory.appendingPathComponent("report.md"),
            in: outputs)
    }

    /// Whether the demo writes a file of this name into its folder (`.work/` is checked apart).
    static func writes(_ name: String) -> Bool {
        ["report.md", "dense.h5", "moe.h5", "evaluation-dense.json", "evaluation-moe.json"].contains(name)
            || name.hasSuffix(".svg")
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

import ArgumentParser
import Datasets
import Foundation
import GradientProbe
import Interference
import Reporter

/// probe → analyze → report into one folder (issue 5 item 7).
struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Probe a checkpoint, analyze the interference and write the report, all into one folder.",
        discussion: """
            Writes DIR/probe.h5, DIR/interference.h5, DIR/report.md and its heatmaps; the same as \
            `interference probe`, `analyze` (grouped by layer) and `report` run in a row. For an MoE \
            checkpoint the report adds its routing table: each task's share of every expert and the gate \
            entropy, per layer and segment, on the probe's own mini-batches. With \
            --lookahead λ the probe stores its gradient rows and the analysis adds the exact look-ahead \
            check, as `analyze --lookahead` does.
            """)

    @Option(help: "Model checkpoint (model.safetensors written by train).")
    var checkpoint: String

    @Option(help: "Dataset file (HDF5).")
    var data: String

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Tasks in row order, comma-separated.")
    var tasks = "image-classification,mlm,captioning"

    @Option(parsing: .unconditional, help: "Mini-batches per task (N).")
    var samples = 100

    @Option(parsing: .unconditional, help: "Examples per mini-batch (B).")
    var batchSize = 16

    @Option(parsing: .unconditional, help: "Seed of the probe's batches, masking and gate noise, of the bootstrap and of the look-ahead's pairs (default 0).", transform: OptionValues.seed)
    var seed: UInt64 = 0

    @Option(
        parsing: .upToNextOption,
        help: "Parameter globs ('*' crosses dots) to probe, default 'encoder.layers.*'; '\(Diagnosis.paperTensor)' is the paper's Table 1 tensor (W2, experts included), one group per layer.")
    var parameters: [String] = []

    @Option(parsing: .unconditional, help: "Bootstrap replicates (0: no intervals).")
    var bootstrap = BootstrapInterval.defaultReplicates

    @Option(help: "How parameters are pooled: layer, parameter, role, layer-role or model.")
    var groupBy: Grouping = .layer

    @Option(help: "A label naming this run in the report (default: the checkpoint's kind).")
    var label = ""

    @Option(help: "How a report cell shows its bootstrap interval: plus-minus (value ± half-width) or bracket (value [low, high]).")
    var intervals: IntervalOption = .plusMinus

    @OptionGroup var lookAhead: LookAheadArguments

    @Flag(help: "Record a non-finite mini-batch and exclude it from the analysis instead of stopping (the report says which).")
    var skipNonfinite = false

    func validate() throws {
        try OptionValues.require(samples, atLeast: 2, "--samples", because: "leave-one-out needs two mini-batches per task")
        try OptionValues.require(batchSize, atLeast: 1, "--batch-size")
        try OptionValues.requireBootstrap(bootstrap)
    }

    func run() throws {
        // Everything is checked before the folder is made: a bad request costs nothing and writes
        // nothing, and a later failure removes what this run made (StagedOutputs).
        let directory = try FileChecks.folder(out)
        let inputs = try FileChecks.inputs([("--checkpoint", checkpoint), ("--data", data)])
        try FileChecks.refuseInputs(inputs, in: directory, option: "--out", isOutput: Diagnosis.writes)
        try FileChecks.refuseNonRegularOutputs(in: directory, option: "--out", isOutput: Diagnosis.writes)
        let lookAheadOptions = lookAhead.options(seed: seed)
        if lookAheadOptions != nil { try lookAhead.check(samplesPerTask: samples, source: "--samples \(samples)") }
        let options = try Diagnosis.probeOptions(
            tasks: tasks, samples: samples, batchSize: batchSize, seed: seed, storeGradients: lookAheadOptions != nil,
            skipNonFinite: skipNonfinite, parameters: parameters, command: "diagnose")
        try StagedOutputs.run(protecting: inputs) { outputs in
            try Diagnosis.run(
                command: "diagnose", checkpoint: inputs[0].url, data: inputs[1].url, directory: directory, options: options,
                bootstrap: bootstrap, grouping: groupBy, label: label, probeFile: nil, lookAhead: lookAheadOptions,
                intervals: intervals.style, outputs: outputs)
        }
        print("wrote \(directory.appendingPathComponent("report.md").path)")
    }
}

/// The steps `diagnose` and `demo` share.
enum Diagnosis {
    /// The paper's Table 1 tensor, W2 of every layer, as a glob over parameter names: the dense
    /// `ffn.dense2.weight` and the MoE's `ffn.dense2.experts.K.weight` alike.
    static let paperTensor = "encoder.layers.*.ffn.dense2.*weight"

    /// Whether `diagnose` writes a file of this name into its folder (heatmaps: any `.svg`).
    static func writes(_ name: String) -> Bool {
        ["probe.h5", "interference.h5", "report.md"].contains(name) || name.hasSuffix(".svg")
    }

    /// The probe's request, checked (tasks known and distinct, sizes positive) before any work;
    /// a refusal starts with `command` (`diagnose` or `demo`).
    static func probeOptions(
        tasks: String, samples: Int, batchSize: Int, seed: UInt64, storeGradients: Bool, skipNonFinite: Bool,
        parameters: [String] = [], command: String
    ) throws(InputError) -> ProbeOptions {
        let options = ProbeOptions(
            tasks: try OptionValues.tasks(tasks), samplesPerTask: samples, batchSize: batchSize, seed: seed,
            parameters: ParameterSelection(patterns: parameters), storeGradients: storeGradients,
            skipNonFinite: skipNonFinite)
        do { try options.validate() } catch { throw InputError(error.description(command: command)) }
        return options
    }

    /// Probes, analyses and reports into `directory` (made when missing), every file staged in
    /// `outputs`; returns the analysis (an MoE model's with its routing table) and where the probe
    /// file can be read until `outputs` is committed. `probeFile` (default DIR/probe.h5) is where the probe file goes. With `lookAhead`,
    /// every group gets the exact look-ahead check (`options` must store the rows). A probe error
    /// naming no file starts with `command` (`diagnose` or `demo`).
    @discardableResult
    static func run(
        command: String,
        checkpoint: URL, data: URL, directory: URL, options: ProbeOptions, bootstrap: Int, grouping: Grouping,
        label: String, probeFile: URL?, writeReport: Bool = true, withPaperTensor: Bool = false,
        lookAhead: LookAheadOptions? = nil,
        intervals: MarkdownReport.IntervalStyle = .plusMinus, outputs: StagedOutputs
    ) throws -> (analysis: InterferenceAnalysis, probe: URL) {
        try outputs.makeFolder(directory)
        let probeURL = probeFile ?? directory.appendingPathComponent("probe.h5")
        let probe = try outputs.stage(probeURL)
        do {
            try Probe.run(checkpoint: checkpoint, data: data, options: options, out: probe)
            let digest = try FileFingerprint.sha256(ofFile: probe)
            let grams = try ProbeGrams(url: probe)
            var analysis = try grams.analyze(
                grouping: grouping, bootstrapReplicates: bootstrap, seed: options.seed, probeSHA256: digest,
                label: label)
            if withPaperTensor {
                // W2 of each layer beside the whole layers, from the same probe: its weights only (the
                // experts' in an MoE layer), grouped per layer as `encoder.layers.N.ffn.dense2`.
                analysis.groups += try grams.analyze(
                    grouping: .layerRole, bootstrapReplicates: bootstrap, seed: options.seed, probeSHA256: digest,
                    label: label, including: { ParameterSelection.matches(Diagnosis.paperTensor, $0) }
                ).groups
            }
            analysis.probePath = displayPath(probeURL)
            if let lookAhead {
                analysis = try ExactLookAhead.check(
                    analysis, probe: probe, checkpoint: checkpoint, data: data, options: lookAhead)
                for line in LookAheadSummary.lines(analysis) { print(line) }
            }
            try InterferenceFile.write(
                analysis, to: try outputs.stage(directory.appendingPathComponent("interference.h5")))
            if writeReport {
                try Report.stage(
                    try Report.make(runs: [analysis], intervals: intervals), at: directory.appendingPathComponent("report.md"), in: outputs)
            }
            return (analysis, probe)
        } catch let error as ProbeError {
            throw InputError(finalName(error.description(command: command)))
        } catch let error as DatasetError {
            throw InputError(finalName(error.description))
        } catch let error as InterferenceError {
            throw InputError(finalName(error.description))
        }
        // A message names the probe file the user asked for, not the staged name that is gone by
        // the time it is read.
        func finalName(_ message: String) -> String {
            message.replacingOccurrences(of: probe.path, with: probeURL.path)
        }
    }
}

/// `url`'s path relative to the current directory when it lies below it (reports committed from the
/// repository root then name `reports/demo/.work/…`, not one machine's absolute path).
func displayPath(_ url: URL) -> String {
    let path = url.standardizedFileURL.path
    let base = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
    let prefix = base.hasSuffix("/") ? base : base + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
}

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
            `interference probe`, `analyze` (grouped by layer) and `report` run in a row. With \
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

    @Option(help: "Mini-batches per task (N).")
    var samples = 100

    @Option(help: "Examples per mini-batch (B).")
    var batchSize = 16

    @Option(help: "Seed of the probe's batches, masking and gate noise, and of the bootstrap.")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap replicates (0: no intervals).")
    var bootstrap = BootstrapInterval.defaultReplicates

    @Option(help: "How parameters are pooled: layer, parameter, role or model.")
    var groupBy: Grouping = .layer

    @Option(help: "A label naming this run in the report (default: the checkpoint's kind).")
    var label = ""

    @OptionGroup var lookAhead: LookAheadArguments

    func run() throws {
        let directory = URL(fileURLWithPath: out)
        // Checked before the probe runs: a bad request costs nothing and writes nothing.
        let inputs = try FileChecks.inputs([("--checkpoint", checkpoint), ("--data", data)])
        try FileChecks.refuseInputs(inputs, in: directory, option: "--out", isOutput: Diagnosis.writes)
        let lookAheadOptions = try lookAhead.options(seed: seed, naming: checkpoint)
        _ = try Diagnosis.run(
            checkpoint: inputs[0].url, data: inputs[1].url,
            directory: directory, tasks: tasks, samples: samples, batchSize: batchSize, seed: seed,
            bootstrap: bootstrap, grouping: groupBy, label: label, probeFile: nil, lookAhead: lookAheadOptions)
        print("wrote \(directory.appendingPathComponent("report.md").path)")
    }
}

/// The steps `diagnose` and `demo` share.
enum Diagnosis {
    /// Whether `diagnose` writes a file of this name into its folder (heatmaps: any `.svg`).
    static func writes(_ name: String) -> Bool {
        ["probe.h5", "interference.h5", "report.md"].contains(name) || name.hasSuffix(".svg")
    }

    /// Probes, analyses and reports; returns the analysis and the probe's options. `probeFile`
    /// (default DIR/probe.h5) is where the probe file goes. With `lookAhead`, the probe stores its
    /// rows and every group gets the exact look-ahead check.
    static func run(
        checkpoint: URL, data: URL, directory: URL, tasks: String, samples: Int, batchSize: Int,
        seed: UInt64, bootstrap: Int, grouping: Grouping, label: String, probeFile: URL?,
        writeReport: Bool = true, lookAhead: LookAheadOptions? = nil
    ) throws -> (analysis: InterferenceAnalysis, options: ProbeOptions) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw InputError("\(directory.path): cannot create the folder: \(error.localizedDescription)")
        }
        let probe = probeFile ?? directory.appendingPathComponent("probe.h5")
        do {
            let kinds = try tasks.split(separator: ",").map { name throws(DatasetError) in
                try TaskDefinition.named(String(name).trimmingCharacters(in: .whitespaces)).kind
            }
            let options = ProbeOptions(
                tasks: kinds, samplesPerTask: samples, batchSize: batchSize, seed: seed,
                storeGradients: lookAhead != nil)
            try Probe.run(checkpoint: checkpoint, data: data, options: options, out: probe)
            let digest = try FileFingerprint.sha256(ofFile: probe)
            var analysis = try ProbeGrams(url: probe).analyze(
                grouping: grouping, bootstrapReplicates: bootstrap, seed: seed, probeSHA256: digest,
                label: label)
            analysis.probePath = displayPath(probe)
            if let lookAhead {
                analysis = try ExactLookAhead.check(
                    analysis, probe: probe, checkpoint: checkpoint, data: data, options: lookAhead)
                for line in LookAheadSummary.lines(analysis) { print(line) }
            }
            try InterferenceFile.write(analysis, to: directory.appendingPathComponent("interference.h5"))
            if writeReport {
                let report = try Report.make(runs: [analysis])
                try StagedOutputs.run(protecting: []) { outputs in
                    try Report.stage(report, at: directory.appendingPathComponent("report.md"), in: outputs)
                }
            }
            return (analysis, options)
        } catch let error as ProbeError {
            throw InputError(error.description)
        } catch let error as DatasetError {
            throw InputError(error.description)
        } catch let error as InterferenceError {
            throw InputError(error.description)
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

import ArgumentParser
import Datasets
import Foundation
import GradientProbe
import UniPerceiver

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Record per-task mini-batch gradients at fixed weights and write their Gram matrices (probe.h5).",
        discussion: """
            For each task, draws --samples mini-batches of --batch-size from the split with a \
            generator seeded --seed, takes each mini-batch's full loss gradient, and writes for every \
            selected parameter the Gram matrix of the T·N rows (task-major); for an MoE model, also \
            how it routed those mini-batches (/routing: each expert's share and the gate entropy per \
            layer, task and segment), which analyze carries and report prints. Rows beyond \
            --memory-budget are spilled to the file. --shard K/N probes a deterministic slice and \
            stores its rows; join the shards with `interference merge`. Slurm: \
            `sbatch --array=1-N` with `--shard $SLURM_ARRAY_TASK_ID/N --out shard-$SLURM_ARRAY_TASK_ID.h5`.
            """)

    @Option(help: "Model checkpoint (model.safetensors written by train).")
    var checkpoint: String

    @Option(help: "Dataset file (HDF5).")
    var data: String

    @Option(help: "Tasks in row order, comma-separated (image-classification, mlm, captioning, retrieval).")
    var tasks: String

    @Option(parsing: .unconditional, help: "Mini-batches per task (N).")
    var samples = 100

    @Option(parsing: .unconditional, help: "Examples per mini-batch (B).")
    var batchSize = 16

    @Option(
        parsing: .upToNextOption,
        help: "Parameter globs ('*' crosses dots), e.g. 'encoder.layers.*' (default) or 'encoder.layers.*.ffn.dense2.*weight' (W2, every expert's too).")
    var parameters: [String] = []

    @Flag(help: "Also store every raw gradient row in the file.")
    var storeGradients = false

    @Option(parsing: .unconditional, help: "Probe only shard K of N (K/N, 1-based); implies --store-gradients.")
    var shard: String?

    @Option(parsing: .unconditional, help: "Bytes of gradient rows kept in memory before spilling to the file (e.g. 4GiB, 512MiB).")
    var memoryBudget = "4GiB"

    @Flag(help: "Record a non-finite mini-batch (mask /tasks/<task>/nonfinite) and exclude it instead of stopping.")
    var skipNonfinite = false

    @Option(help: "Split the mini-batches are drawn from: train or validation.")
    var split: DatasetSplit = .train

    @Option(parsing: .unconditional, help: "Seed of the batch sampler, the MLM masking and the MoE gate noise (default 0).", transform: OptionValues.seed)
    var seed: UInt64 = 0

    @Option(help: "Output probe file.")
    var out: String

    @Flag(help: "No progress line.")
    var quiet = false

    /// Checked before any file is opened (`ProbeOptions.validate` checks the same for library callers).
    func validate() throws {
        try OptionValues.require(samples, atLeast: 2, "--samples", because: "leave-one-out needs two mini-batches per task")
        try OptionValues.require(batchSize, atLeast: 1, "--batch-size")
    }

    func run() throws {
        let inputs = try FileChecks.inputs([("--checkpoint", checkpoint), ("--data", data)])
        let output = try FileChecks.output(out, inputs: inputs)
        let budget = try OptionValues.byteCount(memoryBudget, option: "--memory-budget")
        do {
            let kinds = try OptionValues.tasks(tasks)
            let options = ProbeOptions(
                tasks: kinds, samplesPerTask: samples, batchSize: batchSize, split: split, seed: seed,
                parameters: ParameterSelection(patterns: parameters), storeGradients: storeGradients,
                shard: try shard.map { spec throws(ProbeError) in try ShardSpec(parsing: spec) },
                memoryBudget: budget, skipNonFinite: skipNonfinite)
            let line = ProgressLine()
            let start = Date()
            let summary = try Probe.run(
                checkpoint: inputs[0].url, data: inputs[1].url,
                options: options, out: output
            ) { done, total in
                guard !quiet else { return }
                line.update(
                    "probe: mini-batch \(done)/\(total)", seconds: Date().timeIntervalSince(start),
                    force: done == total)
            }
            line.finish()
            var text =
                "wrote \(out): \(summary.rows) rows × \(summary.parameters) parameters "
                + "(\(summary.wallDescription): \(summary.outsideDescription); "
                + "gradients \(String(format: "%.2f", summary.gradientSeconds)) s)"
            if !summary.spilled.isEmpty { text += "; \(summary.spilled.count) parameters spilled to the file" }
            if !summary.excluded.isEmpty {
                text += "; excluded non-finite mini-batches: \(summary.excluded.joined(separator: ", "))"
            }
            print(text)
        } catch let error as ProbeError {
            throw InputError(error.description)
        } catch let error as DatasetError {
            throw InputError(error.description)
        }
    }
}

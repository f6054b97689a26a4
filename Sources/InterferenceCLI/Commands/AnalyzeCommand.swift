import ArgumentParser
import Foundation
import GradientProbe
import Interference

extension Grouping: ExpressibleByArgument {}

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Compute the interference metric I[i, j] per group from a probe file (interference.h5).",
        discussion: """
            Groups: layer (encoder.layers.N), parameter (every tensor), role (e.g. ffn.dense2 across \
            layers), layer-role (e.g. encoder.layers.3.ffn.dense2) or model (everything); --parameters \
            narrows the tensors first. Bootstrap intervals resample both tasks' samples with a \
            generator seeded --seed; --bootstrap 0 skips them. The probe file's SHA-256 is recorded, \
            and an MoE probe's routing table is carried into the output for reports.

            --lookahead λ also runs the exact look-ahead check on a seeded subsample of pairs: the \
            actual loss change of task i's mini-batch b after stepping only the group's parameters \
            by −λ·g_j(a)/‖g_j(a)‖, divided as the metric divides, beside the first-order value of the \
            same pairs. It needs a probe made with --store-gradients and the --checkpoint and --data \
            it was made from (their SHA-256 must match the probe's).
            """)

    @Argument(help: "Probe file written by `interference probe` or `interference merge`.")
    var probe: String

    @Option(help: "How parameters are pooled: layer, parameter, role, layer-role or model.")
    var groupBy: Grouping = .layer

    @Option(
        parsing: .upToNextOption,
        help: "Analyse only the probe's parameters these globs match ('*' crosses dots), e.g. '\(Diagnosis.paperTensor)' (W2, the paper's Table 1 tensor) with --group-by layer or layer-role.")
    var parameters: [String] = []

    @Option(parsing: .unconditional, help: "Bootstrap replicates for the 95 % intervals (0: none).")
    var bootstrap = BootstrapInterval.defaultReplicates

    @Option(parsing: .unconditional, help: "Seed of the bootstrap resampling and of the look-ahead's pairs (default 0).", transform: OptionValues.seed)
    var seed: UInt64 = 0

    @Option(help: "A label naming this run in reports (e.g. dense, moe).")
    var label = ""

    @Option(help: "Output interference file.")
    var out: String

    @OptionGroup var lookAhead: LookAheadArguments

    @Option(help: "Checkpoint the probe was made from (for --lookahead).")
    var checkpoint: String?

    @Option(help: "Dataset the probe was made from (for --lookahead).")
    var data: String?

    func validate() throws {
        try OptionValues.requireBootstrap(bootstrap)
        if lookAhead.stepSize == nil {
            for (given, option) in [(checkpoint != nil, "--checkpoint"), (data != nil, "--data")] where given {
                throw ValidationError("\(option) is read only by the look-ahead check: give --lookahead λ too, or leave it out")
            }
        }
    }

    /// The look-ahead request, checked before any work: exit 2 naming the probe file.
    func lookAheadRequest() throws -> (LookAheadOptions, checkpoint: URL, data: URL)? {
        guard let options = lookAhead.options(seed: seed) else { return nil }
        guard let checkpoint, let data else {
            throw InputError(
                "\(probe): --lookahead needs --checkpoint and --data (the model and data the probe was made from)")
        }
        return (options, URL(fileURLWithPath: checkpoint), URL(fileURLWithPath: data))
    }

    func run() throws {
        let inputs = try FileChecks.inputs([("PROBE", probe), ("--checkpoint", checkpoint), ("--data", data)])
        let url = inputs[0].url
        let output = try FileChecks.output(out, inputs: inputs)
        let request = try lookAheadRequest()
        do {
            let digest = try FileFingerprint.sha256(ofFile: url)
            // The probe's own header and per-task records first (tasks, split, shard): the Grams'
            // reader knows only the layout.
            let contents = try ProbeFile.read(url, grams: false)
            // Look-ahead counts against what the probe holds, before the bootstrap's work: the
            // samples the analysis keeps (mini-batches skipped as non-finite are dropped).
            if request != nil {
                try lookAhead.check(samplesPerTask: contents.samplesPerTask - contents.excludedSamples.count, source: probe)
            }
            let grams = try ProbeGrams(url: url)
            // A glob that selects none of the probe's tensors is a typo, not an empty analysis.
            for pattern in parameters where !grams.parameters.contains(where: { ParameterSelection.matches(pattern, $0) }) {
                throw InputError("\(probe): --parameters '\(pattern)' matches none of the probe's \(grams.parameters.count) parameters")
            }
            let patterns = parameters
            var analysis = try grams.analyze(
                grouping: groupBy, bootstrapReplicates: bootstrap, seed: seed, probeSHA256: digest,
                label: label,
                including: { name in patterns.isEmpty || patterns.contains { ParameterSelection.matches($0, name) } })
            if let (options, checkpoint, data) = request {
                analysis = try ExactLookAhead.check(
                    analysis, probe: url, checkpoint: checkpoint, data: data, options: options)
                for line in LookAheadSummary.lines(analysis) { print(line) }
            }
            try InterferenceFile.write(analysis, to: output)
            let groups = analysis.groups.count
            print("wrote \(out): \(groups) group\(groups == 1 ? "" : "s") × \(analysis.tasks.count) tasks")
        } catch let error as ProbeError {
            throw InputError(error.description(command: "analyze"))
        } catch let error as InterferenceError {
            throw InputError(error.description)
        }
    }
}

/// One line per group with a look-ahead check, for the terminal.
/// `--lookahead λ`, `--lookahead-samples`, `--lookahead-steps`: the exact look-ahead check's
/// request, shared by `analyze` and `diagnose`.
extension LookAheadMethod: ExpressibleByArgument {}

/// `--lookahead-samples`, `--lookahead-steps`: how many pairs the look-ahead check draws, shared
/// by `analyze`, `diagnose` and `demo`. A count given explicitly must fit the probe's N samples per
/// task; a default is reduced to what N allows.
struct LookAheadCounts: ParsableArguments {
    @Option(
        name: .customLong("lookahead-samples"), parsing: .unconditional,
        help: "Look-ahead: loss samples b drawn per task, at most N (default \(LookAheadOptions.defaultLossSamples), or N when fewer).")
    var lossSamples: Int?

    @Option(
        name: .customLong("lookahead-steps"), parsing: .unconditional,
        help: "Look-ahead: step samples a ≠ b drawn per loss sample and task, at most N − 1 (default \(LookAheadOptions.defaultStepSamples), or N − 1 when fewer).")
    var stepSamples: Int?

    /// Which of the two were given (for refusing them where no check runs).
    var given: [String] {
        [(lossSamples != nil, "--lookahead-samples"), (stepSamples != nil, "--lookahead-steps")].filter(\.0).map(\.1)
    }

    func validate() throws {
        if let lossSamples { try OptionValues.require(lossSamples, atLeast: 1, "--lookahead-samples") }
        if let stepSamples { try OptionValues.require(stepSamples, atLeast: 1, "--lookahead-steps") }
    }

    /// The counts a probe of `n` samples per task draws (`n` unknown: the defaults as they are).
    func resolved(samplesPerTask n: Int? = nil) -> (loss: Int, step: Int) {
        let loss = lossSamples ?? min(LookAheadOptions.defaultLossSamples, n ?? .max)
        let step = stepSamples ?? min(LookAheadOptions.defaultStepSamples, n.map { $0 - 1 } ?? .max)
        return (loss, step)
    }

    /// Refuses counts given explicitly that `n` samples per task cannot give; `source` names what
    /// sets N (the probe file, or `--samples K`).
    func check(samplesPerTask n: Int, source: String) throws(InputError) {
        if let lossSamples, lossSamples > n {
            throw InputError("--lookahead-samples \(lossSamples): \(source) has only \(n) samples per task")
        }
        if let stepSamples, stepSamples > n - 1 {
            throw InputError(
                "--lookahead-steps \(stepSamples): \(source) has only \(n) samples per task, so at most \(n - 1) others a ≠ b")
        }
    }
}

/// `--lookahead λ` with its counts and method: the exact look-ahead check's request, shared by
/// `analyze` and `diagnose`.
struct LookAheadArguments: ParsableArguments {
    @Option(name: .customLong("lookahead"), parsing: .unconditional, help: "Step size λ > 0 of the exact look-ahead check (off when absent).")
    var stepSize: Double?

    @OptionGroup var counts: LookAheadCounts

    @Option(
        name: .customLong("lookahead-method"),
        help: "Look-ahead: how the actual loss change is computed: difference (two forward passes; the default) or integral (the directional derivative integrated along the step; for small λ).")
    var method: LookAheadMethod?

    /// The options' own bounds, named by option; and none of them without `--lookahead`, which
    /// would otherwise run no check and say nothing.
    func validate() throws {
        guard let stepSize else {
            for option in counts.given + (method != nil ? ["--lookahead-method"] : []) {
                throw ValidationError("\(option) needs --lookahead λ (without it no look-ahead check runs)")
            }
            return
        }
        guard stepSize.isFinite, stepSize > 0 else {
            throw ValidationError("--lookahead must be a finite λ > 0, got \(stepSize)")
        }
    }

    /// The options, nil without `--lookahead` (bounds already checked by `validate`).
    func options(seed: UInt64) -> LookAheadOptions? {
        guard let stepSize else { return nil }
        let (loss, step) = counts.resolved()
        return LookAheadOptions(stepSize: stepSize, lossSamples: loss, stepSamples: step, seed: seed, method: method ?? .difference)
    }

    func check(samplesPerTask n: Int, source: String) throws(InputError) {
        try counts.check(samplesPerTask: n, source: source)
    }
}

enum LookAheadSummary {
    static func lines(_ analysis: InterferenceAnalysis) -> [String] {
        analysis.groups.compactMap { g in
            guard let c = g.lookAhead else { return nil }
            return "look-ahead \(g.name): λ = \(c.stepSize), \(c.pairCount) pairs (\(c.method.rawValue)); off-diagonal I "
                + "exact vs first-order differ by \(percent(c.offDiagonalRelativeDifference)), "
                + "loss changes by \(percent(c.lossChangeRelativeDifference))"
        }
    }

    /// Markdown table rows `| run | group | λ | pairs | method | I difference | loss-change difference |`.
    static func rows(_ analysis: InterferenceAnalysis, group: String? = nil) -> [String] {
        analysis.groups.compactMap { g in
            guard let c = g.lookAhead, group == nil || g.name == group else { return nil }
            return "| \(analysis.label) | \(g.name) | \(String(format: "%g", c.stepSize)) | \(c.pairCount) | "
                + "\(c.method.rawValue) | \(percent(c.offDiagonalRelativeDifference)) | "
                + "\(percent(c.lossChangeRelativeDifference)) |"
        }
    }

    static func percent(_ x: Double) -> String {
        x.isFinite ? String(format: "%.2f %%", x * 100) : "n/a"
    }
}

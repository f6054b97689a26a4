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
            layers) or model (everything). Bootstrap intervals resample both tasks' samples with a \
            generator seeded --seed; --bootstrap 0 skips them. The probe file's SHA-256 is recorded.
            """)

    @Argument(help: "Probe file written by `interference probe` or `interference merge`.")
    var probe: String

    @Option(help: "How parameters are pooled: layer, parameter, role or model.")
    var groupBy: Grouping = .layer

    @Option(help: "Bootstrap replicates for the 95 % intervals (0: none).")
    var bootstrap = BootstrapInterval.defaultReplicates

    @Option(help: "Seed of the bootstrap resampling.")
    var seed: UInt64 = 0

    @Option(help: "A label naming this run in reports (e.g. dense, moe).")
    var label = ""

    @Option(help: "Output interference file.")
    var out: String

    func validate() throws {
        guard bootstrap >= 0 else { throw ValidationError("--bootstrap must be ≥ 0, got \(bootstrap)") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: probe)
        do {
            let digest = try FileFingerprint.sha256(ofFile: url)
            let grams = try ProbeGrams(url: url)
            let analysis = try grams.analyze(
                grouping: groupBy, bootstrapReplicates: bootstrap, seed: seed, probeSHA256: digest,
                label: label)
            try InterferenceFile.write(analysis, to: URL(fileURLWithPath: out))
            print("wrote \(out): \(analysis.groups.count) groups × \(analysis.tasks.count) tasks")
        } catch let error as ProbeError {
            throw InputError(error.description)
        } catch let error as InterferenceError {
            throw InputError(error.description)
        }
    }
}

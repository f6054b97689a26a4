import ArgumentParser
import Foundation
import GradientProbe

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the shards of one sharded probe into the probe file an unsharded run would write.",
        discussion: """
            Shards must come from the same model, data, split, tasks, N, B, seed and parameters, and \
            be shards 1…N each once; otherwise nothing is written and the message names the two \
            files and the field they disagree on. Every Gram is recomputed from the shards' rows, \
            bit for bit as an unsharded run computes it. An MoE run's routing table (`/routing`) is \
            the shards' tables pooled by tokens; when some shards hold one and another does not \
            (written before probe files stored it), the merged file has none and a note names that shard.
            """)

    @Argument(help: "Shard files written by `interference probe --shard K/N`.")
    var shards: [String]

    @Option(help: "Output probe file.")
    var out: String

    @Flag(help: "Also copy the raw gradient rows into the merged file.")
    var storeGradients = false

    @Option(parsing: .unconditional, help: "Bytes of gradient rows held at once while computing the Grams (e.g. 4GiB).")
    var memoryBudget = "4GiB"

    func run() throws {
        let inputs = try FileChecks.inputs(shards.map { ("SHARD", $0) })
        let output = try FileChecks.output(out, inputs: inputs)
        let budget = try OptionValues.byteCount(memoryBudget, option: "--memory-budget")
        do {
            let summary = try Probe.merge(
                shards: inputs.map(\.url), out: output,
                storeGradients: storeGradients, memoryBudget: budget)
            print(
                "wrote \(out): \(shards.count) shards, \(summary.rows) rows × \(summary.parameters) parameters "
                    + "(\(summary.gramDescription))")
            for shard in summary.shardsWithoutRouting {
                print("note: \(shard) holds no routing table (written before probe files stored one), so \(out) has none")
            }
        } catch {
            throw InputError(error.description(command: "merge"))
        }
    }
}

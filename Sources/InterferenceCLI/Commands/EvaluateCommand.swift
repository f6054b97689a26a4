import ArgumentParser
import Datasets
import Foundation
import Training

extension DatasetSplit: ExpressibleByArgument {}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a checkpoint on a split: accuracy, MLM, caption tokens, retrieval recall@1, each with its chance level.",
        discussion: """
            Forward only. Retrieval ranks each image among the captions of its chunk of \
            --retrieval-chunk validation images (and each caption among the images), the split in \
            order. MLM masks the split once with a generator seeded --masking-seed.
            """)

    @Option(help: "Model checkpoint (model.safetensors written by train).")
    var checkpoint: String

    @Option(help: "Dataset file (HDF5).")
    var data: String

    @Option(help: "Split to score: train or validation.")
    var split: DatasetSplit = .validation

    @Option(parsing: .unconditional, help: "Examples per forward pass.")
    var batchSize = 64

    @Option(parsing: .unconditional, help: "Images per retrieval chunk.")
    var retrievalChunk = 64

    @Option(parsing: .unconditional, help: "Seed of the MLM masking of the split (default 0).", transform: OptionValues.seed)
    var maskingSeed: UInt64 = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let inputs = try FileChecks.inputs([("--checkpoint", checkpoint), ("--data", data)])
        let model = try Checkpoint.load(inputs[0].url)
        let dataset = try DigitsDataset.load(inputs[1].url)
        let report = try Evaluation.evaluate(
            model, on: dataset, split: split, batchSize: batchSize, retrievalChunk: retrievalChunk,
            maskingSeed: maskingSeed)
        print(json ? report.jsonString() : report.table)
    }
}

import Datasets
import Foundation
import Kernels
import UniPerceiver

/// One score, with what guessing would reach.
public struct EvaluationMetric: Codable, Sendable, Equatable {
    /// `task/metric`, e.g. `image-classification/accuracy`.
    public var name: String
    public var task: String
    /// In [0, 1].
    public var value: Double
    /// Expected score of a uniformly random choice among the candidates.
    public var chance: Double
    /// Score of always answering the most frequent target of this split (token metrics only):
    /// a stronger baseline than `chance` where targets are skewed.
    public var majority: Double?
    /// Scored items (images, masked tokens, caption tokens, queries).
    public var count: Int
}

/// The validation scores of a model.
public struct EvaluationReport: Codable, Sendable, Equatable {
    public var dataset: String
    public var split: String
    /// Retrieval ranks each query among the captions (or images) of its chunk of this many images
    /// (the option given, or the split's image count when that is smaller).
    public var retrievalChunk: Int
    public var metrics: [EvaluationMetric]

    enum CodingKeys: String, CodingKey {
        case dataset, split, metrics
        case retrievalChunk = "retrieval_chunk"
    }

    public func metric(_ name: String) -> EvaluationMetric? { metrics.first { $0.name == name } }

    /// Aligned text lines: metric, value, chance, majority baseline, count.
    public var table: String {
        let width = max(6, metrics.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        func percent(_ x: Double) -> String { String(format: "%6.2f %%", 100 * x) }
        var lines = [
            "\(pad("metric", width))   value     chance    majority   n",
        ]
        for m in metrics {
            let majority = m.majority.map(percent) ?? "       –"
            lines.append("\(pad(m.name, width))  \(percent(m.value))  \(percent(m.chance))  \(majority)   \(m.count)")
        }
        lines.append("(\(dataset), \(split) split; retrieval recall@1 within chunks of \(retrievalChunk) images)")
        return lines.joined(separator: "\n")
    }

    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Forward-only scores on a split (issue 3, item 4):
/// * `image-classification/accuracy`: the class name with the highest logit; chance 1/K;
/// * `mlm/masked-token-accuracy`: argmax over the vocabulary at every masked position, the corpus
///   masked once by a generator seeded `maskingSeed` (batches in split order); chance 1/V;
/// * `captioning/token-accuracy`: teacher-forced, argmax over the vocabulary at every caption
///   position (EOT included); chance 1/V;
/// * `retrieval/image-to-text-recall@1` and `retrieval/text-to-image-recall@1`: the split's images in
///   consecutive chunks of `retrievalChunk` (the last one smaller); each image ranks its chunk's
///   captions and each caption its chunk's images. A hit is a retrieved item whose caption is the
///   query's caption token for token (identical captions cannot be told apart); chance is the
///   expected hit rate of a uniform pick under the same rule.
public enum Evaluation {
    public static func evaluate(
        _ model: Model, on dataset: DigitsDataset, split: DatasetSplit = .validation, batchSize: Int = 64,
        retrievalChunk: Int = 64, maskingSeed: UInt64 = 0
    ) throws(TrainingError) -> EvaluationReport {
        guard batchSize > 0 else { throw .badOption(name: "--batch-size", reason: "must be positive, got \(batchSize)") }
        guard retrievalChunk > 0 else {
            throw .badOption(name: "--retrieval-chunk", reason: "must be positive, got \(retrievalChunk)")
        }
        try Trainer.checkCompatible(model.config, dataset)
        for task in TaskKind.allCases where dataset.indices(of: task, in: split).isEmpty {
            throw .dataset(.emptySplit(file: dataset.file, path: dataset.splitPath(of: task, split)))
        }
        func forward(_ batch: Batch) throws(TrainingError) -> ForwardPass {
            do { return try model.forward(batch) } catch { throw .model(error) }
        }
        let V = model.config.vocabSize
        var rng = SeededRNG(seed: maskingSeed)
        var metrics: [EvaluationMetric] = []

        // Classification.
        var correct = 0
        var total = 0
        for indices in dataset.sequentialBatches(task: .imageClassification, split: split, batchSize: batchSize) {
            let pass = try forward(dataset.makeBatch(task: .imageClassification, split: split, indices: indices, rng: &rng))
            correct += zip(pass.rowPredictions, pass.targetIndices).filter { $0 == $1 }.count
            total += pass.rowCount
        }
        metrics.append(
            EvaluationMetric(
                name: "image-classification/accuracy", task: TaskKind.imageClassification.rawValue,
                value: ratio(correct, total), chance: 1 / Double(dataset.classNames.count), majority: nil, count: total))

        // Token tasks: MLM and captioning.
        for (task, name) in [(TaskKind.mlm, "mlm/masked-token-accuracy"), (.captioning, "captioning/token-accuracy")] {
            var rng = SeededRNG(seed: maskingSeed)
            var correct = 0
            var targets: [Int] = []
            for indices in dataset.sequentialBatches(task: task, split: split, batchSize: batchSize) {
                let pass = try forward(dataset.makeBatch(task: task, split: split, indices: indices, rng: &rng))
                correct += zip(pass.rowPredictions, pass.targetIndices).filter { $0 == $1 }.count
                targets += pass.targetIndices
            }
            var frequency: [Int: Int] = [:]
            for t in targets { frequency[t, default: 0] += 1 }
            metrics.append(
                EvaluationMetric(
                    name: name, task: task.rawValue, value: ratio(correct, targets.count), chance: 1 / Double(V),
                    majority: ratio(frequency.values.max() ?? 0, targets.count), count: targets.count))
        }

        // Retrieval, both directions, within chunks.
        var hits = (imageToText: 0, textToImage: 0)
        var chance = 0.0
        var queries = 0
        for indices in dataset.sequentialBatches(task: .retrieval, split: split, batchSize: retrievalChunk) {
            let pass = try forward(dataset.makeBatch(task: .retrieval, split: split, indices: indices, rng: &rng))
            let captions = indices.map { dataset.captions[$0] }
            for (query, retrieved) in pass.rowPredictions.enumerated() where captions[retrieved] == captions[query] {
                hits.imageToText += 1
            }
            for (query, retrieved) in pass.columnPredictions.enumerated() where captions[retrieved] == captions[query] {
                hits.textToImage += 1
            }
            for caption in captions {
                chance += Double(captions.filter { $0 == caption }.count) / Double(captions.count)
            }
            queries += captions.count
        }
        for (name, count) in [
            ("retrieval/image-to-text-recall@1", hits.imageToText), ("retrieval/text-to-image-recall@1", hits.textToImage),
        ] {
            metrics.append(
                EvaluationMetric(
                    name: name, task: TaskKind.retrieval.rawValue, value: ratio(count, queries),
                    chance: queries > 0 ? chance / Double(queries) : 0, majority: nil, count: queries))
        }
        // A chunk larger than the split is the whole split: report the size that was ranked within.
        let imagesPerChunk = queries > 0 ? min(retrievalChunk, queries) : retrievalChunk
        return EvaluationReport(
            dataset: dataset.file, split: split.rawValue, retrievalChunk: imagesPerChunk, metrics: metrics)
    }

    static func ratio(_ a: Int, _ b: Int) -> Double { b > 0 ? Double(a) / Double(b) : 0 }
}

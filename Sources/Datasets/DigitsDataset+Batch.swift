import Kernels
import UniPerceiver

extension DigitsDataset {
    /// The mini-batch of `task` formed by the dataset examples `indices` of `split`.
    ///
    /// * `image-classification`: images `[B, C, S, S]`, their labels, and all class names;
    /// * `mlm`: the sentences `indices` of the corpus, masked by `masking` with `rng` (the only
    ///   task that draws from `rng`);
    /// * `captioning`, `retrieval`: images `[B, C, S, S]` and their captions.
    ///
    /// Sequences are the file's token ids (ending with EOT, no SPE; the model prepends SPE and
    /// pads).
    /// Record `indices` to know which examples formed the batch (the probe stores them).
    /// Precondition: `indices` is non-empty and every index belongs to `split` of the task's
    /// source — take them from `indices(of:in:)` or a `BatchSampler`.
    public func makeBatch(
        task: TaskKind, split: DatasetSplit, indices: [Int], rng: inout SeededRNG,
        masking: WordMasking = WordMasking()
    ) -> Batch {
        precondition(!indices.isEmpty, "DigitsDataset.makeBatch: no indices for \(task.rawValue)")
        for index in indices {
            precondition(
                self.split(ofExample: index, task: task) == split,
                "DigitsDataset.makeBatch: index \(index) is not in \(splitPath(of: task, split))")
        }
        switch task {
        case .imageClassification:
            return .imageClassification(
                images: imageTensor(indices), labels: indices.map { labels[$0] },
                classNames: classNames)
        case .mlm:
            var tokens: [[Int]] = []
            var targets: [[Int]] = []
            for index in indices {
                let (masked, labels) = masking.mask(
                    corpus[index], vocabulary: vocabulary, rng: &rng)
                tokens.append(masked)
                targets.append(labels)
            }
            return .mlm(tokens: tokens, labels: targets)
        case .captioning:
            return .captioning(images: imageTensor(indices), captions: indices.map { captions[$0] })
        case .retrieval:
            return .retrieval(images: imageTensor(indices), captions: indices.map { captions[$0] })
        }
    }

    /// The normalised images `indices` stacked as a `[B, C, S, S]` tensor.
    public func imageTensor(_ indices: [Int]) -> Tensor {
        var data: [Float] = []
        data.reserveCapacity(indices.count * imageElementCount)
        for index in indices { data.append(contentsOf: image(index)) }
        return Tensor(shape: [indices.count, channels, imageSize, imageSize], data: data)
    }

    /// A seeded sampler of mini-batches of `batchSize` distinct examples of `task` in `split`.
    /// - Throws: `DatasetError.emptySplit` when the split holds nothing, `.batchTooLarge` when it
    ///   holds fewer than `batchSize` examples.
    public func sampler(
        task: TaskKind, split: DatasetSplit, batchSize: Int, seed: UInt64
    ) throws(DatasetError) -> BatchSampler {
        let population = indices(of: task, in: split)
        let path = splitPath(of: task, split)
        guard !population.isEmpty else { throw .emptySplit(file: file, path: path) }
        guard batchSize > 0, batchSize <= population.count else {
            throw .batchTooLarge(
                file: file, path: path, batchSize: batchSize, available: population.count)
        }
        return BatchSampler(
            population: population, batchSize: batchSize, seed: seed,
            stream: UInt64(TaskKind.allCases.firstIndex(of: task)!))
    }

    /// The whole split in order, cut into consecutive batches of at most `batchSize` (evaluation).
    public func sequentialBatches(task: TaskKind, split: DatasetSplit, batchSize: Int) -> [[Int]] {
        precondition(batchSize > 0, "DigitsDataset.sequentialBatches: batch size \(batchSize)")
        let population = indices(of: task, in: split)
        return stride(from: 0, to: population.count, by: batchSize).map {
            Array(population[$0..<min($0 + batchSize, population.count)])
        }
    }
}

import Datasets
import Kernels
import Testing
import UniPerceiver

@Suite("Batch building")
struct BatchTests {
    @Test(
        "each task's batch has the shapes and contents the model contract asks for",
        arguments: TaskKind.allCases)
    func shapes(task: TaskKind) throws {
        let data = try Synthetic.dataset()
        let indices = Array(data.indices(of: task, in: .validation).prefix(4))
        var rng = SeededRNG(seed: 1)
        let batch = data.makeBatch(task: task, split: .validation, indices: indices, rng: &rng)
        #expect(batch.task == task)
        let eot = data.vocabulary.endOfText
        switch batch {
        case .imageClassification(let images, let labels, let classNames):
            #expect(images.shape == [4, 2, 2, 2])
            #expect(labels == indices.map { data.labels[$0] })
            #expect(classNames.count == 3 && classNames.allSatisfy { $0.last == eot })
        case .mlm(let tokens, let labels):
            #expect(tokens.count == 4 && labels.count == 4)
            for (b, index) in indices.enumerated() {
                #expect(tokens[b].count == data.corpus[index].count)
                #expect(labels[b].count == tokens[b].count)
                #expect(!tokens[b].dropLast().contains(eot))
            }
        case .captioning(let images, let captions), .retrieval(let images, let captions):
            #expect(images.shape == [4, 2, 2, 2])
            #expect(captions == indices.map { data.captions[$0] })
            #expect(!captions.joined().contains(data.vocabulary.spe), "batches never include SPE")
        }
    }

    @Test("images are normalised with x / 8 − 1 and stacked [B, C, S, S] in index order")
    func normalisation() throws {
        let data = try Synthetic.dataset()
        #expect(data.images.allSatisfy { $0 >= -1 && $0 <= 1 })
        let tensor = data.imageTensor([12, 3])
        #expect(Array(tensor.data[0..<8]) == Array(data.image(12)))
        #expect(Array(tensor.data[8..<16]) == Array(data.image(3)))
        let raw = DigitsDatasetTestPixels.value
        let d = try DigitsDataset(
            file: "<one>", imageSize: 1, channels: 1, pixels: raw, labels: [0, 0, 0],
            classNames: [[0, Synthetic.vocabulary.endOfText]],
            captions: Array(repeating: [0, Synthetic.vocabulary.endOfText], count: 3),
            corpus: [[0, Synthetic.vocabulary.endOfText], [1, Synthetic.vocabulary.endOfText]],
            vocabulary: Synthetic.vocabulary, imageSplits: [.train: [0, 1], .validation: [2]],
            corpusSplits: [.train: [0], .validation: [1]])
        #expect(d.images == [-1, 0, 1])
    }

    @Test("sequential batches cover the split once, in order")
    func sequential() throws {
        let data = try Synthetic.dataset()
        let batches = data.sequentialBatches(task: .captioning, split: .train, batchSize: 7)
        #expect(batches.map(\.count) == [7, 7, 7, 7, 2])
        #expect(batches.flatMap { $0 } == data.indices(of: .captioning, in: .train))
    }
}

private enum DigitsDatasetTestPixels {
    static let value: [UInt8] = [0, 8, 16]
}

@Suite("Seeded mini-batch sampling")
struct SamplerTests {
    /// Distinct examples of the split per batch, no repeat within an epoch, and a pure function of
    /// the batch number (what `--resume` relies on).
    @Test("batches are distinct, an epoch never repeats an example, the draw is repeatable")
    func epochs() throws {
        let data = try Synthetic.dataset()
        let sampler = try data.sampler(task: .retrieval, split: .train, batchSize: 8, seed: 11)
        #expect(sampler.batchesPerEpoch == 3)
        let split = Set(data.indices(of: .retrieval, in: .train))
        let epoch0 = (0..<3).map { sampler.indices(ofBatch: $0) }
        let all = epoch0.flatMap { $0 }
        #expect(Set(all).count == 24 && Set(all).isSubset(of: split))
        #expect(sampler.indices(ofBatch: 7) == sampler.indices(ofBatch: 7))
        let again = try data.sampler(task: .retrieval, split: .train, batchSize: 8, seed: 11)
        #expect(
            (0..<10).map { again.indices(ofBatch: $0) }
                == (0..<10).map { sampler.indices(ofBatch: $0) })
        #expect(sampler.order(epoch: 0) != sampler.order(epoch: 1), "each epoch reshuffles")
    }

    /// The probe draws its work list with `indices(ofBatches:)`, one shuffle per epoch; it must give
    /// the batches `indices(ofBatch:)` gives one by one, across epoch boundaries and from any start.
    @Test("a range of batches equals the batches drawn one by one")
    func range() throws {
        let data = try Synthetic.dataset()
        let sampler = try data.sampler(task: .retrieval, split: .train, batchSize: 8, seed: 11)
        for numbers in [0..<10, 2..<7, 4..<4, 5..<6] {
            #expect(sampler.indices(ofBatches: numbers) == numbers.map { sampler.indices(ofBatch: $0) })
        }
    }

    @Test("tasks and seeds draw different orders")
    func streams() throws {
        let data = try Synthetic.dataset()
        let a = try data.sampler(task: .captioning, split: .train, batchSize: 8, seed: 11)
        let b = try data.sampler(task: .retrieval, split: .train, batchSize: 8, seed: 11)
        let c = try data.sampler(task: .captioning, split: .train, batchSize: 8, seed: 12)
        #expect(a.indices(ofBatch: 0) != b.indices(ofBatch: 0))
        #expect(a.indices(ofBatch: 0) != c.indices(ofBatch: 0))
    }

    @Test("a batch larger than the split is refused with the split named")
    func tooLarge() throws {
        let data = try Synthetic.dataset(file: "small.h5")
        #expect(
            throws: DatasetError.batchTooLarge(
                file: "small.h5", path: "/splits/corpus/validation", batchSize: 7, available: 6)
        ) {
            try data.sampler(task: .mlm, split: .validation, batchSize: 7, seed: 0)
        }
    }
}

@Suite("Attribute vectors (spec §5.6)")
struct AttributeTests {
    @Test("the table holds the released values")
    func values() {
        func bits(_ s: String) -> [UInt8] { s.split(separator: " ").map { UInt8($0)! } }
        #expect(
            TaskAttributes.of(.imageClassification).input.map(\.bits) == [bits("1 0 0 1 1 0 0 0")])
        #expect(TaskAttributes.of(.imageClassification).target.bits == bits("1 0 0 1 0 1 1 0"))
        #expect(TaskAttributes.of(.mlm).input.map(\.bits) == [bits("0 1 0 1 0 1 0 0")])
        #expect(TaskAttributes.of(.mlm).target.bits == bits("1 1 0 1 0 1 1 0"))
        #expect(
            TaskAttributes.of(.captioning).input.map(\.bits)
                == [bits("1 1 0 1 1 0 0 0"), bits("1 1 0 1 0 1 0 1")])
        #expect(TaskAttributes.of(.captioning).target.bits == bits("1 1 0 1 0 1 1 0"))
        #expect(TaskAttributes.of(.retrieval).input.map(\.bits) == [bits("1 0 0 1 1 0 0 0")])
        #expect(TaskAttributes.of(.retrieval).target.bits == bits("1 0 0 1 0 1 1 0"))
        #expect(AttributeSegment.captionText.vector == [1, 1, 0, 1, 0, 1, 0, 1])
    }

    @Test("per-position segments follow each task's sequence layout")
    func positions() {
        let caption = TaskAttributes.inputSegments(of: .captioning, imageTokens: 4, textLength: 3)
        #expect(
            caption == Array(repeating: .captionImage, count: 5)
                + Array(repeating: .captionText, count: 6))
        #expect(TaskAttributes.inputSegments(of: .mlm, imageTokens: 4, textLength: 3).count == 4)
        #expect(
            TaskAttributes.inputSegments(of: .retrieval, imageTokens: 4, textLength: 3)
                == Array(repeating: .retrievalImage, count: 5))
    }
}

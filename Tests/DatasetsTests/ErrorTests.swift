import Datasets
import Foundation
import Testing
import UniPerceiver

@Suite("Bad input gives the specific DatasetError")
struct ErrorTests {
    @Test("an unknown task name is refused with the known names")
    func unknownTask() throws {
        #expect(
            throws: DatasetError.unknownTask(
                name: "segmentation", known: TaskKind.allCases.map(\.rawValue))
        ) {
            try TaskDefinition.named("segmentation")
        }
        do {
            _ = try TaskDefinition.named("captions")
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("'captions'"))
            #expect(error.description.contains("captioning"))
        }
        for task in TaskKind.allCases {
            #expect(try TaskDefinition.named(task.rawValue).kind == task)
        }
    }

    @Test("an image shape that does not match the model names the file and both shapes")
    func imageShape() throws {
        let data = try Synthetic.dataset(file: "data/small.h5")
        try data.checkImageShape(imageSize: 2, channels: 2)
        do {
            try data.checkImageShape(imageSize: 8, channels: 1)
            Issue.record("no error")
        } catch {
            #expect(
                error
                    == .imageShapeMismatch(
                        file: "data/small.h5", expectedImageSize: 8, expectedChannels: 1,
                        foundImageSize: 2,
                        foundChannels: 2))
            #expect(error.description.hasPrefix("data/small.h5: "))
            #expect(
                error.description.contains("[1, 8, 8]") && error.description.contains("[2, 2, 2]"))
        }
    }

    @Test("an empty split, overlapping splits, and a sequence without EOT are refused")
    func content() throws {
        #expect(throws: DatasetError.emptySplit(file: "x.h5", path: "/splits/images/validation")) {
            try Synthetic.dataset(file: "x.h5", imageSplits: [.train: [0, 1], .validation: []])
        }
        #expect(throws: DatasetError.emptySplit(file: "x.h5", path: "/splits/corpus/train")) {
            try Synthetic.dataset(file: "x.h5", corpusSplits: [.validation: [0]])
        }
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/splits/images/validation",
                reason: "index 3 is also in /splits/images/train")
        ) {
            try Synthetic.dataset(file: "x.h5", imageSplits: [.train: [1, 3], .validation: [3]])
        }
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/splits/images", reason: "index 1 is in no split")
        ) {
            try Synthetic.dataset(
                file: "x.h5", imageSplits: [.train: Array(2..<40), .validation: [0]])
        }
        let data = try Synthetic.dataset()
        #expect(data.split(ofExample: 3, task: .captioning) == .validation)
        #expect(data.split(ofExample: 3, task: .mlm) == .validation)
        #expect(data.split(ofExample: 30, task: .retrieval) == .train)
        let v = Synthetic.vocabulary
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/corpus/tokens", reason: "row 1 does not end with EOT")
        ) {
            try Synthetic.dataset(file: "x.h5", corpus: [[0, v.endOfText], [0, 1]])
        }
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/corpus/tokens", reason: "row 0 holds the SPE id")
        ) {
            try Synthetic.dataset(file: "x.h5", corpus: [[v.spe, v.endOfText], [0, v.endOfText]])
        }
        // Ids run 0..<V: V itself would index past the embedding table.
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/corpus/tokens",
                reason: "row 1 holds id \(v.count) outside the vocabulary 0..<\(v.count)")
        ) {
            try Synthetic.dataset(file: "x.h5", corpus: [[0, v.endOfText], [v.count, 1, v.endOfText]])
        }
    }

    @Test("a label without a class name, a pixel above its maximum, a sentence with nothing to mask are refused")
    func values() throws {
        let labels = (0..<40).map { $0 % 3 }
        for (bad, value) in [(7, 3), (0, -1)] {
            var changed = labels
            changed[bad] = value
            #expect(
                throws: DatasetError.badContent(
                    file: "x.h5", path: "/labels", reason: "label \(value) of image \(bad) has no class name (0..<3)")
            ) {
                try Synthetic.dataset(file: "x.h5", labels: changed)
            }
        }
        // The largest label and pixel pass: class K − 1 exists, and 16 is white.
        #expect((try? Synthetic.dataset(labels: labels.map { _ in 2 })) != nil)
        var pixels = [UInt8](repeating: 16, count: 40 * 2 * 2 * 2)
        #expect((try? Synthetic.dataset(pixels: pixels)) != nil)
        pixels[5] = 17
        #expect(
            throws: DatasetError.badContent(file: "x.h5", path: "/images", reason: "pixel 17 at 5 exceeds 16")
        ) {
            try Synthetic.dataset(file: "x.h5", pixels: pixels)
        }
        // MLM masks regular words only: a sentence of specials would have nothing to predict.
        let v = Synthetic.vocabulary
        #expect(
            throws: DatasetError.badContent(
                file: "x.h5", path: "/corpus/tokens", reason: "sentence 1 has no regular word to mask")
        ) {
            try Synthetic.dataset(file: "x.h5", corpus: [[0, v.endOfText], [v.mask, v.endOfText]])
        }
    }

    @Test("a word list whose specials are not the last five is refused")
    func vocabulary() throws {
        #expect(throws: DatasetError.self) {
            try Vocabulary(
                words: ["a", "<|spe|>", "<|startoftext|>", "<|endoftext|>", "<|mask|>", "<|gen|>"],
                file: "v.h5", path: "/vocabulary/words")
        }
        // A word listed twice would make decoding ambiguous: an error naming it, not a crash.
        do {
            _ = try Vocabulary(words: ["a", "b", "a"] + Vocabulary.specialTokens, file: "v.h5", path: "/vocabulary/words")
            Issue.record("a repeated word was accepted")
        } catch {
            #expect(error.description.hasPrefix("v.h5: /vocabulary/words") && error.description.contains("'a'"), "\(error)")
        }
        // The specials alone leave no word to mask, caption or name a class with.
        #expect(
            throws: DatasetError.badContent(
                file: "v.h5", path: "/vocabulary/words",
                reason: "5 words, need at least one regular word and the 5 specials")
        ) {
            try Vocabulary(words: Vocabulary.specialTokens, file: "v.h5", path: "/vocabulary/words")
        }
        let v = try Vocabulary(
            words: ["b", "a"] + Vocabulary.specialTokens, file: "v.h5", path: "/vocabulary/words")
        #expect(v.count == 7 && v.spe == 6 && v.endOfText == 3 && v.startOfText == 2)
        #expect(v.encode("a b") == [1, 0, 3])
        #expect(v.encode("a c") == nil)
        #expect(v.decode([1, 3]) == "a <|endoftext|>")
    }
}

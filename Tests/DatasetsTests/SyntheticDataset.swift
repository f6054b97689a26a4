import Datasets
import Kernels

/// A small in-memory dataset for tests that must not depend on the committed file: 3 classes, 2×2
/// images of 2 channels, 40 images (30 train / 10 validation), and a corpus of 24 sentences of
/// `sentenceLength` regular words each (18 train / 6 validation).
enum Synthetic {
    static let classWords = ["red", "green", "blue"]
    static let fillerWords = (0..<30).map { "w\($0)" }
    static let vocabulary = Vocabulary(regularWords: classWords + fillerWords + ["a", "dot"])

    static func dataset(
        file: String = "<synthetic>", sentenceLength: Int = 17,
        imageSplits: [DatasetSplit: [Int]]? = nil, corpusSplits: [DatasetSplit: [Int]]? = nil,
        corpus overrideCorpus: [[Int]]? = nil, labels overrideLabels: [Int]? = nil,
        pixels overridePixels: [UInt8]? = nil
    ) throws(DatasetError) -> DigitsDataset {
        let v = vocabulary
        let n = 40
        var rng = SeededRNG(seed: 99)
        let pixels = overridePixels ?? (0..<(n * 2 * 2 * 2)).map { _ in UInt8(rng.nextInt(below: 17)) }
        let labels = overrideLabels ?? (0..<n).map { $0 % 3 }
        let classNames = classWords.map { [v.id(of: $0)!, v.endOfText] }
        // A label without a class (a test's) still gets a caption, so the dataset's own check sees it.
        let captions = labels.enumerated().map { (i, label) in
            [
                v.id(of: "a")!, v.id(of: fillerWords[i % 30])!, v.id(of: classWords[(label % 3 + 3) % 3])!,
                v.endOfText,
            ]
        }
        let corpus =
            overrideCorpus
            ?? (0..<24).map { s in
                (0..<sentenceLength).map { v.id(of: fillerWords[(s + $0) % 30])! } + [v.endOfText]
            }
        return try DigitsDataset(
            file: file, imageSize: 2, channels: 2, pixels: pixels, labels: labels,
            classNames: classNames, captions: captions, corpus: corpus, vocabulary: v,
            imageSplits: imageSplits ?? [.train: Array(10..<40), .validation: Array(0..<10)],
            corpusSplits: corpusSplits ?? [.train: Array(6..<24), .validation: Array(0..<6)])
    }
}

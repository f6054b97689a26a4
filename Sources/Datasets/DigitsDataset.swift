import Foundation
import UniPerceiver

/// The bundled multi-task dataset (`notebooks-data/digits.h5`) held in memory.
///
/// Images are `[C, S, S]` (1 × 8 × 8 for the UCI digits), stored normalised to Float with
/// `x / (pixelMax / 2) − 1` (`x / 8 − 1` for pixels 0..16, range [−1, 1]). Every token sequence
/// (class names, captions, corpus sentences) ends with the vocabulary's EOT id and holds no SPE.
/// Examples are addressed by **dataset index**: a row of the images (image tasks) or a sentence of
/// the corpus (`mlm`); the splits are sorted lists of such indices.
///
/// Build one with `load(_:)` from a file or with `init(file:…)` from arrays (tests, other data).
public struct DigitsDataset: Sendable {
    /// The root `format` attribute this module reads.
    public static let format = "task-interference/dataset"
    /// The schema version this module reads.
    public static let version = 1

    /// Where the data came from; every error message names it.
    public let file: String
    /// Side `S` of the square images.
    public let imageSize: Int
    /// Channels `C` of the images.
    public let channels: Int
    /// Number of images N.
    public let imageCount: Int
    /// Normalised pixels, `[N, C, S, S]` row-major.
    public let images: [Float]
    /// Class of each image, an index into `classNames`.
    public let labels: [Int]
    /// Token ids of each class name ("zero" … "nine"), ending with EOT.
    public let classNames: [[Int]]
    /// Token ids of each image's caption, ending with EOT.
    public let captions: [[Int]]
    /// Token ids of each corpus sentence, ending with EOT.
    public let corpus: [[Int]]
    public let vocabulary: Vocabulary
    /// Image indices of each split (sorted, disjoint).
    public let imageSplits: [DatasetSplit: [Int]]
    /// Sentence indices of each split (sorted, disjoint).
    public let corpusSplits: [DatasetSplit: [Int]]
    /// The split of each image and of each sentence (the inverse of the two maps above).
    private let imageSplitOf: [DatasetSplit]
    private let sentenceSplitOf: [DatasetSplit]

    /// Validates and stores a dataset given as arrays.
    ///
    /// - Parameters:
    ///   - file: the name used in error messages (a path, or a label such as "<memory>").
    ///   - pixels: raw pixel values `0 ... pixelMax`, `[N, C, S, S]` row-major.
    ///   - classNames, captions, corpus: token ids, each sequence ending with EOT.
    ///   - imageSplits, corpusSplits: dataset indices per split; order does not matter.
    /// - Throws: `DatasetError.badShape` when counts disagree, `.badContent` for out-of-range ids,
    ///   labels or indices, a sequence without final EOT, an SPE inside a sequence, or overlapping
    ///   splits; `.emptySplit` when a split holds nothing. Paths in the messages are the file's.
    public init(
        file: String, imageSize: Int, channels: Int, pixels: [UInt8], pixelMax: Int = 16,
        labels: [Int], classNames: [[Int]], captions: [[Int]], corpus: [[Int]],
        vocabulary: Vocabulary, imageSplits: [DatasetSplit: [Int]],
        corpusSplits: [DatasetSplit: [Int]]
    ) throws(DatasetError) {
        let n = labels.count
        guard imageSize > 0, channels > 0, pixels.count == n * channels * imageSize * imageSize
        else {
            throw .badShape(
                file: file, path: "/images",
                expected: "[\(n), \(channels), \(imageSize), \(imageSize)]"
                    + " values, one image per label", found: [pixels.count])
        }
        guard n > 0 else {
            throw .badShape(file: file, path: "/labels", expected: "[N > 0]", found: [0])
        }
        guard captions.count == n else {
            throw .badShape(
                file: file, path: "/captions/tokens", expected: "[\(n), L]", found: [captions.count]
            )
        }
        guard !classNames.isEmpty else {
            throw .badShape(
                file: file, path: "/class_names/tokens", expected: "[K > 0, L]", found: [0])
        }
        guard !corpus.isEmpty else {
            throw .badShape(file: file, path: "/corpus/tokens", expected: "[M > 0, L]", found: [0])
        }
        if let bad = pixels.firstIndex(where: { Int($0) > pixelMax }) {
            throw .badContent(
                file: file, path: "/images",
                reason: "pixel \(pixels[bad]) at \(bad) exceeds \(pixelMax)")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classNames.count }) {
            throw .badContent(
                file: file, path: "/labels",
                reason:
                    "label \(labels[bad]) of image \(bad) has no class name "
                    + "(0..<\(classNames.count))"
            )
        }
        try Self.checkSequences(
            classNames, vocabulary: vocabulary, file: file, path: "/class_names/tokens")
        try Self.checkSequences(
            captions, vocabulary: vocabulary, file: file, path: "/captions/tokens")
        try Self.checkSequences(corpus, vocabulary: vocabulary, file: file, path: "/corpus/tokens")
        // MLM masks regular words only, so every sentence needs one.
        if let bad = corpus.firstIndex(where: { !$0.contains { !vocabulary.isSpecial($0) } }) {
            throw .badContent(
                file: file, path: "/corpus/tokens",
                reason: "sentence \(bad) has no regular word to mask")
        }
        (self.imageSplits, self.imageSplitOf) = try Self.checkSplits(
            imageSplits, count: n, file: file, prefix: "/splits/images")
        (self.corpusSplits, self.sentenceSplitOf) = try Self.checkSplits(
            corpusSplits, count: corpus.count, file: file, prefix: "/splits/corpus")

        let half = Float(pixelMax) / 2
        self.file = file
        self.imageSize = imageSize
        self.channels = channels
        self.imageCount = n
        self.images = pixels.map { Float($0) / half - 1 }
        self.labels = labels
        self.classNames = classNames
        self.captions = captions
        self.corpus = corpus
        self.vocabulary = vocabulary
    }

    private static func checkSequences(
        _ sequences: [[Int]], vocabulary: Vocabulary, file: String, path: String
    ) throws(DatasetError) {
        for (row, ids) in sequences.enumerated() {
            guard ids.last == vocabulary.endOfText else {
                throw .badContent(
                    file: file, path: path, reason: "row \(row) does not end with EOT")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary.count }) {
                throw .badContent(
                    file: file, path: path,
                    reason:
                        "row \(row) holds id \(bad) outside the vocabulary 0..<\(vocabulary.count)")
            }
            if ids.contains(vocabulary.spe) {
                throw .badContent(file: file, path: path, reason: "row \(row) holds the SPE id")
            }
        }
    }

    private static func checkSplits(
        _ splits: [DatasetSplit: [Int]], count: Int, file: String, prefix: String
    ) throws(DatasetError) -> (indices: [DatasetSplit: [Int]], owner: [DatasetSplit]) {
        var owner = [DatasetSplit?](repeating: nil, count: count)
        var sorted: [DatasetSplit: [Int]] = [:]
        for split in DatasetSplit.allCases {
            let path = "\(prefix)/\(split.rawValue)"
            guard let indices = splits[split], !indices.isEmpty else {
                throw .emptySplit(file: file, path: path)
            }
            for index in indices {
                guard index >= 0 && index < count else {
                    throw .badContent(
                        file: file, path: path, reason: "index \(index) outside 0..<\(count)")
                }
                if let other = owner[index] {
                    throw .badContent(
                        file: file, path: path,
                        reason: "index \(index) is also in \(prefix)/\(other.rawValue)")
                }
                owner[index] = split
            }
            sorted[split] = indices.sorted()
        }
        // Every example belongs to exactly one split: a file may not leave rows unassigned.
        if let orphan = owner.firstIndex(of: nil) {
            throw .badContent(
                file: file, path: prefix, reason: "index \(orphan) is in no split")
        }
        return (sorted, owner.map { $0! })
    }

    /// The split that example `index` of `task`'s source belongs to.
    public func split(ofExample index: Int, task: TaskKind) -> DatasetSplit {
        let owners = task == .mlm ? sentenceSplitOf : imageSplitOf
        precondition(
            index >= 0 && index < owners.count,
            "DigitsDataset: example \(index) outside 0..<\(owners.count) for \(task.rawValue)")
        return owners[index]
    }

    /// The dataset indices `task` draws from in `split`: image rows for the image tasks, corpus
    /// sentences for `mlm`.
    public func indices(of task: TaskKind, in split: DatasetSplit) -> [Int] {
        (task == .mlm ? corpusSplits : imageSplits)[split] ?? []
    }

    /// The HDF5 path of a split, for messages: `/splits/images/train`, `/splits/corpus/validation`.
    public func splitPath(of task: TaskKind, _ split: DatasetSplit) -> String {
        "/splits/\(task == .mlm ? "corpus" : "images")/\(split.rawValue)"
    }

    /// Checks that the images are the `[channels, imageSize, imageSize]` a model is configured for.
    /// - Throws: `DatasetError.imageShapeMismatch` naming the file and both shapes.
    public func checkImageShape(imageSize: Int, channels: Int) throws(DatasetError) {
        guard imageSize == self.imageSize && channels == self.channels else {
            throw .imageShapeMismatch(
                file: file, expectedImageSize: imageSize, expectedChannels: channels,
                foundImageSize: self.imageSize, foundChannels: self.channels)
        }
    }

    /// Floats per image, `C·S·S`.
    public var imageElementCount: Int { channels * imageSize * imageSize }

    /// The normalised pixels of image `index`, `[C, S, S]` row-major.
    public func image(_ index: Int) -> ArraySlice<Float> {
        precondition(
            index >= 0 && index < imageCount, "DigitsDataset: image \(index) of \(imageCount)")
        let size = imageElementCount
        return images[index * size..<(index + 1) * size]
    }
}

import Foundation
import Storage

extension DigitsDataset {
    /// Reads a dataset file written by `notebooks-data/build_digits.py` (schema:
    /// `notebooks-data/README.md`) and validates it.
    ///
    /// Reads `/images` (uint8 `[N, S, S]`, or `[N, C, S, S]`), `/labels`, the token arrays and
    /// lengths of `/class_names`, `/captions` and `/corpus`, `/vocabulary/words` and the four
    /// `/splits/…` index lists. Strings other than the vocabulary are not read.
    /// - Throws: `DatasetError.missingFile`; `.unreadable` when HDF5 cannot open or read it;
    ///   `.wrongFormat` / `.unsupportedVersion` for the root attributes; `.missingDataset`;
    ///   `.badShape`; `.badContent`; `.emptySplit` — each naming `url.path`.
    public static func load(_ url: URL) throws(DatasetError) -> DigitsDataset {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else { throw .missingFile(file: file) }
        let h5: HDF5File
        do {
            h5 = try HDF5File.open(url)
        } catch {
            throw .unreadable(file: file, reason: error.description)
        }
        defer { try? h5.close() }
        let reader = Reader(h5: h5, file: file)
        try reader.checkHeader()

        let images = try reader.ints("/images", as: UInt8.self)
        let (imageSize, channels): (Int, Int)
        switch images.shape.count {
        case 3 where images.shape[1] == images.shape[2]:
            (imageSize, channels) = (images.shape[1], 1)
        case 4 where images.shape[2] == images.shape[3]:
            (imageSize, channels) = (images.shape[2], images.shape[1])
        default:
            throw .badShape(
                file: file, path: "/images", expected: "[N, S, S] or [N, C, S, S]",
                found: images.shape)
        }
        try reader.checkDeclared("image_size", equals: imageSize, images: images.shape)
        try reader.checkDeclared("channels", equals: channels, images: images.shape)
        let n = images.shape[0]
        let labels = try reader.vector("/labels", count: n)
        let words = try reader.strings("/vocabulary/words")
        let vocabulary = try Vocabulary(words: words, file: file, path: "/vocabulary/words")
        let classNames = try reader.sequences("/class_names", rows: nil)
        let captions = try reader.sequences("/captions", rows: n)
        let corpus = try reader.sequences("/corpus", rows: nil)
        var imageSplits: [DatasetSplit: [Int]] = [:]
        var corpusSplits: [DatasetSplit: [Int]] = [:]
        for split in DatasetSplit.allCases {
            imageSplits[split] = try reader.vector("/splits/images/\(split.rawValue)", count: nil)
            corpusSplits[split] = try reader.vector("/splits/corpus/\(split.rawValue)", count: nil)
        }
        return try DigitsDataset(
            file: file, imageSize: imageSize, channels: channels, pixels: images.values,
            labels: labels, classNames: classNames, captions: captions, corpus: corpus,
            vocabulary: vocabulary, imageSplits: imageSplits, corpusSplits: corpusSplits)
    }
}

/// Reads the pieces of a dataset file and turns `StorageError`s into `DatasetError`s with the path.
private struct Reader {
    let h5: HDF5File
    let file: String

    func wrap(_ error: StorageError, path: String) -> DatasetError {
        if case .missingDataset = error { return .missingDataset(file: file, path: path) }
        return .unreadable(file: file, reason: error.description)
    }

    /// The root attributes `format` and `version` (a file of another kind fails here, before any
    /// dataset is looked for).
    func checkHeader() throws(DatasetError) {
        let format: String?
        do {
            format = h5.hasAttribute("format") ? try h5.stringAttribute("format") : nil
        } catch {
            throw .wrongFormat(file: file, found: nil)
        }
        guard format == DigitsDataset.format else { throw .wrongFormat(file: file, found: format) }
        let version: Int?
        do {
            version = h5.hasAttribute("version") ? try h5.intAttribute("version") : nil
        } catch {
            version = nil
        }
        guard version == DigitsDataset.version else {
            throw .unsupportedVersion(file: file, found: version, supported: DigitsDataset.version)
        }
    }

    /// A root attribute that declares what `/images` holds (`image_size`, `channels`) must agree with
    /// its shape when the file has it: a file whose header and arrays disagree was not written by
    /// the builder, and a model configured from the header would not fit the images.
    func checkDeclared(_ name: String, equals value: Int, images shape: [Int]) throws(DatasetError) {
        guard h5.hasAttribute(name) else { return }
        let declared: Int
        do { declared = try h5.intAttribute(name) } catch {
            throw .badContent(file: file, path: "/", reason: "root attribute '\(name)' is not an integer")
        }
        guard declared == value else {
            throw .badContent(
                file: file, path: "/",
                reason: "root attribute '\(name)' = \(declared), but /images has shape \(shape) (\(name) \(value))")
        }
    }

    func ints<T: HDF5Element>(_ path: String, as type: T.Type) throws(DatasetError) -> HDF5Array<T>
    {
        do {
            return try h5.read(path, as: type)
        } catch {
            throw wrap(error, path: path)
        }
    }

    func strings(_ path: String) throws(DatasetError) -> [String] {
        do {
            return try h5.readStrings(path)
        } catch {
            throw wrap(error, path: path)
        }
    }

    /// A rank-1 integer dataset, of `count` entries when given.
    func vector(_ path: String, count: Int?) throws(DatasetError) -> [Int] {
        let array = try ints(path, as: Int.self)
        guard array.shape.count == 1, count == nil || array.shape[0] == count else {
            throw .badShape(
                file: file, path: path, expected: "[\(count.map(String.init) ?? "n")]",
                found: array.shape)
        }
        return array.values
    }

    /// The token sequences of `group` (`tokens` `[R, L]` padded, `lengths` `[R]`), `rows` rows when
    /// given.
    func sequences(_ group: String, rows: Int?) throws(DatasetError) -> [[Int]] {
        let tokensPath = "\(group)/tokens"
        let tokens = try ints(tokensPath, as: Int.self)
        guard tokens.shape.count == 2, rows == nil || tokens.shape[0] == rows else {
            throw .badShape(
                file: file, path: tokensPath, expected: "[\(rows.map(String.init) ?? "R"), L]",
                found: tokens.shape)
        }
        let (r, width) = (tokens.shape[0], tokens.shape[1])
        let lengths = try vector("\(group)/lengths", count: r)
        var out: [[Int]] = []
        out.reserveCapacity(r)
        for row in 0..<r {
            guard lengths[row] >= 1 && lengths[row] <= width else {
                throw .badContent(
                    file: file, path: "\(group)/lengths",
                    reason: "row \(row) has length \(lengths[row]), outside 1...\(width)")
            }
            out.append(Array(tokens.values[row * width..<row * width + lengths[row]]))
        }
        return out
    }
}

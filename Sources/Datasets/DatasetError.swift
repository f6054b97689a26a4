/// Everything that can be wrong with a dataset file or a request made of it.
///
/// Every case carries the evidence a user needs (the file, the HDF5 path, what was expected and
/// what was found), and `description` is one "file: reason" line the command line prints as is.
public enum DatasetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file at `file`.
    case missingFile(file: String)
    /// The file exists but the HDF5 layer could not read it (`reason` is the storage error's
    /// message).
    case unreadable(file: String, reason: String)
    /// The root attribute `format` is missing (`found` nil) or is not `DigitsDataset.format`.
    case wrongFormat(file: String, found: String?)
    /// The root attribute `version` is missing (`found` nil) or is not `DigitsDataset.version`.
    case unsupportedVersion(file: String, found: Int?, supported: Int)
    /// A required dataset (HDF5 path such as `/captions/tokens`) is absent.
    case missingDataset(file: String, path: String)
    /// A dataset has the wrong rank or an extent that disagrees with the rest of the file.
    case badShape(file: String, path: String, expected: String, found: [Int])
    /// A dataset's values break the schema (a token id outside the vocabulary, a label without
    /// class name, a sequence that does not end with EOT, overlapping splits, …).
    case badContent(file: String, path: String, reason: String)
    /// A split that a task draws from holds no example.
    case emptySplit(file: String, path: String)
    /// A mini-batch asks for more distinct examples than the split holds.
    case batchTooLarge(file: String, path: String, batchSize: Int, available: Int)
    /// The dataset's images are not the `[channels, imageSize, imageSize]` the model is configured
    /// for.
    case imageShapeMismatch(
        file: String, expectedImageSize: Int, expectedChannels: Int, foundImageSize: Int,
        foundChannels: Int)
    /// A task name that is none of `TaskKind`'s raw values.
    case unknownTask(name: String, known: [String])

    public var description: String {
        switch self {
        case .missingFile(let file):
            return "\(file): no such file"
        case .unreadable(let file, let reason):
            // The storage error below names the file already.
            let cause = reason.hasPrefix(file + ": ") ? String(reason.dropFirst(file.count + 2)) : reason
            return "\(file): cannot read the dataset file: \(cause)"
        case .wrongFormat(let file, let found):
            let what = found.map { "'\($0)'" } ?? "missing"
            return "\(file): root attribute 'format' is \(what), expected '\(DigitsDataset.format)'"
        case .unsupportedVersion(let file, let found, let supported):
            let what = found.map(String.init) ?? "missing"
            return
                "\(file): root attribute 'version' is \(what), "
                + "this build reads version \(supported)"
        case .missingDataset(let file, let path):
            return "\(file): missing dataset \(path)"
        case .badShape(let file, let path, let expected, let found):
            return "\(file): \(path) has shape \(found), expected \(expected)"
        case .badContent(let file, let path, let reason):
            return "\(file): \(path): \(reason)"
        case .emptySplit(let file, let path):
            return "\(file): split \(path) is empty"
        case .batchTooLarge(let file, let path, let batchSize, let available):
            return
                "\(file): split \(path) holds \(available) examples, "
                + "fewer than the batch size \(batchSize)"
        case .imageShapeMismatch(let file, let eSize, let eChannels, let fSize, let fChannels):
            return
                "\(file): images are [\(fChannels), \(fSize), \(fSize)] (channels, size, size), "
                + "the model expects [\(eChannels), \(eSize), \(eSize)]"
        case .unknownTask(let name, let known):
            return "unknown task '\(name)' (known: \(known.joined(separator: ", ")))"
        }
    }
}

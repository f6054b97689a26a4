/// Every way reading or writing a file can fail, with the evidence needed to fix it.
///
/// One enum for the whole `Storage` module (house-style §7). Each case names the file (its path as
/// given by the caller) and, where there is one, the tensor name or HDF5 path that is wrong.
/// `description` is a single line, `"<file>: <reason>"`, so the CLI can print it as is.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist, is not readable, or is not a file of the expected format.
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than its own header says it must be.
    case truncated(file: String, expected: Int, actual: Int)
    /// A safetensors header that cannot be parsed: bad length, malformed JSON, a missing or ill-typed key.
    case badHeader(file: String, reason: String)
    /// A safetensors tensor whose `data_offsets` are reversed, reach past the data buffer,
    /// overlap another tensor or leave a gap.
    case offsetsOutOfRange(file: String, tensor: String, reason: String)
    /// A safetensors tensor whose byte length is not `product(shape) · itemsize`.
    case sizeMismatch(file: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// A safetensors dtype this reader does not know (e.g. `F8_E4M3`).
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor the caller expected is not in the file.
    case missingTensor(file: String, name: String)
    /// The file holds a tensor the caller did not expect (checkpoint key sets must be equal).
    case unexpectedTensor(file: String, name: String)
    /// A tensor or dataset has another shape than expected.
    case shapeMismatch(file: String, name: String, expected: [Int], found: [Int])
    /// A tensor, dataset or attribute holds another kind of value than requested
    /// (e.g. integers read as floats, a string attribute read as a number).
    case wrongType(file: String, name: String, expected: String, found: String)
    /// No dataset (or group) at this HDF5 path.
    case missingDataset(file: String, path: String)
    /// No attribute with this name on the object at this HDF5 path.
    case missingAttribute(file: String, path: String, name: String)
    /// A row range or element count that does not fit the dataset at this HDF5 path.
    case outOfRange(file: String, path: String, reason: String)
    /// An HDF5 library call failed; `operation` says what we were doing, `detail` is HDF5's own
    /// innermost error message when it gave one.
    case hdf5(file: String, operation: String, path: String, detail: String = "")
    /// A file-system operation failed (write, fsync, rename, remove).
    case io(file: String, reason: String)
    /// The tensor bytes do not hash to the `tensors_sha256` the file's metadata records: damaged.
    case checksumMismatch(file: String, recorded: String, computed: String)
    /// The HDF5 file's strings do not hash to the `strings_sha256` it records (or that attribute
    /// is not a string): damaged, or edited by a tool that did not update it.
    case stringsDigestMismatch(file: String, reason: String)

    /// The file this error is about.
    public var file: String {
        switch self {
        case .cannotOpen(let file, _), .truncated(let file, _, _), .badHeader(let file, _),
            .offsetsOutOfRange(let file, _, _), .sizeMismatch(let file, _, _, _),
            .unknownDType(let file, _, _), .missingTensor(let file, _),
            .unexpectedTensor(let file, _),
            .shapeMismatch(let file, _, _, _), .wrongType(let file, _, _, _),
            .missingDataset(let file, _), .missingAttribute(let file, _, _),
            .outOfRange(let file, _, _),
            .hdf5(let file, _, _, _), .io(let file, _), .checksumMismatch(let file, _, _),
            .stringsDigestMismatch(let file, _):
            return file
        }
    }

    /// One line: `"<file>: <reason>"`.
    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason):
            return "\(file): cannot open: \(reason)"
        case .truncated(let file, let expected, let actual):
            return "\(file): truncated: expected at least \(expected) bytes, found \(actual)"
        case .badHeader(let file, let reason):
            return "\(file): bad header: \(reason)"
        case .offsetsOutOfRange(let file, let tensor, let reason):
            return "\(file): tensor '\(tensor)': data_offsets out of range: \(reason)"
        case .sizeMismatch(let file, let tensor, let expectedBytes, let actualBytes):
            return "\(file): tensor '\(tensor)': shape and dtype need \(expectedBytes) bytes, "
                + "data_offsets span \(actualBytes)"
        case .unknownDType(let file, let tensor, let dtype):
            return "\(file): tensor '\(tensor)': unknown dtype '\(dtype)'"
        case .missingTensor(let file, let name):
            return "\(file): missing tensor '\(name)'"
        case .unexpectedTensor(let file, let name):
            return "\(file): unexpected tensor '\(name)'"
        case .shapeMismatch(let file, let name, let expected, let found):
            return "\(file): '\(name)': expected shape \(expected), found \(found)"
        case .wrongType(let file, let name, let expected, let found):
            return "\(file): '\(name)': expected \(expected), found \(found)"
        case .missingDataset(let file, let path):
            return "\(file): no dataset or group at '\(path)'"
        case .missingAttribute(let file, let path, let name):
            return "\(file): no attribute '\(name)' on '\(path)'"
        case .outOfRange(let file, let path, let reason):
            return "\(file): '\(path)': \(reason)"
        case .hdf5(let file, let operation, let path, let detail):
            let suffix = detail.isEmpty ? "" : " (\(detail))"
            return "\(file): HDF5 could not \(operation) '\(path)'\(suffix)"
        case .io(let file, let reason):
            return "\(file): \(reason)"
        case .checksumMismatch(let file, let recorded, let computed):
            return "\(file): damaged file: its tensor bytes hash to \(computed.prefix(12))…, "
                + "its header records tensors_sha256 \(recorded.prefix(12))…"
        case .stringsDigestMismatch(let file, let reason):
            return "\(file): \(reason)"
        }
    }
}

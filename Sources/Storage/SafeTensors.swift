import Foundation
import Kernels

/// The safetensors format: read a file into a ``SafeTensorsFile``, write named tensors atomically.
///
/// Layout (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian `u64`
/// header length `N`; `N` bytes of UTF-8 JSON
/// `{"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …,
///   "__metadata__": {"<key>": "<value>"}}`, padded with spaces; then the data buffer. Offsets are
/// relative to the buffer start, values are little-endian and row-major, and the tensors tile the
/// buffer without gaps or overlaps.
///
/// Reading is strict: every inconsistency is a ``StorageError`` naming the file and the first
/// offending tensor (in data order), so a bad checkpoint is refused before anything is loaded.
public enum SafeTensors {
    /// The reference implementation's cap on the header (100 MB); larger values mean a damaged file.
    public static let maximumHeaderLength = 100_000_000

    /// The first bytes of an HDF5 file (no user block), recognised to name a wrong input.
    static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Reads and validates a whole safetensors file into memory.
    /// - Throws: `.cannotOpen` (missing/unreadable file), `.truncated`, `.badHeader`,
    ///   `.unknownDType`, `.offsetsOutOfRange`, `.sizeMismatch`.
    public static func read(_ url: URL) throws(StorageError) -> SafeTensorsFile {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let reason =
                FileManager.default.fileExists(atPath: url.path)
                ? "unreadable (\(error.localizedDescription))" : "no such file"
            throw StorageError.cannotOpen(file: url.path, reason: reason)
        }
        return try parse([UInt8](data), file: url.path)
    }

    /// Parses safetensors bytes already in memory; `file` is the name used in errors.
    /// - Throws: as ``read(_:)``.
    public static func parse(_ bytes: [UInt8], file: String) throws(StorageError) -> SafeTensorsFile
    {
        try SafeTensorsFile(bytes: bytes, file: file)
    }

    /// Writes `entries` in the given order, with `metadata` as `__metadata__`, atomically.
    ///
    /// The output is deterministic: the header lists `__metadata__` first (keys sorted), then the
    /// tensors in the caller's order with keys `dtype`, `shape`, `data_offsets`, compact JSON padded
    /// with spaces to a multiple of 8 bytes, and the data in the same order.
    /// - Precondition: names are unique, not `__metadata__`, and each entry's value count matches its shape.
    /// - Throws: `.cannotOpen` if the folder is missing, `.io` if the write fails.
    public static func write(
        _ entries: [SafeTensorsEntry], metadata: [String: String] = [:], checksum: Bool = false, to url: URL
    ) throws(StorageError) {
        try AtomicFile.write(data: Data(encode(entries, metadata: metadata, checksum: checksum)), to: url)
    }

    /// The metadata key of the data buffer's SHA-256 (lower-case hex), which ``SafeTensorsFile``
    /// checks whenever a file records it: the format has no checksum of its own, and a damaged
    /// weight would otherwise load as a number like any other.
    public static let checksumKey = "tensors_sha256"

    /// The bytes ``write(_:metadata:checksum:to:)`` would write; with `checksum`, the metadata also
    /// records the data buffer's SHA-256 under ``checksumKey``.
    public static func encode(
        _ entries: [SafeTensorsEntry], metadata given: [String: String] = [:], checksum: Bool = false
    ) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(entries.reduce(0) { $0 + $1.byteCount })
        for entry in entries {
            switch entry.values {
            case .float32(let values):
                for v in values { appendLittleEndian(v.bitPattern, to: &buffer) }
            case .float64(let values):
                for v in values { appendLittleEndian(v.bitPattern, to: &buffer) }
            case .int64(let values):
                for v in values { appendLittleEndian(UInt64(bitPattern: v), to: &buffer) }
            }
        }
        var metadata = given
        if checksum { metadata[checksumKey] = SHA256.hex(of: buffer) }
        var seen = Set<String>()
        var header = "{"
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map {
                "\(jsonString($0)):\(jsonString(metadata[$0]!))"
            }
            header += "\"__metadata__\":{\(pairs.joined(separator: ","))}"
        }
        var offset = 0
        for entry in entries {
            precondition(
                entry.name != "__metadata__", "SafeTensors.encode: reserved name __metadata__")
            precondition(
                seen.insert(entry.name).inserted, "SafeTensors.encode: duplicate name \(entry.name)"
            )
            let end = offset + entry.byteCount
            if header.count > 1 { header += "," }
            let shape = entry.shape.map(String.init).joined(separator: ",")
            header +=
                "\(jsonString(entry.name)):{\"dtype\":\"\(entry.dtype.rawValue)\","
                + "\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        appendLittleEndian(UInt64(headerBytes.count), to: &out)
        out += headerBytes
        out += buffer
        return out
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8])
    {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    /// A JSON string literal; escapes what RFC 8259 requires, leaves other UTF-8 as is.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A safetensors element type.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case float64 = "F64"
    case float32 = "F32"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int64 = "I64"
    case int32 = "I32"
    case int16 = "I16"
    case int8 = "I8"
    case uint8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// True for F64, F32, F16, BF16.
    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: return true
        default: return false
        }
    }
}

/// One tensor to write: a name, a shape and its values (F32, F64 or I64).
public struct SafeTensorsEntry: Sendable, Equatable {
    /// The values and the dtype they are written as.
    public enum Values: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
        case int64([Int64])
    }

    public var name: String
    public var shape: [Int]
    public var values: Values

    /// - Precondition: the value count equals the product of `shape`.
    public init(name: String, shape: [Int], values: Values) {
        let count: Int
        switch values {
        case .float32(let v): count = v.count
        case .float64(let v): count = v.count
        case .int64(let v): count = v.count
        }
        precondition(
            shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == count,
            "SafeTensorsEntry \(name): shape \(shape) does not hold \(count) values")
        self.name = name
        self.shape = shape
        self.values = values
    }

    /// An F32 entry from a tensor.
    public init(name: String, tensor: Tensor) {
        self.init(name: name, shape: tensor.shape, values: .float32(tensor.data))
    }

    /// An F32 entry.
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init(name: name, shape: shape, values: .float32(floats))
    }

    /// An F64 entry.
    public init(name: String, shape: [Int], doubles: [Double]) {
        self.init(name: name, shape: shape, values: .float64(doubles))
    }

    /// An I64 entry.
    public init(name: String, shape: [Int], ints: [Int]) {
        self.init(name: name, shape: shape, values: .int64(ints.map(Int64.init)))
    }

    /// The dtype this entry is written as.
    public var dtype: SafeTensorsDType {
        switch values {
        case .float32: return .float32
        case .float64: return .float64
        case .int64: return .int64
        }
    }

    var byteCount: Int { shape.reduce(1, *) * dtype.itemSize }
}

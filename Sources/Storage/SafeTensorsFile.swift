import Foundation
import Kernels

/// A validated safetensors file held in memory: its metadata, tensor names and typed accessors.
///
/// Made by ``SafeTensors/read(_:)`` or ``SafeTensors/parse(_:file:)``; construction already checked
/// the header, every dtype and every `data_offsets`, so accessors only fail when asked for a name
/// that is absent or for a kind of value the tensor does not hold.
public struct SafeTensorsFile: Sendable {
    /// The file's path as given to `read` (used in every error).
    public let file: String
    /// The `__metadata__` map (empty when the header has none).
    public let metadata: [String: String]
    /// Tensor names in data order (the order they were written in).
    public let names: [String]

    struct Record: Sendable {
        var dtype: SafeTensorsDType
        var shape: [Int]
        /// Absolute byte range in `bytes`.
        var range: Range<Int>
    }

    private let records: [String: Record]
    private let bytes: [UInt8]

    /// True if the file holds a tensor with this name.
    public func contains(_ name: String) -> Bool { records[name] != nil }

    /// The shape of a tensor.
    /// - Throws: `.missingTensor`.
    public func shape(of name: String) throws(StorageError) -> [Int] {
        try record(name).shape
    }

    /// The dtype of a tensor.
    /// - Throws: `.missingTensor`.
    public func dtype(of name: String) throws(StorageError) -> SafeTensorsDType {
        try record(name).dtype
    }

    /// A floating-point tensor (F32, F16, BF16 widened exactly; F64 rounded to nearest Float).
    /// - Throws: `.missingTensor`; `.wrongType` for integer or bool tensors.
    public func tensor(_ name: String) throws(StorageError) -> Tensor {
        let r = try record(name)
        guard r.dtype.isFloatingPoint else {
            throw StorageError.wrongType(
                file: file, name: name, expected: "a floating-point tensor", found: r.dtype.rawValue
            )
        }
        let n = r.range.count / r.dtype.itemSize
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            let base = r.range.lowerBound
            switch r.dtype {
            case .float32:
                for i in 0..<n { out[i] = Float(bitPattern: load(raw, base + 4 * i, UInt32.self)) }
            case .float16:
                for i in 0..<n { out[i] = floatFromHalf(load(raw, base + 2 * i, UInt16.self)) }
            case .bfloat16:
                for i in 0..<n {
                    out[i] = Float(bitPattern: UInt32(load(raw, base + 2 * i, UInt16.self)) << 16)
                }
            case .float64:
                for i in 0..<n {
                    out[i] = Float(Double(bitPattern: load(raw, base + 8 * i, UInt64.self)))
                }
            default:
                break
            }
        }
        return Tensor(shape: r.shape, data: out)
    }

    /// A floating-point tensor as `Double` (F64 exact; F32, F16, BF16 widened exactly).
    /// - Throws: `.missingTensor`; `.wrongType` for integer or bool tensors.
    public func doubles(_ name: String) throws(StorageError) -> (shape: [Int], values: [Double]) {
        let r = try record(name)
        if r.dtype != .float64 {
            let t = try tensor(name)
            return (t.shape, t.data.map(Double.init))
        }
        let n = r.range.count / 8
        var out = [Double](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                out[i] = Double(bitPattern: load(raw, r.range.lowerBound + 8 * i, UInt64.self))
            }
        }
        return (r.shape, out)
    }

    /// An integer or bool tensor as `Int` (I64, I32, I16, I8, U8; BOOL as 0/1).
    /// - Throws: `.missingTensor`; `.wrongType` for floating-point tensors.
    public func ints(_ name: String) throws(StorageError) -> (shape: [Int], values: [Int]) {
        let r = try record(name)
        guard !r.dtype.isFloatingPoint else {
            throw StorageError.wrongType(
                file: file, name: name, expected: "an integer tensor", found: r.dtype.rawValue)
        }
        let n = r.range.count / r.dtype.itemSize
        var out = [Int](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            let base = r.range.lowerBound
            for i in 0..<n {
                switch r.dtype {
                case .int64: out[i] = Int(Int64(bitPattern: load(raw, base + 8 * i, UInt64.self)))
                case .int32: out[i] = Int(Int32(bitPattern: load(raw, base + 4 * i, UInt32.self)))
                case .int16: out[i] = Int(Int16(bitPattern: load(raw, base + 2 * i, UInt16.self)))
                case .int8: out[i] = Int(Int8(bitPattern: raw[base + i]))
                case .uint8: out[i] = Int(raw[base + i])
                case .bool: out[i] = raw[base + i] == 0 ? 0 : 1
                default: break
                }
            }
        }
        return (r.shape, out)
    }

    /// Checks that the file holds exactly the expected tensors with the expected shapes.
    ///
    /// Walks `expected` in order and reports the first name that is missing or has another shape
    /// (or, with `floatingPoint`, is not a floating-point tensor); then the first file tensor
    /// (in data order) that is not expected. A loader calls this before reading anything, so a
    /// checkpoint is either loaded whole or not at all.
    /// - Throws: `.missingTensor`, `.shapeMismatch`, `.wrongType`, `.unexpectedTensor`.
    public func validate(
        expected: [(name: String, shape: [Int])], floatingPoint: Bool = true
    ) throws(StorageError) {
        for (name, shape) in expected {
            let r = try record(name)
            if r.shape != shape {
                throw StorageError.shapeMismatch(
                    file: file, name: name, expected: shape, found: r.shape)
            }
            if floatingPoint && !r.dtype.isFloatingPoint {
                throw StorageError.wrongType(
                    file: file, name: name, expected: "a floating-point tensor",
                    found: r.dtype.rawValue)
            }
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = names.first(where: { !expectedNames.contains($0) }) {
            throw StorageError.unexpectedTensor(file: file, name: extra)
        }
    }

    private func record(_ name: String) throws(StorageError) -> Record {
        guard let r = records[name] else {
            throw StorageError.missingTensor(file: file, name: name)
        }
        return r
    }

    // MARK: Parsing

    init(bytes: [UInt8], file: String) throws(StorageError) {
        guard bytes.count >= 8 else {
            throw StorageError.truncated(file: file, expected: 8, actual: bytes.count)
        }
        // Another of our formats given as a checkpoint (a dataset, probe or interference file, the
        // training log) is named as what it is, not as an absurd header length.
        if bytes.starts(with: SafeTensors.hdf5Signature) {
            throw StorageError.badHeader(
                file: file, reason: "not a safetensors checkpoint but an HDF5 file (a dataset, probe or interference file?)")
        }
        let headerLength64 = bytes.withUnsafeBytes { load($0, 0, UInt64.self) }
        guard headerLength64 <= UInt64(SafeTensors.maximumHeaderLength) else {
            let text = bytes.prefix(8).allSatisfy { (0x20..<0x7F).contains($0) || $0 == 0x0A || $0 == 0x09 }
            throw StorageError.badHeader(
                file: file,
                reason: "not a safetensors file\(text ? " (it starts with text)" : ""): "
                    + "header length \(headerLength64) exceeds \(SafeTensors.maximumHeaderLength) bytes"
            )
        }
        let headerLength = Int(headerLength64)
        guard 8 + headerLength <= bytes.count else {
            throw StorageError.truncated(
                file: file, expected: 8 + headerLength, actual: bytes.count)
        }
        let headerBytes = bytes[8..<(8 + headerLength)]
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw StorageError.badHeader(file: file, reason: "header does not start with '{'")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw StorageError.badHeader(file: file, reason: "malformed JSON")
        }
        guard let top = json as? [String: Any] else {
            throw StorageError.badHeader(file: file, reason: "header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        if let raw = top["__metadata__"] {
            guard let map = raw as? [String: Any] else {
                throw StorageError.badHeader(file: file, reason: "__metadata__ is not an object")
            }
            for (key, value) in map {
                guard let s = value as? String else {
                    throw StorageError.badHeader(
                        file: file, reason: "__metadata__ value for '\(key)' is not a string")
                }
                metadata[key] = s
            }
        }

        // Pass 1, by name so errors are deterministic: keys, types, dtype.
        var parsed: [(name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int)] =
            []
        for name in top.keys.sorted() where name != "__metadata__" {
            guard let info = top[name] as? [String: Any] else {
                throw StorageError.badHeader(
                    file: file, reason: "tensor '\(name)': entry is not an object")
            }
            guard let dtypeText = info["dtype"] as? String else {
                throw StorageError.badHeader(
                    file: file, reason: "tensor '\(name)': missing or non-string 'dtype'")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
                throw StorageError.unknownDType(file: file, tensor: name, dtype: dtypeText)
            }
            guard let shape = Self.naturals(info["shape"]) else {
                throw StorageError.badHeader(
                    file: file,
                    reason:
                        "tensor '\(name)': missing 'shape' or not a list of non-negative integers")
            }
            guard let offsets = Self.naturals(info["data_offsets"]), offsets.count == 2 else {
                throw StorageError.badHeader(
                    file: file,
                    reason:
                        "tensor '\(name)': missing 'data_offsets' or not two non-negative integers")
            }
            parsed.append((name, dtype, shape, offsets[0], offsets[1]))
        }

        // Pass 2, in data order: ranges, sizes, tiling.
        parsed.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        let bufferStart = 8 + headerLength
        let bufferLength = bytes.count - bufferStart
        var records: [String: Record] = [:]
        var position = 0
        for t in parsed {
            guard t.begin <= t.end else {
                throw StorageError.offsetsOutOfRange(
                    file: file, tensor: t.name, reason: "end \(t.end) is before begin \(t.begin)")
            }
            guard t.end <= bufferLength else {
                throw StorageError.offsetsOutOfRange(
                    file: file, tensor: t.name,
                    reason:
                        "[\(t.begin), \(t.end)] reaches past the \(bufferLength)-byte data buffer")
            }
            var expectedBytes = t.dtype.itemSize
            var overflow = false
            for d in t.shape where !overflow {
                (expectedBytes, overflow) = expectedBytes.multipliedReportingOverflow(by: d)
            }
            guard !overflow, expectedBytes == t.end - t.begin else {
                throw StorageError.sizeMismatch(
                    file: file, tensor: t.name, expectedBytes: overflow ? Int.max : expectedBytes,
                    actualBytes: t.end - t.begin)
            }
            guard t.begin == position else {
                let what =
                    t.begin < position
                    ? "overlaps the previous tensor" : "leaves a gap after the previous tensor"
                throw StorageError.offsetsOutOfRange(
                    file: file, tensor: t.name,
                    reason: "[\(t.begin), \(t.end)] \(what) (which ends at \(position))")
            }
            position = t.end
            records[t.name] = Record(
                dtype: t.dtype, shape: t.shape,
                range: (bufferStart + t.begin)..<(bufferStart + t.end))
        }
        guard position == bufferLength else {
            throw StorageError.badHeader(
                file: file,
                reason: "\(bufferLength - position) bytes after the last tensor belong to no tensor"
            )
        }

        if let recorded = metadata[SafeTensors.checksumKey] {
            let computed = SHA256.hex(of: bytes[bufferStart...])
            guard computed == recorded else {
                throw StorageError.checksumMismatch(file: file, recorded: recorded, computed: computed)
            }
        }
        self.file = file
        self.metadata = metadata
        self.names = parsed.map(\.name)
        self.records = records
        self.bytes = bytes
    }

    /// A JSON array of non-negative integers, or nil.
    private static func naturals(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out: [Int] = []
        for element in array {
            // JSON `true` also bridges to NSNumber (and `is Bool` holds for 0 and 1), so tell
            // booleans apart by their Objective-C type code "c".
            guard let number = element as? NSNumber, String(cString: number.objCType) != "c" else {
                return nil
            }
            let d = number.doubleValue
            guard d >= 0, d == d.rounded(), d < 9.0e15 else { return nil }
            out.append(number.intValue)
        }
        return out
    }
}

/// Little-endian load at an unaligned byte offset.
@inline(__always)
private func load<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, _ offset: Int, _: T.Type)
    -> T
{
    T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
}

/// IEEE 754 binary16 → binary32, exact (subnormals, infinities and NaN payloads included).
/// Written out rather than using `Float16`, which Swift does not offer on macOS x86_64.
func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0x1f {  // Inf / NaN
        return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }  // ±0
        // Subnormal: value = mantissa · 2^-24, exactly representable in Float.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

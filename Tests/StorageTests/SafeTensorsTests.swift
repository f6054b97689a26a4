import Foundation
import Kernels
import Testing

@testable import Storage

/// Builds safetensors bytes by hand: the u64 header length, the header text as given, the buffer.
func handBuilt(header: String, buffer: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    var out = withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) }
    out += h
    out += buffer
    return out
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

/// Asserts that `body` throws exactly `expected` and that its message names every string in `mentions`.
func expectStorageError(
    _ expected: StorageError, mentions: [String],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(StorageError) -> Void
) {
    do {
        try body()
        Issue.record("expected \(expected), nothing was thrown", sourceLocation: sourceLocation)
    } catch {
        #expect(error == expected, sourceLocation: sourceLocation)
        for word in mentions {
            #expect(
                error.description.contains(word), "'\(error)' should mention '\(word)'",
                sourceLocation: sourceLocation)
        }
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
    }
}

@Suite struct SafeTensorsTests {
    @Test func roundTripIsBitIdenticalAndKeepsOrderAndMetadata() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("rt.safetensors")
        let floats: [Float] = [
            0, -0.0, 1, -1.5, .pi, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .infinity,
            Float(bitPattern: 0x7fc0_1234),
        ]
        let doubles: [Double] = [0.1, -Double.leastNormalMagnitude / 3, .pi, 1e300]
        let ints = [Int(Int64.min), -1, 0, 1 << 40, Int(Int64.max), 7]
        let entries = [
            SafeTensorsEntry(name: "z.last.alphabetically", shape: [3, 3], floats: floats),
            SafeTensorsEntry(name: "a.doubles", shape: [4], doubles: doubles),
            SafeTensorsEntry(name: "m.ints", shape: [2, 1, 3], ints: ints),
            SafeTensorsEntry(name: "scalar", tensor: Tensor(shape: [], data: [42])),
            SafeTensorsEntry(name: "empty", shape: [0, 5], floats: []),
        ]
        // Every control character, each of which JSON allows only escaped.
        let controls = String(decoding: (1..<32).map { UInt8($0) }, as: UTF8.self)
        let metadata = ["seed": "7", "format": "pt", "note": "quote \" backslash \\ newline \n é", "controls": controls]
        try SafeTensors.write(entries, metadata: metadata, to: url)

        let file = try SafeTensors.read(url)
        #expect(file.names == entries.map(\.name))
        #expect(file.metadata == metadata)
        let t = try file.tensor("z.last.alphabetically")
        #expect(t.shape == [3, 3])
        #expect(t.data.map(\.bitPattern) == floats.map(\.bitPattern))
        let d = try file.doubles("a.doubles")
        #expect(d.shape == [4])
        #expect(d.values.map(\.bitPattern) == doubles.map(\.bitPattern))
        let i = try file.ints("m.ints")
        #expect(i.shape == [2, 1, 3])
        #expect(i.values == ints)
        #expect(try file.tensor("scalar") == Tensor(shape: [], data: [42]))
        #expect(try file.shape(of: "empty") == [0, 5])
        #expect(try file.dtype(of: "m.ints") == .int64)
        #expect(try dir.contents() == ["rt.safetensors"])
    }

    /// The format has no checksum: with `checksum`, the writer records the data buffer's SHA-256
    /// in the metadata, and the reader refuses a file whose tensor bytes no longer match it (a
    /// damaged weight loaded as a number before). Files without the key read as before.
    @Test func aRecordedChecksumCatchesADamagedWeight() throws {
        let entries = [SafeTensorsEntry(name: "w", shape: [3], floats: [1, 2, 3])]
        var bytes = SafeTensors.encode(entries, metadata: ["step": "2"], checksum: true)
        let file = try SafeTensors.parse(bytes, file: "ok.safetensors")
        #expect(file.metadata["step"] == "2")
        #expect(file.metadata[SafeTensors.checksumKey] == SHA256.hex(of: bytes.suffix(12)))
        bytes[bytes.count - 2] ^= 0x40  // one bit of the last weight
        expectStorageError(
            .checksumMismatch(
                file: "bad.safetensors", recorded: file.metadata[SafeTensors.checksumKey]!,
                computed: SHA256.hex(of: bytes.suffix(12))),
            mentions: ["bad.safetensors", "damaged", "tensors_sha256"]
        ) { () throws(StorageError) in _ = try SafeTensors.parse(bytes, file: "bad.safetensors") }
        let unchecked = SafeTensors.encode(entries, metadata: ["step": "2"])
        #expect(try SafeTensors.parse(unchecked, file: "plain").metadata == ["step": "2"])
    }

    @Test func outputIsDeterministicAndPaddedLikeTheReference() throws {
        let entries = [SafeTensorsEntry(name: "w", shape: [2], floats: [1, 2])]
        let bytes = SafeTensors.encode(entries, metadata: ["b": "2", "a": "1"])
        #expect(bytes == SafeTensors.encode(entries, metadata: ["a": "1", "b": "2"]))
        let n = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        #expect(n % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let json =
            #"{"__metadata__":{"a":"1","b":"2"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(header == json + String(repeating: " ", count: n - json.utf8.count))
        #expect(bytes.count == 8 + n + 8)
    }

    @Test func readsHalfBFloatDoubleAndIntegerTypesFromHandBuiltBytes() throws {
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, 0x8000]
        let bf16: [UInt16] = [0x3F80, 0xC000, 0x4049]
        let f64: [UInt64] = [Double(0.1).bitPattern, Double(-3.25).bitPattern]
        let i64: [Int64] = [-3, 1 << 40]
        let i32: [Int32] = [-7, 9]
        let u8: [UInt8] = [0, 255]
        let bool: [UInt8] = [1, 0, 1]
        var buffer = littleEndianBytes(f16)  // 0..<14
        buffer += littleEndianBytes(bf16)  // 14..<20
        buffer += littleEndianBytes(f64)  // 20..<36
        buffer += littleEndianBytes(i64)  // 36..<52
        buffer += littleEndianBytes(i32)  // 52..<60
        buffer += u8 + bool  // 60..<62, 62..<65
        let header = """
            {"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},
             "b":{"dtype":"BF16","shape":[3],"data_offsets":[14,20]},
             "d":{"dtype":"F64","shape":[2,1],"data_offsets":[20,36]},
             "l":{"dtype":"I64","shape":[2],"data_offsets":[36,52]},
             "i":{"dtype":"I32","shape":[2],"data_offsets":[52,60]},
             "u":{"dtype":"U8","shape":[2],"data_offsets":[60,62]},
             "q":{"dtype":"BOOL","shape":[3],"data_offsets":[62,65]}}
            """
        let file = try SafeTensors.parse(
            handBuilt(header: header, buffer: buffer), file: "hand.safetensors")
        #expect(file.names == ["h", "b", "d", "l", "i", "u", "q"])
        #expect(file.metadata.isEmpty)
        let h = try file.tensor("h").data
        #expect(h[0..<4] == [1, -2, 0.5, 65504])
        #expect(h[4] == 5.960464477539063e-08)
        #expect(h[5] == .infinity)
        #expect(h[6] == 0 && h[6].sign == .minus)
        #expect(try file.tensor("b").data == [1, -2, 3.140625])
        #expect(try file.doubles("d").values == [0.1, -3.25])
        #expect(try file.doubles("d").shape == [2, 1])
        #expect(try file.tensor("d").data == [Float(0.1), -3.25])
        #expect(try file.doubles("b").values == [1, -2, 3.140625])
        #expect(try file.ints("l").values == [-3, 1 << 40])
        #expect(try file.ints("i").values == [-7, 9])
        #expect(try file.ints("u").values == [0, 255])
        #expect(try file.ints("q").values == [1, 0, 1])
        expectStorageError(
            .wrongType(
                file: "hand.safetensors", name: "l", expected: "a floating-point tensor",
                found: "I64"),
            mentions: ["hand.safetensors", "'l'"]
        ) { () throws(StorageError) in _ = try file.tensor("l") }
        expectStorageError(
            .wrongType(
                file: "hand.safetensors", name: "h", expected: "an integer tensor", found: "F16"),
            mentions: ["hand.safetensors", "'h'"]
        ) { () throws(StorageError) in _ = try file.ints("h") }
        expectStorageError(
            .missingTensor(file: "hand.safetensors", name: "nope"), mentions: ["nope"]
        ) {
            () throws(StorageError) in _ = try file.tensor("nope")
        }
    }

    /// Swift has no `Float16` on Intel macOS: there the test is reported as skipped, not passed.
    static let hasFloat16: Bool = {
        #if os(macOS) && arch(x86_64)
            false
        #else
            true
        #endif
    }()

    @Test(.enabled(if: hasFloat16, "Swift's Float16, the reference, does not exist on Intel macOS"))
    func halfPrecisionConversionMatchesFloat16EverywhereItExists() {
        #if !(os(macOS) && arch(x86_64))
            for bits in UInt16.min...UInt16.max {
                let mine = floatFromHalf(bits)
                let reference = Float(Float16(bitPattern: bits))
                if reference.isNaN {
                    #expect(mine.isNaN)
                } else {
                    #expect(mine.bitPattern == reference.bitPattern, "0x\(String(bits, radix: 16))")
                }
            }
        #endif
    }

    @Test func readsAFileWrittenByTheReferenceImplementation() throws {
        // Written by Fixtures/make_fixtures.py with torch + safetensors (see Fixtures/README.md).
        let file = try SafeTensors.read(
            fixturesDirectory.appendingPathComponent("reference.safetensors"))
        #expect(file.metadata == ["source": "make_fixtures.py", "format": "pt"])
        #expect(try file.tensor("f32").data == [1.5, -2.25, 0, 3e-8, 1e30, -7])
        #expect(try file.tensor("f32").shape == [2, 3])
        #expect(try file.tensor("f16").data == [0.5, -1, 65504, 5.960464477539063e-08])
        #expect(try file.tensor("bf16").data == [1, -2, 3.140625])
        #expect(try file.doubles("f64").values == [0.1, -1e-300])
        #expect(try file.ints("i64").values == [-5, 1 << 40])
        #expect(try file.ints("i32").values == [-7, 9])
        #expect(try file.ints("u8").values == [0, 255])
        #expect(try file.ints("bool").values == [1, 0])
        #expect(Set(file.names) == ["f32", "f16", "bf16", "f64", "i64", "i32", "u8", "bool"])
    }
}

@Suite struct SafeTensorsBadInputTests {
    let file = "bad.safetensors"
    let goodTensor = #""w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    let eightBytes = [UInt8](repeating: 0, count: 8)

    func parse(_ bytes: [UInt8]) -> () throws(StorageError) -> Void {
        let name = file
        return { () throws(StorageError) in _ = try SafeTensors.parse(bytes, file: name) }
    }

    @Test func fileShorterThanTheLengthPrefix() {
        expectStorageError(
            .truncated(file: file, expected: 8, actual: 5), mentions: [file, "truncated"],
            parse([1, 2, 3, 4, 5]))
    }

    @Test func headerLengthBeyondTheFile() {
        var bytes = handBuilt(header: "{\(goodTensor)}", buffer: eightBytes)
        bytes.replaceSubrange(0..<8, with: littleEndianBytes([UInt64(4096)]))
        expectStorageError(
            .truncated(file: file, expected: 8 + 4096, actual: bytes.count),
            mentions: [file, "4104"], parse(bytes))
    }

    @Test func absurdHeaderLength() {
        var bytes = handBuilt(header: "{}", buffer: [])
        bytes.replaceSubrange(0..<8, with: littleEndianBytes([UInt64.max]))
        expectStorageError(
            .badHeader(file: file, reason: "not a safetensors file: header length \(UInt64.max) exceeds 100000000 bytes"),
            mentions: [file], parse(bytes))
    }

    /// The first 8 bytes as the little-endian header length a reader takes them for.
    static func firstWord(_ bytes: [UInt8]) -> UInt64 {
        bytes.prefix(8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    @Test("another format given as a checkpoint is named as such: an HDF5 file, a text file")
    func otherFormats() {
        let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 64)
        expectStorageError(
            .badHeader(file: file, reason: "not a safetensors checkpoint but an HDF5 file (a dataset, probe or interference file?)"),
            mentions: [file, "HDF5"], parse(hdf5))
        let log = Array(#"{"step":1,"task":"mlm","loss":2.5}"#.utf8) + [0x0A]
        expectStorageError(
            .badHeader(
                file: file,
                reason: "not a safetensors file (it starts with text): header length \(Self.firstWord(log)) exceeds 100000000 bytes"),
            mentions: [file, "text"], parse(log))
    }

    @Test func fileCutInsideTheData() {
        let good = SafeTensors.encode([
            SafeTensorsEntry(name: "a", shape: [2], floats: [1, 2]),
            SafeTensorsEntry(name: "b", shape: [4], floats: [1, 2, 3, 4]),
        ])
        let cut = Array(good.dropLast(4))
        expectStorageError(
            .offsetsOutOfRange(
                file: file, tensor: "b", reason: "[8, 24] reaches past the 20-byte data buffer"),
            mentions: [file, "'b'"], parse(cut))
    }

    @Test func malformedJSON() {
        expectStorageError(
            .badHeader(file: file, reason: "malformed JSON"), mentions: [file, "JSON"],
            parse(handBuilt(header: #"{"w":{"dtype":"F32","shape":[2],"#, buffer: eightBytes)))
        expectStorageError(
            .badHeader(file: file, reason: "header does not start with '{'"), mentions: [file],
            parse(handBuilt(header: "[1]     ", buffer: [])))
    }

    @Test func missingOrIllTypedKeysNameTheTensor() {
        expectStorageError(
            .badHeader(file: file, reason: "tensor 'w': missing or non-string 'dtype'"),
            mentions: [file, "'w'"],
            parse(
                handBuilt(header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, buffer: eightBytes))
        )
        // A fractional size would be truncated into another tensor than the writer meant.
        let shape = "tensor 'w': missing 'shape' or not a list of non-negative integers"
        let offsets = "tensor 'w': missing 'data_offsets' or not two non-negative integers"
        for (fields, reason) in [
            (#""shape":[-2],"data_offsets":[0,8]"#, shape), (#""shape":[2.5],"data_offsets":[0,8]"#, shape),
            (#""shape":[2],"data_offsets":[0,true]"#, offsets), (#""shape":[2],"data_offsets":[0,8.5]"#, offsets),
        ] {
            expectStorageError(
                .badHeader(file: file, reason: reason), mentions: [file, "'w'"],
                parse(handBuilt(header: #"{"w":{"dtype":"F32","# + fields + "}}", buffer: eightBytes)))
        }
        expectStorageError(
            .badHeader(file: file, reason: "__metadata__ value for 'k' is not a string"),
            mentions: [file, "'k'"],
            parse(
                handBuilt(header: #"{"__metadata__":{"k":1},\#(goodTensor)}"#, buffer: eightBytes)))
    }

    @Test func offsetsOutOfRange() {
        expectStorageError(
            .offsetsOutOfRange(
                file: file, tensor: "w", reason: "[0, 16] reaches past the 8-byte data buffer"),
            mentions: [file, "'w'"],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                    buffer: eightBytes)))
        expectStorageError(
            .offsetsOutOfRange(file: file, tensor: "w", reason: "end 0 is before begin 8"),
            mentions: [file, "'w'"],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                    buffer: eightBytes)))
        expectStorageError(
            .offsetsOutOfRange(
                file: file, tensor: "y",
                reason: "[4, 8] overlaps the previous tensor (which ends at 8)"),
            mentions: [file, "'y'"],
            parse(
                handBuilt(
                    header:
                        #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    buffer: eightBytes)))
        expectStorageError(
            .offsetsOutOfRange(
                file: file, tensor: "w",
                reason: "[4, 8] leaves a gap after the previous tensor (which ends at 0)"),
            mentions: [file, "'w'"],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    buffer: eightBytes)))
        expectStorageError(
            .badHeader(file: file, reason: "4 bytes after the last tensor belong to no tensor"),
            mentions: [file],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    buffer: eightBytes)))
    }

    @Test func sizeNotShapeTimesItemSize() {
        expectStorageError(
            .sizeMismatch(file: file, tensor: "w", expectedBytes: 12, actualBytes: 8),
            mentions: [file, "'w'"],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    buffer: eightBytes)))
        expectStorageError(
            .sizeMismatch(file: file, tensor: "w", expectedBytes: Int.max, actualBytes: 8),
            mentions: [file, "'w'"],
            parse(
                handBuilt(
                    header:
                        #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                    buffer: eightBytes)))
    }

    @Test func unknownDType() {
        expectStorageError(
            .unknownDType(file: file, tensor: "w", dtype: "F8_E4M3"),
            mentions: [file, "'w'", "F8_E4M3"],
            parse(
                handBuilt(
                    header: #"{"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}"#,
                    buffer: eightBytes)))
    }

    @Test func missingFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("absent.safetensors")
        expectStorageError(
            .cannotOpen(file: url.path, reason: "no such file"), mentions: [url.path]
        ) {
            () throws(StorageError) in _ = try SafeTensors.read(url)
        }
    }

    @Test func validateReportsMissingUnexpectedAndWrongShapeInExpectedOrder() throws {
        let bytes = SafeTensors.encode([
            SafeTensorsEntry(
                name: "a.weight", shape: [2, 3], floats: Array(repeating: 0, count: 6)),
            SafeTensorsEntry(name: "a.bias", shape: [2], floats: [0, 0]),
            SafeTensorsEntry(name: "steps", shape: [1], ints: [3]),
        ])
        let st = try SafeTensors.parse(bytes, file: "ckpt.safetensors")
        let check = {
            (expected: [(name: String, shape: [Int])], floatingPoint: Bool) -> ()
                throws(StorageError) -> Void in
            { () throws(StorageError) in
                try st.validate(expected: expected, floatingPoint: floatingPoint)
            }
        }
        let all: [(name: String, shape: [Int])] = [
            ("a.weight", [2, 3]), ("a.bias", [2]), ("steps", [1]),
        ]
        try st.validate(expected: all, floatingPoint: false)
        expectStorageError(
            .wrongType(
                file: "ckpt.safetensors", name: "steps", expected: "a floating-point tensor",
                found: "I64"), mentions: ["ckpt.safetensors", "'steps'"], check(all, true))
        expectStorageError(
            .missingTensor(file: "ckpt.safetensors", name: "b.weight"),
            mentions: ["ckpt.safetensors", "'b.weight'"],
            check([("a.weight", [2, 3]), ("b.weight", [4]), ("a.bias", [3])], false))
        expectStorageError(
            .shapeMismatch(
                file: "ckpt.safetensors", name: "a.weight", expected: [3, 2], found: [2, 3]),
            mentions: ["ckpt.safetensors", "'a.weight'", "[3, 2]", "[2, 3]"],
            check([("a.weight", [3, 2]), ("b.weight", [4])], false))
        expectStorageError(
            .unexpectedTensor(file: "ckpt.safetensors", name: "a.bias"),
            mentions: ["ckpt.safetensors", "'a.bias'"], check([("a.weight", [2, 3])], false))
    }
}

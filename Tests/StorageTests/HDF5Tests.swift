import Foundation
import Kernels
import Testing

@testable import Storage

@Suite struct HDF5Tests {
    @Test func numericDatasetsRoundTripForEveryElementType() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("numbers.h5")
        let floats: [Float] = [1.5, -0.0, .pi, .leastNonzeroMagnitude, .infinity, 3e38]
        let doubles: [Double] = [0.1, -1e-300, .pi, 1e300]
        let int64s: [Int64] = [.min, -1, 0, .max]
        let ints = [1 << 40, -7, 3]
        let int32s: [Int32] = [.min, 0, .max]
        let bytes: [UInt8] = [0, 1, 255]
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.write(floats, shape: [2, 3], to: "/a/f32")
            try file.write(doubles, shape: [2, 2], to: "a/b/f64")
            try file.write(int64s, shape: [4], to: "/i64")
            try file.write(ints, shape: [3, 1], to: "/int")
            try file.write(int32s, shape: [3], to: "/i32")
            try file.write(bytes, shape: [3], to: "/u8")
            try file.write([Double(2.5)], shape: [], to: "/scalar")
            try file.write([Float](), shape: [0, 4], to: "/empty")
            try file.write(Tensor(shape: [1, 2], data: [7, 8]), to: "/tensor")
        }
        #expect(try dir.contents() == ["numbers.h5"])

        let file = try HDF5File.open(url)
        #expect(
            try file.read("/a/f32", as: Float.self) == HDF5Array(shape: [2, 3], values: floats))
        #expect(
            try file.read("/a/b/f64", as: Double.self).values.map(\.bitPattern)
                == doubles.map(\.bitPattern))
        #expect(try file.read("/i64", as: Int64.self).values == int64s)
        #expect(try file.read("/int", as: Int.self) == HDF5Array(shape: [3, 1], values: ints))
        #expect(try file.read("/i32", as: Int32.self).values == int32s)
        #expect(try file.read("/u8", as: UInt8.self).values == bytes)
        #expect(try file.read("/u8", as: Int.self).values == [0, 1, 255])
        #expect(try file.read("/scalar", as: Double.self) == HDF5Array(shape: [], values: [2.5]))
        #expect(try file.read("/empty", as: Float.self) == HDF5Array(shape: [0, 4], values: []))
        #expect(try file.readTensor("/tensor") == Tensor(shape: [1, 2], data: [7, 8]))
        #expect(try file.readTensor("/a/b/f64").data == doubles.map(Float.init))
        #expect(try file.shape(of: "/a/f32") == [2, 3])
        expectStorageError(
            .wrongType(
                file: url.path, name: "/i64", expected: "floating-point data (float64)",
                found: "integer data"),
            mentions: [url.path, "/i64"]
        ) { () throws(StorageError) in _ = try file.read("/i64", as: Double.self) }
        try file.close()
    }

    /// A file being made asks Linux to start writing it to disk after every
    /// ``HDF5File/writebackBytes`` of data (whole datasets, rows or appended rows), so that the
    /// `fsync` at close has little left to wait for; the file still renames into place and reads
    /// back whole. A file edited in place is never asked (its writes are not atomic anyway).
    @Test func aFileBeingMadeIsWrittenBackEveryFewMegabytes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("grams.h5")
        let rows = HDF5File.writebackBytes / 8 / 1000 * 3 / 4  // rows of 1000 Doubles: ¾ of the amount
        let values = (0..<(rows * 1000)).map { Double($0) * 0.5 }
        let file = try HDF5File.create(url)
        try file.write(values, shape: [rows, 1000], to: "/gram")
        #expect(file.writebacksStarted == 0, "less than the amount written")
        try file.createDataset("/rows", of: Double.self, shape: [rows, 1000], chunkRows: 1)
        try file.writeRows(values, at: 0, to: "/rows")
        #if os(Linux)
            #expect(file.writebacksStarted == 1, "1.5 × the amount written")
        #else
            #expect(file.writebacksStarted == 0)
        #endif
        try file.close()
        #expect(try dir.contents() == ["grams.h5"])
        let edited = try HDF5File.open(url, writable: true)
        try edited.write(values, shape: [rows, 1000], to: "/more")
        try edited.write(values, shape: [rows, 1000], to: "/again")
        #expect(edited.writebacksStarted == 0, "a file edited in place")
        try edited.close()
        let reopened = try HDF5File.open(url)
        defer { try? reopened.close() }
        #expect(try reopened.read("/gram", as: Double.self).values == values)
        #expect(try reopened.read("/rows", as: Double.self).values == values)
    }

    @Test func stringDatasetsRoundTripVariableAndFixedLength() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("strings.h5")
        let words = ["[PAD]", "héllo wörld", "", "a caption with spaces ", "猫"]
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.write(strings: words, to: "/vocab")
            try file.write(strings: words, to: "/fixed", fixedLength: true)
            try file.write(strings: [], to: "/none")
        }
        let file = try HDF5File.open(url)
        #expect(try file.readStrings("/vocab") == words)
        #expect(try file.readStrings("/fixed") == words)
        #expect(try file.readStrings("/none") == [])
        // A NUL would end the string in C: refused, never written cut short.
        try HDF5File.write(to: dir.file("nul.h5")) { (file) throws(StorageError) in
            for fixed in [false, true] {
                expectStorageError(
                    .outOfRange(file: dir.file("nul.h5").path, path: "/nul", reason: "string \"a\\0b\" contains NUL"),
                    mentions: ["/nul", "NUL"]
                ) { () throws(StorageError) in try file.write(strings: ["ok", "a\0b"], to: "/nul", fixedLength: fixed) }
            }
        }
        expectStorageError(
            .wrongType(
                file: url.path, name: "/vocab", expected: "floating-point data (float32)",
                found: "string data"),
            mentions: [url.path, "/vocab"]
        ) { () throws(StorageError) in _ = try file.read("/vocab", as: Float.self) }
    }

    /// Strings live where no HDF5 checksum reaches (a fixed-length dataset's raw bytes, the global
    /// heap of variable-length ones): a damaged byte that leaves them invalid UTF-8 is refused,
    /// not read as U+FFFD inside a task name.
    @Test func aStringThatIsNotUTF8IsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("strings.h5")
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.write(strings: ["captioning"], to: "/fixed", fixedLength: true)
        }
        var bytes = [UInt8](try Data(contentsOf: url))
        let word = Array("captioning".utf8)
        let at = try #require((0...(bytes.count - word.count)).first { Array(bytes[$0..<($0 + word.count)]) == word })
        bytes[at + 3] = 0xFF
        try Data(bytes).write(to: url)
        let file = try HDF5File.open(url)
        expectStorageError(
            .hdf5(file: url.path, operation: "read strings from", path: "/fixed", detail: "damaged string (not UTF-8)"),
            mentions: [url.path, "/fixed"]
        ) { () throws(StorageError) in _ = try file.readStrings("/fixed") }
    }

    @Test func attributesRoundTripForEveryKindOnRootGroupsAndDatasets() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("attrs.h5")
        let values: [String: HDF5AttributeValue] = [
            "format": .string("task-interference/probe"),
            "unicode": .string("δ — ünïcode"),
            "empty": .string(""),
            "version": .int(1),
            "negative": .int(-1 << 40),
            "scale": .double(0.1),
            "tasks": .strings(["mlm", "caption", "image-classification"]),
            "no_tasks": .strings([]),
            "shape": .ints([3, 4, 5]),
            "no_ints": .ints([]),
            "weights": .doubles([0.5, -1e-300, .pi]),
        ]
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.createGroup("/groups/layer.0")
            try file.write(
                [Double](repeating: 0, count: 4), shape: [2, 2], to: "/groups/layer.0/interference")
            for path in ["/", "/groups/layer.0", "/groups/layer.0/interference"] {
                for (name, value) in values { try file.setAttribute(name, value, at: path) }
            }
            try file.setAttribute("version", .int(2))  // replaces
        }
        let file = try HDF5File.open(url)
        for path in ["/", "/groups/layer.0", "/groups/layer.0/interference"] {
            let written = Array(values.keys) + (path == "/" ? [HDF5MetadataTable.stringsDigestAttribute] : [])
            #expect(try file.attributeNames(at: path) == written.sorted())
            for (name, value) in values where !(path == "/" && name == "version") {
                #expect(try file.attribute(name, at: path) == value, "\(path)@\(name)")
            }
        }
        #expect(try file.intAttribute("version") == 2)
        #expect(try file.stringAttribute("format") == "task-interference/probe")
        #expect(try file.doubleAttribute("scale") == 0.1)
        #expect(try file.doubleAttribute("version") == 2)
        #expect(try file.stringsAttribute("tasks") == ["mlm", "caption", "image-classification"])
        #expect(try file.intsAttribute("shape") == [3, 4, 5])
        #expect(try file.doublesAttribute("weights") == [0.5, -1e-300, .pi])
        #expect(file.hasAttribute("tasks"))
        #expect(!file.hasAttribute("nope"))
        expectStorageError(
            .missingAttribute(file: url.path, path: "/groups/layer.0", name: "nope"),
            mentions: [url.path, "/groups/layer.0", "nope"]
        ) { () throws(StorageError) in _ = try file.attribute("nope", at: "groups/layer.0") }
        expectStorageError(
            .wrongType(
                file: url.path, name: "/@tasks", expected: "an integer", found: "a string list"),
            mentions: [url.path, "tasks"]
        ) { () throws(StorageError) in _ = try file.intAttribute("tasks") }
    }

    @Test func groupsExistKindAndChildren() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("groups.h5")
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.createGroup("/tasks/mlm")
            try file.createGroup("/tasks/mlm")  // idempotent
            try file.createGroup("tasks/caption/")
            try file.write([Float(1)], shape: [1], to: "/tasks/mlm/loss")
            try file.write(
                [Float(1)], shape: [1], to: "/parameters/encoder.layers.0.ffn.dense2.weight/gram")
        }
        let file = try HDF5File.open(url)
        #expect(file.exists("/"))
        #expect(file.exists("/tasks/mlm/loss"))
        #expect(file.exists("tasks/caption"))
        #expect(!file.exists("/tasks/retrieval"))
        #expect(!file.exists("/tasks/mlm/loss/deeper"))
        #expect(!file.exists("/missing/intermediate/path"))
        #expect(file.kind(of: "/tasks") == .group)
        #expect(file.kind(of: "/tasks/mlm/loss") == .dataset)
        #expect(file.kind(of: "/nothing") == nil)
        #expect(try file.children() == ["parameters", "tasks"])
        #expect(try file.children(of: "/tasks") == ["caption", "mlm"])
        #expect(try file.children(of: "/parameters") == ["encoder.layers.0.ffn.dense2.weight"])
        #expect(try file.children(of: "/tasks/caption") == [])
        expectStorageError(
            .missingDataset(file: url.path, path: "/tasks/retrieval"),
            mentions: [url.path, "/tasks/retrieval"]
        ) { () throws(StorageError) in _ = try file.children(of: "/tasks/retrieval") }
        expectStorageError(
            .wrongType(
                file: url.path, name: "/tasks/mlm/loss", expected: "a group", found: "a dataset"),
            mentions: [url.path]
        ) { () throws(StorageError) in _ = try file.children(of: "/tasks/mlm/loss") }
        expectStorageError(
            .wrongType(file: url.path, name: "/tasks", expected: "a dataset", found: "a group"),
            mentions: [url.path]
        ) { () throws(StorageError) in _ = try file.read("/tasks", as: Float.self) }
    }

    @Test func chunkedRowsWriteAndReadByRange() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("rows.h5")
        let rows = 7
        let width = 5
        let all = (0..<(rows * width)).map { Float($0) * 0.5 }
        let file = try HDF5File.create(url)
        try file.createDataset("/parameters/w/gradients", of: Float.self, shape: [rows, width])
        // Out of order, one row at a time and a block of two.
        try file.writeRows(
            Array(all[(3 * width)..<(5 * width)]), at: 3, to: "/parameters/w/gradients")
        for r in [6, 0, 2, 1] {
            try file.writeRows(
                Array(all[(r * width)..<((r + 1) * width)]), at: r, to: "/parameters/w/gradients")
        }
        // Readable before close; row 5 is not written yet and reads as the fill value 0.
        #expect(
            try file.readRows(4..<6, from: "/parameters/w/gradients", as: Float.self).values
                == Array(all[(4 * width)..<(5 * width)]) + [Float](repeating: 0, count: width))
        try file.close()

        let reader = try HDF5File.open(url)
        let p = "/parameters/w/gradients"
        let unwritten = try reader.readRows(5..<6, from: p, as: Float.self)
        #expect(
            unwritten == HDF5Array(shape: [1, width], values: [Float](repeating: 0, count: width)))
        for block in [0..<2, 2..<3, 3..<5, 6..<7, 0..<0] {
            let got = try reader.readRows(block, from: p, as: Float.self)
            #expect(got.shape == [block.count, width])
            #expect(
                got.values == Array(all[(block.lowerBound * width)..<(block.upperBound * width)]))
        }
        #expect(
            try reader.read(p, as: Double.self).values[0..<(5 * width)].map(Float.init)
                == Array(all[0..<(5 * width)]))
        expectStorageError(
            .outOfRange(
                file: url.path, path: p, reason: "rows 6..<8 are outside the 7 rows of shape [7, 5]"
            ),
            mentions: [url.path, p]
        ) { () throws(StorageError) in _ = try reader.readRows(6..<8, from: p, as: Float.self) }
    }

    @Test func extendibleDatasetsGrowByAppendingRowsInReadWriteMode() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("append.h5")
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.createDataset(
                "/log", of: Double.self, shape: [0, 2], chunkRows: 4, extendible: true)
            #expect(try file.appendRows([1.0, 2.0], to: "/log") == 0)
        }
        let file = try HDF5File.open(url, writable: true)
        #expect(try file.appendRows([3.0, 4.0, 5.0, 6.0], to: "/log") == 1)
        expectStorageError(
            .outOfRange(
                file: url.path, path: "/log", reason: "3 values are not whole rows of shape [3, 2]"),
            mentions: [url.path, "/log"]
        ) { () throws(StorageError) in try file.appendRows([1.0, 2.0, 3.0], to: "/log") }
        try file.close()
        let reader = try HDF5File.open(url)
        #expect(
            try reader.read("/log", as: Double.self)
                == HDF5Array(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]))
        expectStorageError(
            .hdf5(file: url.path, operation: "write (file is open read-only) at", path: "/log"),
            mentions: [url.path, "/log"]
        ) { () throws(StorageError) in try reader.appendRows([1.0, 2.0], to: "/log") }
    }

    /// A chunked dataset stores only what was written, so a file of a few kilobytes can declare a
    /// shape of terabytes; reading it must be refused before anything is allocated.
    @Test func aDeclaredShapeLargerThanMemoryIsRefusedBeforeAllocating() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("huge.h5")
        let file = try HDF5File.create(url)
        try file.createDataset("/gram", of: Double.self, shape: [1_000_000, 1_000_000], chunkRows: 1)
        try file.createDataset("/labels", of: Int.self, shape: [1 << 40], chunkRows: 1024)
        try file.createDataset("/small", of: Float.self, shape: [3, 2], chunkRows: 1)
        try file.close()
        let reader = try HDF5File.open(url)
        for (path, read) in [
            ("/gram", { () throws(StorageError) in _ = try reader.read("/gram", as: Double.self) }),
            ("/gram", { () throws(StorageError) in _ = try reader.readRows(0..<500_000, from: "/gram", as: Double.self) }),
            ("/labels", { () throws(StorageError) in _ = try reader.read("/labels", as: Int.self) }),
        ] as [(String, () throws(StorageError) -> Void)] {
            do {
                try read()
                Issue.record("\(path): a terabyte-sized read was attempted")
            } catch {
                #expect(error.description.contains(url.path) && error.description.contains(path), "\(error)")
                #expect(error.description.contains("more than this machine's memory"), "\(error)")
            }
        }
        #expect(try reader.read("/small", as: Float.self).values == [Float](repeating: 0, count: 6))
        #expect(try reader.readRows(0..<1, from: "/gram", as: Double.self).shape == [1, 1_000_000])
    }

    @Test func missingDatasetIsNamed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("m.h5")
        try HDF5File.write(to: url) { (file) throws(StorageError) in try file.createGroup("/tasks")
        }
        let file = try HDF5File.open(url)
        for path in ["/tasks/mlm/loss", "/tasks/x", "/nothing"] {
            expectStorageError(
                .missingDataset(file: url.path, path: path), mentions: [url.path, path]
            ) {
                () throws(StorageError) in _ = try file.read(path, as: Float.self)
            }
        }
        expectStorageError(.missingDataset(file: url.path, path: "/a"), mentions: [url.path]) {
            () throws(StorageError) in _ = try file.readStrings("a")
        }
        expectStorageError(.missingDataset(file: url.path, path: "/a"), mentions: [url.path]) {
            () throws(StorageError) in _ = try file.attribute("x", at: "/a")
        }
    }

    @Test func garbageTruncatedAndMissingFilesGiveClearErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let garbage = dir.file("garbage.h5")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: garbage)
        expectStorageError(
            .cannotOpen(file: garbage.path, reason: "not an HDF5 file"), mentions: [garbage.path]
        ) {
            () throws(StorageError) in _ = try HDF5File.open(garbage)
        }
        let missing = dir.file("missing.h5")
        expectStorageError(
            .cannotOpen(file: missing.path, reason: "no such file"), mentions: [missing.path]
        ) {
            () throws(StorageError) in _ = try HDF5File.open(missing)
        }

        let good = dir.file("good.h5")
        try HDF5File.write(to: good) { (file) throws(StorageError) in
            try file.write((0..<50_000).map(Double.init), shape: [50_000], to: "/big")
            try file.setAttribute("format", .string("x"))
        }
        let bytes = try Data(contentsOf: good)
        for keep in [bytes.count / 2, 4096, 100] {
            let truncated = dir.file("truncated-\(keep).h5")
            try bytes.prefix(keep).write(to: truncated)
            do {
                let file = try HDF5File.open(truncated)
                _ = try file.read("/big", as: Double.self)
                Issue.record("a file truncated to \(keep) bytes was read without error")
            } catch {
                // HDF5 compares the stored end-of-file address with the real size at open time.
                guard case .cannotOpen(let file, let reason) = error else {
                    Issue.record("expected .cannotOpen, got \(error)")
                    continue
                }
                #expect(file == truncated.path)
                #expect(reason.contains("truncated"), "\(reason)")
                #expect(error.description.hasPrefix(truncated.path + ": cannot open: "))
                #expect(!error.description.contains("\n"))
            }
        }
    }

    /// Our datasets carry HDF5's Fletcher-32 checksum: a damaged value is refused on read, not read
    /// as another number (a raw Float64 found by its bit pattern and changed in the file).
    @Test func aDamagedValueOfOurOwnFileIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("values.h5")
        let values: [Double] = [0.125, 1.0 / 3.0, 42.5, -7.25]
        try HDF5File.write(to: url) { (file) throws(StorageError) in try file.write(values, shape: [2, 2], to: "/g/m") }
        var bytes = [UInt8](try Data(contentsOf: url))
        let pattern = withUnsafeBytes(of: (1.0 / 3.0).bitPattern.littleEndian, Array.init)
        let at = try #require((0...(bytes.count - 8)).first { Array(bytes[$0..<($0 + 8)]) == pattern })
        bytes[at] ^= 0x01
        try Data(bytes).write(to: url)
        let file = try HDF5File.open(url)
        #expect(throws: StorageError.self) { try file.read("/g/m", as: Double.self) }
    }

    @Test func createIsAtomicAndDiscardLeavesNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("probe.h5")
        let file = try HDF5File.create(url)
        try file.write([Float(1)], shape: [1], to: "/x")
        #expect(!FileManager.default.fileExists(atPath: url.path))  // only the temporary exists yet
        #expect(try dir.contents().count == 1)
        file.discard()
        #expect(try dir.contents() == [])

        struct Boom: Error {}
        expectStorageError(.io(file: url.path, reason: "boom"), mentions: [url.path]) {
            () throws(StorageError) in
            try HDF5File.write(to: url) { (file) throws(StorageError) in
                try file.write([Float(1)], shape: [1], to: "/x")
                throw StorageError.io(file: url.path, reason: "boom")
            }
        }
        #expect(try dir.contents() == [])

        do { _ = try HDF5File.create(url) }  // dropped without close: nothing appears
        #expect(try dir.contents() == [])

        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.setAttribute("v", .int(1))
        }
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.setAttribute("v", .int(2))
        }
        #expect(try HDF5File.open(url).intAttribute("v") == 2)
        #expect(try dir.contents() == ["probe.h5"])
    }

    @Test func readsAFileWrittenByH5py() throws {
        // Written by Fixtures/make_fixtures.py with h5py.
        let file = try HDF5File.open(fixturesDirectory.appendingPathComponent("reference.h5"))
        #expect(try file.stringAttribute("format") == "task-interference/probe")
        #expect(try file.intAttribute("version") == 1)
        #expect(try file.doubleAttribute("scale") == 0.25)
        #expect(try file.stringsAttribute("tasks") == ["mlm", "caption"])
        #expect(try file.intsAttribute("sizes") == [3, 4])
        #expect(try file.stringAttribute("fixed") == "fixed-length")
        #expect(
            try file.read("/tasks/mlm/loss", as: Float.self)
                == HDF5Array(shape: [3], values: [1, 2.5, -3]))
        #expect(
            try file.read("/tasks/mlm/examples", as: Int.self)
                == HDF5Array(shape: [3, 2], values: [0, 1, 2, 3, 4, 5]))
        #expect(
            try file.read("/gram", as: Double.self)
                == HDF5Array(shape: [2, 2], values: [0, 0.125, 0.25, 0.375]))
        #expect(try file.read("/mask", as: UInt8.self).values == [0, 1, 255])
        #expect(try file.readStrings("/vocab") == ["[PAD]", "héllo", ""])
        #expect(try file.readStrings("/fixed_names") == ["cat", "zebra"])
        #expect(
            try file.readRows(1..<3, from: "/rows", as: Float.self)
                == HDF5Array(shape: [2, 3], values: [3, 4, 5, 6, 7, 8]))
        #expect(try file.children() == ["fixed_names", "gram", "mask", "rows", "tasks", "vocab"])
    }

    @Test func concurrentUseFromManyTasksIsSerialised() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for k in 0..<8 {
                group.addTask {
                    let url = dir.file("c\(k).h5")
                    try HDF5File.write(to: url) { (file) throws(StorageError) in
                        for i in 0..<20 {
                            try file.write([Double(i + k)], shape: [1], to: "/d/\(i)")
                        }
                    }
                    let file = try HDF5File.open(url)
                    for i in 0..<20 {
                        #expect(try file.read("/d/\(i)", as: Double.self).values == [Double(i + k)])
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

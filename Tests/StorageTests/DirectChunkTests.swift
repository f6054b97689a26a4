import CHDF5
import Foundation
import Kernels
import Testing

@testable import Storage

/// Rows written as whole chunks by `chdf5_write_rows_as_chunks`, checksummed by our own
/// Fletcher-32: libhdf5's filter verifies that checksum on every read of them, so each read below
/// (and every test that reads a file we wrote) checks it against libhdf5's.
@Suite struct DirectChunkTests {
    typealias Checksum = @convention(c) (UnsafeRawPointer?, Int) -> UInt32

    /// libhdf5's own Fletcher-32, the reference: exported by libhdf5 (since 1.8.7), though not in
    /// its public headers.
    static func libhdf5Checksum() throws -> Checksum {
        let symbol = try #require(
            dlsym(UnsafeMutableRawPointer(bitPattern: 0), "H5_checksum_fletcher32"),
            "libhdf5 does not export H5_checksum_fletcher32, the reference these tests compare with")
        return unsafeBitCast(symbol, to: Checksum.self)
    }

    /// Every length from 0 to 2,200 bytes (up to 3 of libhdf5's 360-word blocks, odd lengths with
    /// their last byte alone) at every alignment, and long buffers, on bytes that drive the sums
    /// to their largest (all 0xFF: libhdf5's uint32 sum2 wraps within a block) and on random ones.
    @Test func ourChecksumIsLibhdf5sOnEveryPath() throws {
        let reference = try Self.libhdf5Checksum()
        var rng = SeededRNG(seed: 32)
        let random = (0..<(1 << 20) + 64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let fills: [(String, [UInt8])] = [
            ("random", random),
            ("all 0xFF", [UInt8](repeating: 0xFF, count: random.count)),
            ("0x00 or 0xFF", random.map { $0 & 1 == 0 ? 0 : 0xFF }),
        ]
        // On a CPU without AVX2 `_avx2` runs the portable path, so both compare the same one.
        let paths: [(String, (UnsafeRawPointer?, Int) -> UInt32)] = [
            ("portable", chdf5_fletcher32_portable), ("AVX2", chdf5_fletcher32_avx2), ("chosen", chdf5_fletcher32),
        ]
        var wrong: [String] = []
        for (fill, bytes) in fills {
            bytes.withUnsafeBytes { buffer in
                let cases = (0...2200).flatMap { n in (0..<4).map { (offset: $0, count: n) } }
                    + [(offset: 1, count: 1 << 20), (offset: 0, count: 720_000), (offset: 3, count: 19_203)]
                for (offset, count) in cases {
                    let start = buffer.baseAddress! + offset
                    let expected = reference(start, count)
                    for (path, checksum) in paths where checksum(start, count) != expected && wrong.count < 10 {
                        wrong.append("\(path), \(fill), \(count) bytes at offset \(offset)")
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "differs from libhdf5's Fletcher-32: \(wrong)")
    }

    /// Which rows go straight to the file: whole chunks of one of our checksummed, fixed-size
    /// datasets, in its own element type; anything else is left to `H5Dwrite` (0).
    @Test func onlyWholeChunksOfOurOwnDatasetsAreWrittenDirectly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("chunks.h5")
        let rows = (0..<21 * 5).map { Double($0) + 0.25 }
        let file = try HDF5File.create(url)
        defer { file.discard() }
        try file.createDataset("/eight", of: Double.self, shape: [21, 5], chunkRows: 8)
        try file.createDataset("/grows", of: Double.self, shape: [16, 5], chunkRows: 8, extendible: true)
        try file.write([Double(1)], shape: [], to: "/scalar")

        func direct(_ path: String, rows first: Int, _ count: Int, as type: hid_t = chdf5_native_double())
            throws -> Int32
        {
            try HDF5Library.locked { () throws(StorageError) -> Int32 in  // libhdf5 is not thread-safe
                let dataset = try file.openDataset(path)
                defer { H5Dclose(dataset) }
                return rows.withUnsafeBytes {
                    chdf5_write_rows_as_chunks(dataset, type, hsize_t(first), hsize_t(count), $0.baseAddress)
                }
            }
        }
        #expect(try direct("/eight", rows: 0, 8) == 1)  // one whole chunk
        #expect(try direct("/eight", rows: 8, 13) == 1)  // a chunk, then the edge chunk's 5 rows
        #expect(try direct("/eight", rows: 0, 21) == 1)  // all
        #expect(try direct("/eight", rows: 3, 5) == 0)  // not at a chunk's start
        #expect(try direct("/eight", rows: 0, 12) == 0)  // ends inside a chunk before the end
        #expect(try direct("/eight", rows: 16, 6) == 0)  // past the end
        #expect(try direct("/eight", rows: 0, 8, as: chdf5_native_float()) == 0)  // another type
        #expect(try direct("/grows", rows: 0, 8) == 0)  // extendible: an edge chunk's padding could become data
        #expect(try direct("/scalar", rows: 0, 1) == 0)  // not chunked, no checksum

        // What was written reads back through libhdf5's filter, edge chunk included.
        #expect(try file.read("/eight", as: Double.self).values == rows)
    }

    /// `write` and `writeRows` go straight to the file where they can (counted by `directWrites`)
    /// and through `H5Dwrite` where they cannot; both read back the same, checksums verified by
    /// libhdf5.
    @Test func writesAndRowWritesReadBackThroughLibhdf5sChecksum() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("rows.h5")
        var rng = SeededRNG(seed: 5)
        let gram = (0..<300 * 300).map { _ in rng.nextDouble() - 0.5 }
        let floats = (0..<7 * 3).map { _ in Float(rng.nextGaussian()) }
        var direct: [Int] = []
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            func rows(_ r: Range<Int>, _ sign: Double = 1) throws(StorageError) {
                try file.writeRows(gram[(r.lowerBound * 300)..<(r.upperBound * 300)].map { sign * $0 }, at: r.lowerBound, to: "/rows")
                direct.append(file.directWrites)
            }
            try file.write(gram, shape: [300, 300], to: "/whole")
            direct.append(file.directWrites)
            try file.createDataset("/rows", of: Double.self, shape: [300, 300], chunkRows: 8)
            try rows(0..<16)  // direct
            try rows(16..<19)  // H5Dwrite
            try rows(19..<300)  // H5Dwrite
            try rows(24..<300)  // direct, again
            // Into a chunk written directly: libhdf5 reads it (checking our checksum), changes 2 rows.
            try rows(3..<5, -1)
            try rows(3..<5)
            try file.createDataset("/one", of: Float.self, shape: [7, 3], chunkRows: 1)
            for r in 0..<7 { try file.writeRows(Array(floats[(r * 3)..<(r * 3 + 3)]), at: r, to: "/one") }
            direct.append(file.directWrites)
        }
        #expect(direct == [1, 2, 2, 2, 3, 3, 3, 10])
        let file = try HDF5File.open(url)
        defer { file.discard() }
        #expect(try file.read("/whole", as: Double.self).values.map(\.bitPattern) == gram.map(\.bitPattern))
        #expect(try file.read("/rows", as: Double.self).values.map(\.bitPattern) == gram.map(\.bitPattern))
        #expect(try file.read("/one", as: Float.self).values.map(\.bitPattern) == floats.map(\.bitPattern))
    }
}

import Foundation
import Testing

@testable import Storage

/// `strings_sha256`: the digest of every string a file we write holds (`HDF5StringsDigest.swift`).
/// The writer's running record must give the digest a reader computes from a walk of the file, and
/// a string changed behind the file format's back must fail the check.
@Suite struct HDF5StringsDigestTests {
    /// Writes a new file with `write` in a fresh folder and hands its location to `test`.
    static func withFile(
        _ write: (HDF5File) throws(StorageError) -> Void, _ test: (URL) throws -> Void
    ) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("strings.h5")
        try HDF5File.write(to: url, write)
        try test(url)
    }

    /// The root's recorded digest, read back.
    static func recorded(_ url: URL) throws -> String {
        let file = try HDF5File.open(url)
        defer { try? file.close() }
        return try file.stringAttribute(HDF5MetadataTable.stringsDigestAttribute)
    }

    /// Rewrites byte `offset` of the first place `text` appears in the file's bytes.
    static func damage(_ url: URL, at text: String, offset: Int, _ change: (UInt8) -> UInt8) throws {
        var bytes = try [UInt8](Data(contentsOf: url))
        let needle = Array(text.utf8)
        let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        bytes[at + offset] = change(bytes[at + offset])
        try Data(bytes).write(to: url)
    }

    @Test func theWritersRecordGivesTheDigestOfAWalkOfTheFile() throws {
        try Self.withFile({ (file) throws(StorageError) in
            try file.setAttribute("kind", .string("dense"))
            try file.setAttribute("tasks", .strings(["mlm", "captioning", "ünïcode"]))
            try file.setAttribute("empty", .strings([]))
            try file.setAttribute("replaced", .string("first"))
            try file.setAttribute("replaced", .string("second"))
            try file.setAttribute("becomes a number", .string("text"))
            try file.setAttribute("becomes a number", .int(3))
            try file.write(strings: ["a", "b"], to: "/vocab")
            try file.write(strings: ["fixed", "width"], to: "/names", fixedLength: true)
            try file.write([1.0, 2.0] as [Double], shape: [2], to: "/groups/layer.0/gram")
            try file.setAttribute("role", .string("ffn.dense2"), at: "/groups/layer.0/gram")
            // Replacing a dataset drops the attributes it had; removing a group, everything under it.
            try file.write([3.0] as [Double], shape: [1], to: "/groups/layer.0/gram")
            try file.setAttribute("label", .string("gone"), at: "/groups/layer.0")
            try file.write(strings: ["gone too"], to: "/groups/layer.0/names")
            try file.write([4.0] as [Double], shape: [1], to: "/groups")
            try file.setAttribute("unit", .string("nats"), at: "/groups")
        }) { url in
            let table = try HDF5MetadataTableTests.table(of: url)
            #expect(table.objects["/groups"]?.attributes == ["unit": .string("nats")])
            #expect(table.strings == ["/vocab": ["a", "b"], "/names": ["fixed", "width"]])
            #expect(try Self.recorded(url) == table.stringsDigest())
            try table.checkStringsDigest(file: url.path)
        }
    }

    /// Replacing `/a` forgets what was at and under `/a` only, not the strings of a sibling whose
    /// name starts the same (`/ab`): the recorded digest still matches the file.
    @Test func replacingAnObjectKeepsTheRecordOfASiblingNamedLikeIt() throws {
        try Self.withFile({ (file) throws(StorageError) in
            try file.write(strings: ["one"], to: "/a")
            try file.write(strings: ["two"], to: "/ab")
            try file.setAttribute("unit", .string("nats"), at: "/ab")
            try file.write(strings: ["three"], to: "/a")
        }) { url in
            let table = try HDF5MetadataTableTests.table(of: url)
            #expect(table.strings == ["/a": ["three"], "/ab": ["two"]])
            #expect(try Self.recorded(url) == table.stringsDigest())
        }
    }

    /// One letter of a task name changed in the bytes of the file (where the global heap keeps it),
    /// as a damaged disk block would: still valid UTF-8, so only the digest sees it.
    @Test func aStringChangedInTheGlobalHeapFailsTheCheck() throws {
        try Self.withFile({ (file) throws(StorageError) in
            try file.setAttribute("tasks", .strings(["image_classification", "captioning-xq"]))
            try file.write([1.0] as [Double], shape: [1], to: "/values")
        }) { url in
            try HDF5MetadataTableTests.table(of: url).checkStringsDigest(file: url.path)
            try Self.damage(url, at: "captioning-xq", offset: 12) { _ in UInt8(ascii: "z") }
            let table = try HDF5MetadataTableTests.table(of: url)
            #expect(table.objects["/"]?.attributes["tasks"] == .strings(["image_classification", "captioning-xz"]))
            let error = #expect(throws: StorageError.self) { try table.checkStringsDigest(file: url.path) }
            guard case .stringsDigestMismatch(url.path, let reason)? = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(reason.hasPrefix("damaged file: its strings"))
            #expect(reason.contains(HDF5MetadataTable.stringsDigestAttribute))
        }
    }

    /// A string that could not be read is missing from the walk, so it fails the check too.
    @Test func aStringTheWalkCouldNotReadFailsTheCheck() throws {
        try Self.withFile({ (file) throws(StorageError) in try file.write(strings: ["a"], to: "/vocab") }) { url in
            var table = try HDF5MetadataTableTests.table(of: url)
            try table.checkStringsDigest(file: url.path)
            table.strings["/vocab"] = nil
            #expect(throws: StorageError.self) { try table.checkStringsDigest(file: url.path) }
        }
    }

    /// Our own edits in place keep a recorded digest valid; files that record none (h5py's, ours
    /// from before the digest) are read without the check.
    @Test func editsInPlaceKeepTheDigestAndFilesWithoutOneAreNotChecked() throws {
        try Self.withFile({ (file) throws(StorageError) in try file.setAttribute("kind", .string("dense")) }) { url in
            let before = try Self.recorded(url)
            let file = try HDF5File.open(url, writable: true)
            try file.setAttribute("kind", .string("moe-attribute"))
            try file.write(strings: ["mlm"], to: "/tasks")
            try file.close()
            let table = try HDF5MetadataTableTests.table(of: url)
            #expect(try Self.recorded(url) != before)
            try table.checkStringsDigest(file: url.path)

            var unrecorded = table
            unrecorded.objects["/"]?.attributes[HDF5MetadataTable.stringsDigestAttribute] = nil
            unrecorded.objects["/"]?.attributes["kind"] = .string("anything")
            try unrecorded.checkStringsDigest(file: url.path)
        }
    }

    /// The digest sits in the root's object header, which the file format checksums (it is stored
    /// fixed-length, not in the global heap): a damaged digest is refused by libhdf5 itself.
    @Test func aDamagedDigestIsRefusedByTheFileFormatsOwnChecksum() throws {
        try Self.withFile({ (file) throws(StorageError) in try file.setAttribute("kind", .string("dense")) }) { url in
            let digest = try Self.recorded(url)
            #expect(digest.count == 64 && digest.allSatisfy(\.isHexDigit))
            try Self.damage(url, at: digest, offset: 0) { $0 == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0") }
            #expect(throws: StorageError.self) { _ = try Self.recorded(url) }
        }
    }
}

import Foundation
import Testing

@testable import Storage

/// The metadata table the command line reads in a child process (`HDF5MetadataTable`): what the
/// walk collects, and that a registered table answers attribute, listing and string reads instead
/// of libhdf5.
@Suite struct HDF5MetadataTableTests {
    /// A file with attributes and strings at every level, beside a numeric dataset.
    static func makeFile(_ url: URL) throws {
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.setAttribute("format", .string("task-interference/probe"))
            try file.setAttribute("tasks", .strings(["mlm", "captioning"]))
            try file.setAttribute("version", .int(1))
            try file.setAttribute("scale", .doubles([0.5, .infinity, .nan]))
            try file.write(strings: ["a", "b", "c"], to: "/vocab")
            try file.write(strings: ["fixed", "width"], to: "/deep/er/names", fixedLength: true)
            try file.setAttribute("role", .string("ffn.dense2"), at: "/deep/er")
            try file.write([1.0, 2.0] as [Double], shape: [2], to: "/deep/values")
            try file.setAttribute("unit", .string("nats"), at: "/deep/values")
        }
    }

    /// The table of `url`, through JSON as the child hands it over.
    static func table(of url: URL) throws -> HDF5MetadataTable {
        let file = try HDF5File.open(url)
        defer { try? file.close() }
        let json = try HDF5MetadataTable.encoder().encode(file.metadataTable())
        return try HDF5MetadataTable.decoder().decode(HDF5MetadataTable.self, from: json)
    }

    @Test func theWalkCollectsEveryAttributeMemberListAndStringDataset() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("metadata.h5")
        try Self.makeFile(url)
        let table = try Self.table(of: url)
        #expect(Set(table.objects.keys) == ["/", "/vocab", "/deep", "/deep/er", "/deep/er/names", "/deep/values"])
        let root = try #require(table.objects["/"])
        #expect(root.isGroup && root.attributesListed && root.members == ["deep", "vocab"])
        #expect(root.attributes["format"] == .string("task-interference/probe"))
        #expect(root.attributes["tasks"] == .strings(["mlm", "captioning"]))
        #expect(root.attributes["version"] == .int(1))
        guard case .doubles(let scale)? = root.attributes["scale"] else { Issue.record("scale: \(String(describing: root.attributes["scale"]))"); return }
        #expect(scale[0] == 0.5 && scale[1] == .infinity && scale[2].isNaN)  // through JSON
        #expect(table.objects["/deep/values"]?.attributes == ["unit": .string("nats")])
        #expect(table.objects["/deep/values"]?.isGroup == false)
        #expect(table.strings == ["/vocab": ["a", "b", "c"], "/deep/er/names": ["fixed", "width"]])
    }

    /// Registered, a table is what a read-only file answers for attributes, listings and strings:
    /// the file's own metadata is not read through libhdf5. Numeric data still comes from the file.
    /// A writable file, or a file changed since, reads its own; what the table lacks is refused.
    @Test func aRegisteredTableAnswersMetadataReadsOfTheUnchangedFileOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("metadata.h5")
        try Self.makeFile(url)
        var table = try Self.table(of: url)
        table.objects["/"]?.attributes["format"] = .string("from the table")
        table.objects["/"]?.attributes["version"] = .int(7)
        table.strings["/vocab"] = ["x", "y", "z"]
        table.objects["/deep"]?.members = ["er"]
        // Strings that differ from the file's fail the digest it records, and nothing is registered…
        #expect(throws: StorageError.self) { try HDF5MetadataTable.register(table, for: url) }
        #expect(try HDF5File.open(url).stringAttribute("format") == "task-interference/probe")
        // …so this doctored table goes without it, as the table of a file that records none.
        table.objects["/"]?.attributes[HDF5MetadataTable.stringsDigestAttribute] = nil
        try HDF5MetadataTable.register(table, for: url)

        let file = try HDF5File.open(url)
        #expect(try file.stringAttribute("format") == "from the table")
        #expect(try file.intAttribute("version") == 7)
        #expect(try file.readStrings("/vocab") == ["x", "y", "z"])
        #expect(try file.children(of: "/deep") == ["er"])
        #expect(try file.read("/deep/values", as: Double.self).values == [1, 2])  // numbers from the file
        #expect(file.hasAttribute("unit", at: "/deep/values") && !file.hasAttribute("unit"))
        #expect(throws: StorageError.missingAttribute(file: url.path, path: "/", name: "absent")) {
            try file.attribute("absent")
        }
        #expect(throws: StorageError.missingDataset(file: url.path, path: "/nothing")) { try file.children(of: "/nothing") }
        try file.close()

        let writable = try HDF5File.open(url, writable: true)
        #expect(try writable.stringAttribute("format") == "task-interference/probe")
        try writable.close()

        // What the child could not read is refused here, never read from the file.
        table.objects["/"]?.attributes["tasks"] = nil
        table.objects["/"]?.unreadable["tasks"] = "HDF5 could not read it"
        table.strings["/vocab"] = nil
        table.objects["/deep/er"] = nil
        try HDF5MetadataTable.register(table, for: url)
        let damaged = try HDF5File.open(url)
        #expect(damaged.hasAttribute("tasks"))
        #expect(throws: StorageError.self) { try damaged.stringsAttribute("tasks") }
        #expect(throws: StorageError.self) { try damaged.readStrings("/vocab") }
        #expect(throws: StorageError.self) { try damaged.attributeNames(at: "/deep/er") }
        #expect(damaged.exists("/deep/er") && !damaged.exists("/deep/nothing"))
        try damaged.close()

        // Rewritten, the file is another file: the table no longer answers for it.
        try Self.makeFile(url)
        #expect(try HDF5File.open(url).stringAttribute("format") == "task-interference/probe")
    }

    /// The walk stops at `maxDepth`. With a registered table, a path under a dataset is missing (a
    /// dataset has no members), and an attribute of an object whose attributes the child could not
    /// list is unreadable, not missing.
    @Test func theWalkStopsAtItsDepthAndATableTellsMissingFromUnreadable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("metadata.h5")
        try Self.makeFile(url)
        let direct = try HDF5File.open(url)
        #expect(Set(direct.metadataTable(maxDepth: 1).objects.keys) == ["/", "/vocab", "/deep"])
        try direct.close()

        var table = try Self.table(of: url)
        table.objects["/deep/er"]?.attributes = [:]
        table.objects["/deep/er"]?.attributesListed = false
        table.objects["/"]?.attributes[HDF5MetadataTable.stringsDigestAttribute] = nil
        try HDF5MetadataTable.register(table, for: url)
        let file = try HDF5File.open(url)
        defer { try? file.close() }
        #expect(throws: StorageError.missingDataset(file: url.path, path: "/vocab/x")) {
            try file.attributeNames(at: "/vocab/x")
        }
        let error = #expect(throws: StorageError.self) { try file.attribute("role", at: "/deep/er") }
        #expect(error?.description.contains("unreadable") == true, "\(String(describing: error))")
    }
}

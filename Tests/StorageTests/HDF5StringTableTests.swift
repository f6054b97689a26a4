import Foundation
import Testing

@testable import Storage

/// The string table the command line reads in a child process (`HDF5StringTable`): what the walk
/// collects, and that a registered table answers string reads instead of libhdf5.
@Suite struct HDF5StringTableTests {
    /// A file with strings at every level, beside numbers the walk must leave out.
    static func makeFile(_ url: URL) throws {
        try HDF5File.write(to: url) { (file) throws(StorageError) in
            try file.setAttribute("format", .string("task-interference/probe"))
            try file.setAttribute("tasks", .strings(["mlm", "captioning"]))
            try file.setAttribute("version", .int(1))
            try file.write(strings: ["a", "b", "c"], to: "/vocab")
            try file.write(strings: ["fixed", "width"], to: "/deep/er/names", fixedLength: true)
            try file.setAttribute("role", .string("ffn.dense2"), at: "/deep/er")
            try file.write([1.0, 2.0] as [Double], shape: [2], to: "/deep/values")
            try file.setAttribute("unit", .string("nats"), at: "/deep/values")
        }
    }

    @Test func theWalkCollectsEveryStringAttributeAndStringDatasetAndNothingElse() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("strings.h5")
        try Self.makeFile(url)
        let table = try HDF5File.open(url).stringTable()
        #expect(
            table.attributes == [
                "/": ["format": ["task-interference/probe"], "tasks": ["mlm", "captioning"]],
                "/deep/er": ["role": ["ffn.dense2"]],
                "/deep/values": ["unit": ["nats"]],
            ])
        #expect(table.datasets == ["/vocab": ["a", "b", "c"], "/deep/er/names": ["fixed", "width"]])
        // What the child prints and the parent decodes.
        let decoded = try JSONDecoder().decode(HDF5StringTable.self, from: JSONEncoder().encode(table))
        #expect(decoded == table)
    }

    /// Registered, a table is what a read-only file answers for its strings: the file's own
    /// strings are not read through libhdf5. A writable file, or a file changed since, reads its
    /// own; a table whose counts disagree with the file is refused.
    @Test func aRegisteredTableAnswersStringReadsOfTheUnchangedFileOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("strings.h5")
        try Self.makeFile(url)
        let original = try HDF5File.open(url)
        var table = original.stringTable()
        try original.close()
        table.attributes["/"]?["format"] = ["from the table"]
        table.datasets["/vocab"] = ["x", "y", "z"]
        HDF5StringTable.register(table, for: url)

        let file = try HDF5File.open(url)
        #expect(try file.stringAttribute("format") == "from the table")
        #expect(try file.stringsAttribute("tasks") == ["mlm", "captioning"])
        #expect(try file.readStrings("/vocab") == ["x", "y", "z"])
        #expect(try file.intAttribute("version") == 1)  // numbers are read from the file
        try file.close()

        let writable = try HDF5File.open(url, writable: true)
        #expect(try writable.stringAttribute("format") == "task-interference/probe")
        try writable.close()

        table.attributes["/"]?["tasks"] = ["mlm"]
        table.datasets["/vocab"] = nil  // its read failed in the child: refused here, not read
        HDF5StringTable.register(table, for: url)
        let damaged = try HDF5File.open(url)
        #expect(throws: StorageError.self) { try damaged.stringsAttribute("tasks") }
        #expect(throws: StorageError.self) { try damaged.readStrings("/vocab") }
        #expect(try damaged.readStrings("/deep/er/names") == ["fixed", "width"])
        try damaged.close()

        // Rewritten, the file is another file: the table no longer answers for it.
        try Self.makeFile(url)
        #expect(try HDF5File.open(url).stringAttribute("format") == "task-interference/probe")
    }
}

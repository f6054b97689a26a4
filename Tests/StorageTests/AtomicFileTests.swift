import Foundation
import Testing

@testable import Storage

@Suite struct AtomicFileTests {
    @Test("a temporary file whose process is gone is reported, with its size; ours, a live one's and others' are not")
    func abandonedTemporariesAreFound() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("probe.h5")
        // A process that has exited: its pid names no process for the moment of this test.
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let gone = finished.processIdentifier
        let hex = "0123456789abcdef"
        let abandoned = dir.file(".probe.h5.tmp-\(gone)-\(hex)")
        try Data(count: 48).write(to: abandoned)
        for name in [
            ".probe.h5.tmp-\(getpid())-\(hex)",  // this process's own, still being written
            ".probe.h5.tmp-1-\(hex)",  // init's: alive
            ".probe.h5.tmp-\(gone)-short",  // not our pattern
            ".other.h5.tmp-\(gone)-\(hex)",  // another output's
        ] {
            try Data(count: 1).write(to: dir.file(name))
        }
        let found = AtomicFile.abandonedTemporaries(of: url)
        #expect(found.map(\.path) == [abandoned.path] && found.first?.bytes == 48, "\(found)")
        // For a whole folder (a training run's): every output's, here also `other.h5`'s.
        #expect(
            AtomicFile.abandonedTemporaries(in: dir.url).map(\.path)
                == [dir.file(".other.h5.tmp-\(gone)-\(hex)").path, abandoned.path])
    }

    @Test func writesDataAndLeavesNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("report.md")
        try AtomicFile.write(data: Data("first".utf8), to: url)
        try AtomicFile.write(data: Data("second".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "second")
        #expect(try dir.contents() == ["report.md"])
    }

    @Test func aThrowingBodyLeavesTheFinalNameUntouchedAndNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let fresh = dir.file("fresh.bin")
        var seenTemporary: URL?
        expectStorageError(.io(file: fresh.path, reason: "disk full"), mentions: [fresh.path]) {
            () throws(StorageError) in
            try AtomicFile.write(to: fresh) { (temporary) throws(StorageError) in
                seenTemporary = temporary
                _ = FileManager.default.createFile(
                    atPath: temporary.path, contents: Data("half".utf8))
                throw StorageError.io(file: fresh.path, reason: "disk full")
            }
        }
        #expect(try dir.contents() == [])

        // An existing file keeps its old content.
        let existing = dir.file("existing.bin")
        try AtomicFile.write(data: Data("old".utf8), to: existing)
        expectStorageError(.io(file: existing.path, reason: "boom"), mentions: [existing.path]) {
            () throws(StorageError) in
            try AtomicFile.write(to: existing) { (temporary) throws(StorageError) in
                _ = FileManager.default.createFile(
                    atPath: temporary.path, contents: Data("new".utf8))
                throw StorageError.io(file: existing.path, reason: "boom")
            }
        }
        #expect(try String(contentsOf: existing, encoding: .utf8) == "old")
        #expect(try dir.contents() == ["existing.bin"])

        // The temporary name is hidden, in the same folder, and names the file and the process.
        let temporary = try #require(seenTemporary)
        #expect(temporary.deletingLastPathComponent().path == dir.url.path)
        #expect(
            temporary.lastPathComponent.hasPrefix(
                ".fresh.bin.tmp-\(ProcessInfo.processInfo.processIdentifier)-"))
    }

    @Test func aBodyThatWritesNothingIsAnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("nothing.bin")
        expectStorageError(
            .io(file: url.path, reason: "the writer produced no file"), mentions: [url.path]
        ) {
            () throws(StorageError) in try AtomicFile.write(to: url) { (_) throws(StorageError) in }
        }
        #expect(try dir.contents() == [])
    }

    @Test func aMissingFolderIsCannotOpen() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("no/such/folder/out.safetensors")
        let folder = url.deletingLastPathComponent().path
        expectStorageError(
            .cannotOpen(file: url.path, reason: "folder \(folder) does not exist"),
            mentions: [url.path]
        ) { () throws(StorageError) in try AtomicFile.write(data: Data([1]), to: url) }
        expectStorageError(
            .cannotOpen(file: url.path, reason: "folder \(folder) does not exist"),
            mentions: [url.path]
        ) { () throws(StorageError) in try SafeTensors.write([], to: url) }
    }

    @Test func pendingCommitAndDiscard() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("later.txt")
        let kept = try AtomicFile.begin(url)
        try Data("kept".utf8).write(to: kept.temporaryURL)
        #expect(!FileManager.default.fileExists(atPath: url.path))
        try kept.commit()
        #expect(try String(contentsOf: url, encoding: .utf8) == "kept")

        let dropped = try AtomicFile.begin(url)
        try Data("dropped".utf8).write(to: dropped.temporaryURL)
        dropped.discard()
        #expect(try String(contentsOf: url, encoding: .utf8) == "kept")
        #expect(try dir.contents() == ["later.txt"])

        let never = try AtomicFile.begin(url)  // committing a temporary that was never written
        #expect(throws: StorageError.self) { try never.commit() }
        #expect(try dir.contents() == ["later.txt"])
    }

    /// What a termination handler relies on: begun files are tracked until committed or
    /// discarded, and `removePendingFiles` deletes exactly those, never a final name. (Other tests
    /// of this process may have files pending at the same time, so only this test's are touched.)
    @Test func pendingTemporaryFilesAreTrackedAndRemovedOnRequest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let committed = try AtomicFile.begin(dir.file("done.txt"))
        try Data("done".utf8).write(to: committed.temporaryURL)
        let discarded = try AtomicFile.begin(dir.file("dropped.txt"))
        try Data("dropped".utf8).write(to: discarded.temporaryURL)
        let open = try AtomicFile.begin(dir.file("open.h5"))
        try Data("half written".utf8).write(to: open.temporaryURL)
        #expect(AtomicFile.pendingFiles.isSuperset(of: [committed, discarded, open].map(\.temporaryURL.path)))
        try committed.commit()
        discarded.discard()
        #expect(AtomicFile.pendingFiles.isDisjoint(with: [committed, discarded].map(\.temporaryURL.path)))
        #expect(AtomicFile.pendingFiles.contains(open.temporaryURL.path))
        AtomicFile.removePendingFiles(in: dir.file("elsewhere"))
        #expect(AtomicFile.pendingFiles.contains(open.temporaryURL.path))
        // Only this folder's: tests running beside this one have their own files pending.
        AtomicFile.removePendingFiles(in: dir.url)
        #expect(!AtomicFile.pendingFiles.contains(open.temporaryURL.path))
        #expect(try dir.contents() == ["done.txt"])
        // An HDF5 file being written is one of them.
        let file = try HDF5File.create(dir.file("probe.h5"))
        #expect(AtomicFile.pendingFiles.contains { $0.hasPrefix(dir.file(".probe.h5.tmp-").path) })
        file.discard()
        #expect(try dir.contents() == ["done.txt"])
    }

    @Test func temporaryNamesDiffer() {
        let url = URL(fileURLWithPath: "/tmp/x.h5")
        #expect(AtomicFile.temporaryURL(for: url) != AtomicFile.temporaryURL(for: url))
    }
}

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a file so that it appears under its final name complete or not at all.
///
/// The bytes go to a temporary file in the same folder (`.<name>.tmp-<pid>-<random>`, hidden and
/// on the same file system, so the final `rename(2)` is atomic); it is `fsync`ed, renamed over the
/// final name, and the folder is `fsync`ed so the rename itself survives a crash. If anything fails
/// or the caller's body throws, the temporary file is removed and the final name is untouched
/// (architecture.md, "Files").
///
/// Two ways to use it:
/// - `AtomicFile.write(to:_:)` / `AtomicFile.write(data:to:)` for a write that happens in one call;
/// - `AtomicFile.begin(_:)` → ``Pending`` for a file written over time (``HDF5File/create(_:)``
///   uses this, and so can any writer whose errors are not `StorageError`).
public enum AtomicFile {
    /// A temporary file waiting to be renamed into place. Call ``commit()`` or ``discard()`` once.
    public struct Pending: Sendable {
        /// Where the file will appear once committed.
        public let finalURL: URL
        /// Where to write now.
        public let temporaryURL: URL

        /// `fsync`s the temporary file, renames it onto ``finalURL`` and `fsync`s the folder.
        /// On failure the temporary file is removed.
        /// - Throws: `StorageError.io` naming the final file.
        public func commit() throws(StorageError) {
            do throws(StorageError) {
                try AtomicFile.fsyncPath(temporaryURL, reportAs: finalURL)
                if rename(temporaryURL.path, finalURL.path) != 0 {
                    throw StorageError.io(
                        file: finalURL.path,
                        reason: "cannot rename temporary file into place: \(AtomicFile.errnoText())"
                    )
                }
            } catch {
                discard()
                throw error
            }
            AtomicFile.pending.withLock { _ = $0.remove(temporaryURL.path) }
            // The data is safe; a folder fsync failure (some file systems refuse it) is not fatal.
            try? AtomicFile.fsyncPath(finalURL.deletingLastPathComponent(), reportAs: finalURL)
        }

        /// Removes the temporary file if it exists; the final name is left as it was.
        public func discard() {
            _ = unlink(temporaryURL.path)
            AtomicFile.pending.withLock { _ = $0.remove(temporaryURL.path) }
        }
    }

    /// Temporary files begun and not yet committed or discarded, so that a process stopped by a
    /// signal can remove them instead of leaving hidden hundred-megabyte files behind.
    private static let pending = Mutex<Set<String>>([])

    /// Removes every temporary file still pending in this process, or only those in `folder` (the
    /// final names are left as they were). For a termination handler: call it, then exit; writers
    /// still running would write into unlinked files.
    public static func removePendingFiles(in folder: URL? = nil) {
        let prefix = folder.map { $0.standardizedFileURL.path + "/" }
        let paths = pending.withLock { paths in
            let chosen = paths.filter { path in prefix.map { path.hasPrefix($0) } ?? true }
            paths.subtract(chosen)
            return chosen
        }
        for path in paths { _ = unlink(path) }
    }

    /// The temporary files pending now (tests).
    public static var pendingFiles: Set<String> { pending.withLock { $0 } }

    /// Temporary files of `url` that a process no longer running here left behind (SIGKILL, the
    /// out-of-memory killer, a crash: nothing could remove them), with their sizes in bytes. Only
    /// reported, never removed: on a shared file system the process may be running elsewhere.
    public static func abandonedTemporaries(of url: URL) -> [(path: String, bytes: Int)] {
        abandonedTemporaries(in: url.deletingLastPathComponent(), named: url.lastPathComponent)
    }

    /// `abandonedTemporaries(of:)` for every output in `folder` (`name` nil), or for one.
    public static func abandonedTemporaries(in folder: URL, named name: String? = nil) -> [(path: String, bytes: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().compactMap { entry in
            // `.<name>.tmp-<pid>-<16 hex digits>`, as `temporaryURL(for:)` makes them.
            guard entry.hasPrefix("."), let marker = entry.range(of: ".tmp-", options: .backwards) else { return nil }
            guard name.map({ entry[entry.index(after: entry.startIndex)..<marker.lowerBound] == $0 }) ?? true else { return nil }
            let rest = entry[marker.upperBound...].split(separator: "-")
            guard rest.count == 2, rest[1].count == 16, let pid = Int32(rest[0]), pid > 0, pid != getpid() else { return nil }
            guard kill(pid, 0) == -1, errno == ESRCH else { return nil }
            let path = folder.appendingPathComponent(entry).path
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            return (path, Int(info.st_size))
        }
    }

    /// A fresh temporary name beside `url`: `.<name>.tmp-<pid>-<16 hex digits>`.
    public static func temporaryURL(for url: URL) -> URL {
        let random = String(UInt64.random(in: .min ... .max), radix: 16)
        let padded = String(repeating: "0", count: 16 - random.count) + random
        let name = ".\(url.lastPathComponent).tmp-\(getpid())-\(padded)"
        return url.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Starts an atomic write of `url`: picks the temporary name; the caller creates and writes it.
    /// - Throws: `StorageError.cannotOpen` if the folder does not exist.
    public static func begin(_ url: URL) throws(StorageError) -> Pending {
        let folder = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory),
            isDirectory.boolValue
        else {
            throw StorageError.cannotOpen(
                file: url.path, reason: "folder \(folder.path) does not exist")
        }
        let pending = Pending(finalURL: url, temporaryURL: temporaryURL(for: url))
        Self.pending.withLock { _ = $0.insert(pending.temporaryURL.path) }
        return pending
    }

    /// Runs `body` on a temporary path beside `url`, then renames the result into place.
    ///
    /// `body` must create the file at the path it is given. If it throws, or does not create the
    /// file, nothing appears under `url` and no temporary file is left behind.
    /// - Throws: whatever `body` throws; `StorageError.io` if the body wrote nothing or the rename fails.
    public static func write(
        to url: URL, _ body: (URL) throws(StorageError) -> Void
    ) throws(StorageError) {
        let pending = try begin(url)
        do throws(StorageError) {
            try body(pending.temporaryURL)
        } catch {
            pending.discard()
            throw error
        }
        guard FileManager.default.fileExists(atPath: pending.temporaryURL.path) else {
            throw StorageError.io(file: url.path, reason: "the writer produced no file")
        }
        try pending.commit()
    }

    /// Writes `data` to `url` atomically.
    /// - Throws: `StorageError.io` if the write, `fsync` or rename fails.
    public static func write(data: Data, to url: URL) throws(StorageError) {
        try write(to: url) { (temporary: URL) throws(StorageError) in
            do {
                try data.write(to: temporary)
            } catch {
                throw StorageError.io(
                    file: url.path, reason: "cannot write: \(error.localizedDescription)")
            }
        }
    }

    static func fsyncPath(_ url: URL, reportAs finalURL: URL) throws(StorageError) {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw StorageError.io(
                file: finalURL.path, reason: "cannot open \(url.path) to fsync: \(errnoText())")
        }
        defer { close(fd) }
        if fsync(fd) != 0 {
            throw StorageError.io(file: finalURL.path, reason: "fsync failed: \(errnoText())")
        }
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

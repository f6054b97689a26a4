import Foundation
import Storage

/// Everything one run of a command writes, all or nothing (architecture.md, "Files": outputs
/// appear only when complete).
///
/// Files are staged under temporary names beside their final names and renamed into place
/// together by `commit()`. On failure `discard()` removes the temporaries and every folder this
/// run created, never anything that existed before. Each final name is checked against the run's
/// inputs before anything is written to it, so no output can replace an input, even one whose name
/// is only known late (a heatmap named after a group).
final class StagedOutputs {
    private let inputs: [InputFile]
    private var pending: [AtomicFile.Pending] = []
    private var createdFolders: [URL] = []

    init(protecting inputs: [InputFile]) {
        self.inputs = inputs
    }

    /// Runs `body`, then commits what it staged; any error discards it all and is rethrown.
    @discardableResult
    static func run<T>(protecting inputs: [InputFile], _ body: (StagedOutputs) throws -> T) throws -> T {
        let outputs = StagedOutputs(protecting: inputs)
        do {
            let result = try body(outputs)
            try outputs.commit()
            return result
        } catch {
            outputs.discard()
            throw error
        }
    }

    /// Creates `folder` and its missing parents, remembering the topmost one it made.
    func makeFolder(_ folder: URL) throws(InputError) {
        var missing: [URL] = []
        var current = folder.standardizedFileURL
        while !FileManager.default.fileExists(atPath: current.path), current.path != "/" {
            missing.append(current)
            current = current.deletingLastPathComponent()
        }
        for url in missing.reversed() {
            guard mkdir(url.path, 0o777) == 0 || errno == EEXIST else {
                throw InputError("\(url.path): cannot create the folder: \(FileChecks.errorText(errno))")
            }
        }
        if let top = missing.last {
            createdFolders.append(top)
            TerminationCleanup.removeIfLeftEmpty(top)
        }
        guard FileChecks.isDirectory(folder.path) else {
            throw InputError("\(folder.path): not a folder")
        }
    }

    /// Reserves `url`: returns the temporary path to write it at, renamed onto `url` by `commit()`.
    func stage(_ url: URL) throws(InputError) -> URL {
        if FileChecks.isDirectory(url.path) { throw InputError("\(url.path): cannot write: is a directory") }
        try FileChecks.refuseNonRegular(url.path, option: "output")
        if pending.contains(where: { $0.finalURL.standardizedFileURL.path == url.standardizedFileURL.path }) {
            throw InputError("\(url.path): two outputs of this run would be written to this one file")
        }
        try FileChecks.refuseOverwriting(inputs, by: url, option: "output")
        FileChecks.warnAbandoned(url)
        do {
            let reserved = try AtomicFile.begin(url)
            pending.append(reserved)
            return reserved.temporaryURL
        } catch {
            throw InputError(error.description)
        }
    }

    /// Stages `url` with `data` as its contents.
    func write(_ data: Data, to url: URL) throws(InputError) {
        let temporary = try stage(url)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw InputError("\(url.path): cannot write: \(FileChecks.errorText(errno))") }
        defer { close(fd) }
        var failure: Int32 = 0
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure != 0 { throw InputError("\(url.path): cannot write: \(FileChecks.errorText(failure))") }
    }

    /// Renames every staged file into place, in the order staged.
    func commit() throws(InputError) {
        for (k, file) in pending.enumerated() {
            do { try file.commit() } catch {
                pending.removeFirst(k + 1)
                throw InputError(error.description)
            }
        }
        pending = []
        for folder in createdFolders { TerminationCleanup.keep(folder) }
    }

    /// Removes the staged temporaries and the folders this run created.
    func discard() {
        for file in pending { file.discard() }
        pending = []
        for folder in createdFolders.reversed() {
            try? FileManager.default.removeItem(at: folder)
            TerminationCleanup.keep(folder)
        }
        createdFolders = []
    }
}

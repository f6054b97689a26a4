import Foundation
import Storage

/// A file a command reads, with the option that named it (for messages).
struct InputFile {
    let option: String
    let url: URL
    var path: String { url.path }
}

/// Paths named on the command line, checked before any work, so that a bad one costs nothing and
/// writes nothing: exit 2 with one line naming the path (README, "Exit status").
enum FileChecks {
    /// What `stat(2)` says a path is, symlinks followed: equal identities are the same file however
    /// it is spelled (`./x`, `a/../x`, a symlink, a hard link).
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
    }

    static func identity(of path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// An input must be a readable regular file once symlinks are resolved: a FIFO or a device
    /// would block or never end, and a folder would come back from HDF5 as pages of its internals.
    static func input(_ path: String, option: String) throws(InputError) -> InputFile {
        guard !path.isEmpty else { throw InputError("\(option): empty path") }
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            guard code == ENOENT else { throw InputError("\(path): cannot access: \(errorText(code))") }
            var link = stat()
            let dangling = lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
            throw InputError("\(path): \(dangling ? "symbolic link to a file that does not exist" : "does not exist")")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw InputError("\(path): is a directory")
        default: throw InputError("\(path): not a regular file")
        }
        guard access(path, R_OK) == 0 else { throw InputError("\(path): cannot read: \(errorText(errno))") }
        try HDF5Preflight.check(path)
        return InputFile(option: option, url: URL(fileURLWithPath: path))
    }

    /// Every input file of a command, in order.
    static func inputs(_ named: [(option: String, path: String?)]) throws(InputError) -> [InputFile] {
        var files: [InputFile] = []
        for (option, path) in named {
            if let path { files.append(try input(path, option: option)) }
        }
        return files
    }

    /// An output file: a path that is not a folder, in a folder that exists (nothing is created
    /// on the way, as `probe`, `analyze` and `merge` do) and takes new files, and that is none of
    /// `inputs`. An existing path must be a regular file: the output is renamed into place, which
    /// would replace a device, FIFO or socket (`/dev/null` under root) with a regular file.
    static func output(_ path: String, option: String = "--out", inputs: [InputFile]) throws(InputError) -> URL {
        guard !path.isEmpty else { throw InputError("\(option): empty path") }
        let url = URL(fileURLWithPath: path)
        if isDirectory(path) { throw InputError("\(path): \(option) is a directory") }
        try refuseNonRegular(path, option: option)
        let folder = url.deletingLastPathComponent()
        guard isDirectory(folder.path) else {
            throw InputError("\(path): cannot write \(option): folder \(folder.path) does not exist")
        }
        try refuseUnwritable(folder, for: path, option: option)
        try refuseOverwriting(inputs, by: url, option: option)
        warnAbandoned(url)
        return url
    }

    /// One warning line per temporary file an earlier, killed write of `url` left behind: hidden,
    /// and a killed probe's can hold gigabytes. Left in place (its process may run on another host).
    static func warnAbandoned(_ url: URL) {
        warn(AtomicFile.abandonedTemporaries(of: url))
    }

    /// `warnAbandoned` for every output of a folder (a training run's: checkpoint, optimizer state).
    static func warnAbandoned(inFolder folder: URL) {
        warn(AtomicFile.abandonedTemporaries(in: folder))
    }

    private static func warn(_ found: [(path: String, bytes: Int)]) {
        for (path, bytes) in found {
            let size = bytes < 1_000_000 ? "\(bytes) bytes" : String(format: "%.1f MB", Double(bytes) / 1e6)
            FileHandle.standardError.write(
                Data("warning: \(path): \(size) left by a write whose process is not running here (killed?); remove it if nothing else is writing it\n".utf8))
        }
    }

    /// Refuses an existing `path` that is not a regular file (symlinks followed): renaming an
    /// output into place would replace the device, FIFO or socket with a regular file.
    static func refuseNonRegular(_ path: String, option: String) throws(InputError) {
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG, (info.st_mode & S_IFMT) != S_IFDIR {
            throw InputError("\(path): \(option) exists and is not a regular file (a device, FIFO or socket); choose a file path")
        }
    }

    /// `refuseNonRegular` for every entry already in `folder` that the command writes
    /// (`isOutput`), before any work rather than when the output is renamed into place.
    static func refuseNonRegularOutputs(in folder: URL, option: String, isOutput: (String) -> Bool) throws(InputError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names.sorted() where isOutput(name) {
            try refuseNonRegular(folder.appendingPathComponent(name).path, option: option)
        }
    }

    /// A folder output (`--out DIR`): it may not exist yet, but it must not be a file, and the
    /// folder it is or will be made in must take new files.
    static func folder(_ path: String, option: String = "--out") throws(InputError) -> URL {
        guard !path.isEmpty else { throw InputError("\(option): empty path") }
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
            let what = (info.st_mode & S_IFMT) == S_IFREG ? "a file" : "not a regular file (a device, FIFO or socket)"
            throw InputError("\(path): \(option) must be a folder, and this is \(what)")
        }
        let url = URL(fileURLWithPath: path)
        var existing = url.standardizedFileURL
        while !isDirectory(existing.path), existing.path != "/" { existing.deleteLastPathComponent() }
        try refuseUnwritable(existing, for: path, option: option)
        return url
    }

    /// Refuses before any work when `folder` does not take new files (permissions, a read-only
    /// mount, `/proc`): an output found unwritable only after training or probing would throw the
    /// work away. Tried by making and removing an empty file, which, unlike `access(2)`, also holds
    /// for root and for file systems that refuse creation whatever the mode bits say.
    static func refuseUnwritable(_ folder: URL, for path: String, option: String) throws(InputError) {
        var template = Array(folder.appendingPathComponent(".interference-write-test-XXXXXX").path.utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw InputError("\(path): cannot write \(option): folder \(folder.path) takes no new files (\(errorText(errno)))")
        }
        close(descriptor)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    }

    /// Refuses when writing `output` would replace one of `inputs` (same device and inode).
    static func refuseOverwriting(_ inputs: [InputFile], by output: URL, option: String) throws(InputError) {
        guard let target = identity(of: output.path) else { return }
        for input in inputs where identity(of: input.path) == target {
            throw InputError(
                "\(output.path): \(option) would overwrite the input \(input.path) (\(input.option)); "
                    + "choose another output")
        }
    }

    /// Refuses when an input lies inside `folder` under a name that `isOutput` says the command
    /// writes there (or anywhere below `folder` when `isOutput` is nil).
    static func refuseInputs(_ inputs: [InputFile], in folder: URL, option: String, isOutput: ((String) -> Bool)?)
        throws(InputError)
    {
        guard let base = realPath(folder.path) else { return }
        for input in inputs {
            guard let path = realPath(input.path) else { continue }
            let parent = (path as NSString).deletingLastPathComponent
            let inside = isOutput.map { parent == base && $0((path as NSString).lastPathComponent) }
                ?? path.hasPrefix(base + "/")
            if inside {
                throw InputError(
                    "\(input.path): \(input.option) lies where \(option) \(folder.path) writes its outputs; "
                        + "move it or choose another output folder")
            }
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The path with every symlink and `..` resolved; nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}

import ArgumentParser
import Foundation
import Storage

/// Every HDF5 input's metadata (attributes, group members, string datasets) is read in a child
/// process before the command reads the file, so that a file which crashes libhdf5 is refused with
/// exit 2 instead of taking the command down (`HDF5MetadataTable` says why libhdf5 1.10 can crash).
///
/// - The child dies by a signal: the file is refused, naming it; nothing was read or written.
/// - The child finishes: the file is refused when its strings do not match the `strings_sha256` it
///   records (`HDF5MetadataTable.register` checks it). Otherwise its table is registered, and
///   the command's own attribute, listing and string reads of the file are answered from it, so
///   this process never decodes them through libhdf5 (a wild read that did not crash the child
///   cannot crash this one); what the child could not read is refused when the command asks for it.
/// - The child cannot open the file (exit 2): nothing is registered, and the command's own open
///   reports the problem in its own words.
enum HDF5Preflight {
    /// The HDF5 format signature; the superblock sits at byte 0, 512, 1024, 2048, … (a user block
    /// may come first).
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

    /// Longest wait for the child (the demo's files take milliseconds). Its CPU time is capped
    /// lower, by the child itself (`ReadMetadataCommand.cpuSeconds`): a damaged global heap can send
    /// libhdf5 round a loop for ever; the wall-clock limit covers a slow disk.
    static let timeout: Duration = .seconds(120)

    /// Whether `path` starts like an HDF5 file (checked where a superblock may sit, up to 64 KiB).
    static func isHDF5(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        var offset: UInt64 = 0
        while offset <= 65_536 {
            guard (try? handle.seek(toOffset: offset)) != nil,
                let bytes = try? handle.read(upToCount: signature.count), bytes.count == signature.count
            else { return false }
            if Array(bytes) == signature { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    /// Reads `path`'s metadata in a child process and registers it; refuses the file when the
    /// child is killed by a signal or does not finish.
    static func check(_ path: String) throws(InputError) {
        guard isHDF5(path), let executable = FileChecks.realPath("/proc/self/exe") else { return }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = [ReadMetadataCommand.configuration.commandName!, path]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash is a verdict here, not a bug to trace
        child.environment = environment
        // The table goes to a temporary file (a pipe would block a child whose table outgrows
        // its buffer while this process only waits).
        let tableURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("interference-metadata-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).json")
        guard FileManager.default.createFile(atPath: tableURL.path, contents: nil),
            let output = try? FileHandle(forWritingTo: tableURL)
        else { return }
        defer { try? FileManager.default.removeItem(at: tableURL) }
        child.standardOutput = output
        child.standardError = FileHandle.nullDevice
        do {
            try child.run()
            try? output.close()
        } catch {
            try? output.close()
            return  // no child, no verdict: the command reads the file itself
        }
        TerminationCleanup.killOnTermination(child.processIdentifier)
        defer { TerminationCleanup.forget(child.processIdentifier) }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while child.isRunning && clock.now < deadline { usleep(2_000) }
        if child.isRunning {
            kill(child.processIdentifier, SIGKILL)  // it ignores SIGTERM, as this process does
            child.waitUntilExit()
            throw InputError("\(path): reading the metadata of this HDF5 file did not finish in \(timeout)")
        }
        // A fault, a failed check or a trap is the file's doing; a signal sent from outside
        // (Ctrl-C reaches the whole process group, SIGKILL from the OOM killer) says nothing
        // about the file, and this process handles its own.
        if child.terminationReason == .uncaughtSignal, child.terminationStatus == SIGXCPU {
            throw InputError(
                "\(path): reading the metadata of this HDF5 file did not finish in \(ReadMetadataCommand.cpuSeconds) s of CPU time "
                    + "(a damaged file can make the HDF5 library loop); nothing was read from it or written")
        }
        let faults: Set<Int32> = [SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGTRAP, SIGFPE, SIGSYS]
        if child.terminationReason == .uncaughtSignal, faults.contains(child.terminationStatus) {
            let signal = child.terminationStatus
            let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
            throw InputError(
                "\(path): corrupted HDF5 file: reading its metadata crashed the HDF5 library (\(name)); "
                    + "nothing was read from it or written")
        }
        guard child.terminationStatus == 0,
            let data = FileManager.default.contents(atPath: tableURL.path),
            let table = try? HDF5MetadataTable.decoder().decode(HDF5MetadataTable.self, from: data)
        else { return }
        do throws(StorageError) {
            try HDF5MetadataTable.register(table, for: URL(fileURLWithPath: path))
        } catch {
            // Named as the user typed it (the error holds the absolute path).
            let reason = if case .stringsDigestMismatch(_, let reason) = error { reason } else { error.description }
            throw InputError("\(path): \(reason); nothing was read from it or written")
        }
    }
}

/// `interference read-metadata FILE` (hidden): the child of `HDF5Preflight`. Prints the file's
/// metadata as JSON (`HDF5MetadataTable`) and exits 0, or exits 2 when the file does not open; a
/// corrupted file may kill it instead.
struct ReadMetadataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-metadata",
        abstract: "Print every attribute, group member list and string dataset of an HDF5 file as JSON.",
        shouldDisplay: false)

    @Argument(help: "HDF5 file.")
    var file: String

    /// Memory the child may allocate: a damaged string length makes libhdf5 allocate and zero
    /// gigabytes, which now fails at once (a clean error or a crash, either a verdict) instead of
    /// running for minutes. The metadata of a real file take kilobytes.
    static let memoryLimit: rlim_t = 1 << 30
    /// CPU seconds the child may use before SIGXCPU ends it (see `HDF5Preflight.timeout`).
    static let cpuSeconds: rlim_t = 20

    func run() throws {
        var memory = rlimit(rlim_cur: Self.memoryLimit, rlim_max: Self.memoryLimit)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &memory)
        var cpu = rlimit(rlim_cur: Self.cpuSeconds, rlim_max: Self.cpuSeconds + 5)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CPU.rawValue), &cpu)
        let hdf5 = try HDF5File.open(URL(fileURLWithPath: file))
        defer { try? hdf5.close() }
        let table = hdf5.metadataTable()
        // The throwing write: a full disk must end in a clean failure, never in a trap that
        // the parent would take for a corrupted file.
        try FileHandle.standardOutput.write(contentsOf: try HDF5MetadataTable.encoder().encode(table))
    }
}

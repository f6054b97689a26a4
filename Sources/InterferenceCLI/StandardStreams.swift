import Foundation

/// Standard output carries results (`evaluate`'s scores, `check`'s table, what each command wrote),
/// so losing it must not pass for success.
enum StandardStreams {
    /// Set once, by `reopenClosed` at the start of `main`, before any other thread runs.
    nonisolated(unsafe) private static var stdoutWasClosed = false

    /// C's `stdout`, which `print` writes through. Swift 6 refuses to name that mutable C global, so
    /// its value is read through the symbol; nil where the C library has no such symbol.
    private static var output: UnsafeMutablePointer<FILE>? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "stdout")?  // RTLD_DEFAULT
            .assumingMemoryBound(to: UnsafeMutablePointer<FILE>?.self).pointee
    }

    /// A closed standard stream's descriptor would be the next file the command opens, and a
    /// result line printed later would land inside an output file. Each closed one is reopened
    /// first: stdin and stderr on `/dev/null`, stdout on `/dev/full`, so that writing the results
    /// fails and `flushedStatus` reports it. Defensive: no command was seen to print while an
    /// output file was open, so no test shows the corruption this prevents.
    static func reopenClosed() {
        stdoutWasClosed = fcntl(STDOUT_FILENO, F_GETFD) == -1 && errno == EBADF
        for (descriptor, device) in [(STDIN_FILENO, "/dev/null"), (STDOUT_FILENO, "/dev/full"), (STDERR_FILENO, "/dev/null")]
        where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            var opened = open(device, descriptor == STDIN_FILENO ? O_RDONLY : O_WRONLY)
            if opened == -1 { opened = open("/dev/null", O_RDWR) }
            // open returns the lowest free descriptor, which is this one; anything else is moved.
            if opened >= 0 && opened != descriptor {
                dup2(opened, descriptor)
                close(opened)
            }
        }
    }

    /// Commands whose results are what they print (`evaluate`'s scores, `check`'s table); the
    /// others' results are their files, and stdout only says where they went.
    static let printingResults: Set<String> = ["evaluate", "check"]

    /// `status`, unless the command's printed results could not be written to stdout (a full disk,
    /// `> /dev/full`, a closed stdout): then one line on stderr and exit 2, since the results are
    /// lost. For a command whose results are files, a lost stdout only earns a warning on stderr.
    static func flushedStatus(_ status: Int32, subcommand: String?) -> Int32 {
        guard let output = Self.output else { return status }
        errno = 0
        // Without /dev/full a closed stdout was reopened on /dev/null, where every write succeeds.
        let flushed = fflush(output) == 0 && ferror(output) == 0 && !stdoutWasClosed
        guard !flushed else { return status }
        let reason = stdoutWasClosed ? "it was closed" : errno != 0 ? String(cString: strerror(errno)) : "write error"
        clearerr(output)
        // A command that already failed has said why in one line; nothing is added to it.
        guard status == ExitCodes.success || status == ExitCodes.checkFailed else { return status }
        guard let subcommand, printingResults.contains(subcommand) else {
            FileHandle.standardError.write(Data("warning: standard output: cannot write: \(reason)\n".utf8))
            return status
        }
        ExitCodes.printError("standard output: cannot write the results: \(reason)")
        return ExitCodes.badInput
    }
}

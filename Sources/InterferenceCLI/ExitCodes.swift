import ArgumentParser
import Datasets
import Foundation
import Storage
import Training
import UniPerceiver

/// The command line's exit statuses, in one place (house-style §7, architecture.md "Command line"):
///
/// | status | meaning |
/// | --- | --- |
/// | 0 | success |
/// | 1 | a check failed (`check`: a regression beyond the tolerance) |
/// | 2 | bad usage or bad input: unknown option/model/task, missing or malformed file, a dataset that does not fit the model, a non-finite loss, results `evaluate` or `check` could not print (`StandardStreams`) — one line naming the file, task or step |
/// | 128 + N | stopped by signal N (SIGTERM 143, SIGHUP 129, SIGINT 130): training first finishes its step and writes a checkpoint (continue with `--resume`); every command removes the temporary files of unfinished outputs (`TerminationCleanup`) |
enum ExitCodes {
    static let success: Int32 = 0
    static let checkFailed: Int32 = 1
    static let badInput: Int32 = 2

    /// The `--help` discussion text of the root command.
    static let helpText = """
        Exit status: 0 success; 1 a check failed; 2 bad usage or bad input (a one-line message \
        names the file, task or step); 128 + N stopped by signal N (SIGTERM 143, SIGHUP 129, \
        SIGINT 130), unfinished outputs removed; training first writes a checkpoint (continue \
        with --resume).
        """

    /// Prints what `error` says (help to stdout, everything else to stderr as one line) and returns
    /// the exit status it maps to. `help` is the command whose `--help` a usage error points to.
    static func report(_ error: any Error, command: any ParsableCommand.Type, help: String = "interference") -> Int32 {
        switch error {
        case let failure as CheckFailure:
            printError(failure.message)
            return checkFailed
        case let exit as Interrupted:
            printError(exit.message)
            return exit.status
        case let code as ExitCode:
            return code.rawValue
        case let error as InputError: printError(error.description)
        case let error as TrainingError: printError(error.description)
        case let error as DatasetError: printError(error.description)
        case let error as CheckpointError: printError(error.description)
        case let error as StorageError: printError(error.description)
        case let error as ConfigError: printError(error.description)
        case let error as ModelError: printError(error.description)
        case let error as CocoaError: printError(describe(error))
        default:
            let code = command.exitCode(for: error)
            if code == .success {
                print(command.fullMessage(for: error))
                return success
            }
            // Argument-parser's usage and validation errors (64 on Linux) and anything else we did
            // not type: one line, exit 2.
            let message = command.message(for: error)
                .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " ")
            printError("\(message) (see '\(help) --help')")
        }
        return badInput
    }

    /// The one place errors reach stderr: always one line, so a newline inside the message (a file
    /// name, a library's text) cannot split it.
    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("error: \(oneLine(message))\n".utf8))
    }

    /// `text` with every line break (`\n`, `\r`, and the other Unicode ones) replaced by a space.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// A Foundation file error in words ("PATH: cannot read: Is a directory") instead of its
    /// `NSCocoaErrorDomain` dump.
    static func describe(_ error: CocoaError) -> String {
        let path = error.filePath ?? error.url?.path ?? "file"
        let action = error.code.rawValue >= CocoaError.fileWriteUnknown.rawValue ? "cannot write" : "cannot read"
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return "\(path): \(action): \(String(cString: strerror(Int32(underlying.code))))"
        }
        switch error.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "\(path): does not exist"
        case .fileReadNoPermission, .fileWriteNoPermission: return "\(path): \(action): permission denied"
        case .fileWriteOutOfSpace: return "\(path): \(action): no space left on the device"
        case .fileWriteFileExists: return "\(path): \(action): a file of that name exists"
        default: return "\(path): \(action) (Foundation error \(error.code.rawValue))"
        }
    }
}

/// Bad input the command line itself detects (a model that does not exist yet, a malformed
/// `task=weight` list, a resume that contradicts the checkpoint): exit 2.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A check that ran and failed (exit 1). For subcommands such as `check`.
struct CheckFailure: Error {
    let message: String
}

/// Training stopped by a signal after its checkpoint was written (exit 128 + the signal).
struct Interrupted: Error {
    let message: String
    let status: Int32
}

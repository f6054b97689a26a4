import Foundation
import Storage
import Synchronization
import Training

/// A progress line on stderr, redrawn in place, only when stderr is a terminal.
final class ProgressLine {
    let enabled: Bool
    private var lastDraw = 0.0
    private var drawn = false

    /// `enabled: false` (`--quiet`) draws nothing even on a terminal.
    init(enabled: Bool = true) {
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
    }

    /// Redraws at most ten times a second (and always for the last step).
    func update(_ text: String, seconds: Double, force: Bool = false) {
        guard enabled, force || seconds - lastDraw >= 0.1 || !drawn else { return }
        lastDraw = seconds
        drawn = true
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    /// Ends the line so later output starts on its own line.
    func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

/// Turns SIGINT, SIGTERM and SIGHUP into a stop request during training: the first one raises the
/// flag (the loop finishes its step, writes a checkpoint and returns, and the command exits
/// 128 + that signal); a second one exits at once — every file is written atomically, so the last
/// checkpoint is intact either way, and an unfinished one's temporary file is removed. SIGTERM is
/// what a batch scheduler sends at the time limit (Slurm, then SIGKILL after `KillWait`), so a
/// stopped job leaves a checkpoint to `--resume` from instead of a log without one.
/// It takes the signals over from `TerminationCleanup`, which owns the process's one source per
/// signal (a second source for the same signal, with its own `signal(SIGINT, SIG_IGN)`, silently
/// took libdispatch's handler away and SIGINT went unheard).
final class InterruptWatcher {
    let flag = StopFlag()
    private let received = ReceivedSignal()

    /// The signal that raised the flag (nil while none has).
    var signal: Int32? { received.number }

    init() {
        TerminationCleanup.install()
        let flag = self.flag
        let received = self.received
        TerminationCleanup.setStopHandler { number in
            // One atomic claim: the signals' handlers run on a concurrent queue, and two signals at
            // once must not both count as the first.
            guard received.claim(number) else {
                AtomicFile.removePendingFiles()
                _exit(128 + number)
            }
            flag.raise()
            FileHandle.standardError.write(
                Data("\n\(TerminationCleanup.name(number)): finishing the current step and writing a checkpoint (again to quit now)\n".utf8))
        }
    }

    func cancel() { TerminationCleanup.setStopHandler(nil) }
}

/// The first stop signal, claimed by the signal handlers' queue and read by the training loop.
private final class ReceivedSignal: Sendable {
    private let value = Mutex<Int32?>(nil)
    var number: Int32? { value.withLock { $0 } }

    /// Records `number` if no signal came before it; false when one did.
    func claim(_ number: Int32) -> Bool {
        value.withLock { current in
            guard current == nil else { return false }
            current = number
            return true
        }
    }
}

/// SIGTERM, SIGHUP and SIGINT end the process at once with status 128 + the signal, as the default
/// action would, but first remove the temporary files of outputs not yet complete. Outputs only
/// appear under their final names when complete (`AtomicFile`); without this a probe killed by a
/// batch scheduler also left its hidden, often hundred-megabyte temporary file behind. Training
/// replaces all three actions with a stop request (`InterruptWatcher`).
enum TerminationCleanup {
    private static let state = Mutex<
        (installed: Bool, sources: [DispatchSourceSignal], stop: (@Sendable (Int32) -> Void)?, folders: [String],
         children: Set<pid_t>)
    >((false, [], nil, [], []))

    /// A child process that must not outlive this one (`HDF5Preflight`'s): killed on a signal.
    /// SIGKILL, because a child inherits the SIGTERM, SIGHUP and SIGINT this process ignores.
    static func killOnTermination(_ child: pid_t) { state.withLock { _ = $0.children.insert(child) } }

    /// The child has ended: nothing to kill.
    static func forget(_ child: pid_t) { state.withLock { _ = $0.children.remove(child) } }

    /// Folders this run made for outputs not yet committed (`StagedOutputs`): on a signal, each is
    /// removed if nothing but empty folders is left in it once the temporaries are gone.
    static func removeIfLeftEmpty(_ folder: URL) { state.withLock { $0.folders.append(folder.path) } }

    /// The folder's outputs are committed (or it was removed): leave it alone.
    static func keep(_ folder: URL) { state.withLock { $0.folders.removeAll { $0 == folder.path } } }

    private static func removeEmptyFolders() {
        let folders = state.withLock { $0.folders }
        for folder in folders {
            // Deepest first, with rmdir, which only ever removes an empty folder.
            let inside = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? []
            for path in inside.map({ folder + "/" + $0 }).sorted(by: { $0.count > $1.count }) { _ = rmdir(path) }
            _ = rmdir(folder)
        }
    }

    /// Installs the handlers (once; later calls do nothing).
    static func install() {
        state.withLock { state in
            guard !state.installed else { return }
            state.installed = true
            for number in [SIGTERM, SIGHUP, SIGINT] {
                signal(number, SIG_IGN)  // the dispatch source receives it instead of the default action
                let source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue.global())
                source.setEventHandler {
                    if let stop = TerminationCleanup.state.withLock({ $0.stop }) {
                        stop(number)
                        return
                    }
                    for child in TerminationCleanup.state.withLock({ $0.children }) { kill(child, SIGKILL) }
                    AtomicFile.removePendingFiles()
                    removeEmptyFolders()
                    _exit(128 + number)
                }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// What SIGINT, SIGTERM and SIGHUP do instead of cleaning up and exiting, given the signal
    /// (nil: clean up and exit again).
    static func setStopHandler(_ handler: (@Sendable (Int32) -> Void)?) {
        state.withLock { $0.stop = handler }
    }

    /// The signal's name as a user reads it ("SIGTERM").
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }
}

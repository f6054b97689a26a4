import Foundation
import Testing

/// The built `interference` executable, run as a user would: help, bad input → exit 2 with the
/// reason, a tiny training run, evaluation of its checkpoint and SIGINT.
@Suite(.serialized) struct CLITests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let data = packageRoot.appendingPathComponent("notebooks-data/digits.h5").path

    /// The executable beside the test bundle (`swift test` builds every product into the same
    /// directory, e.g. `.build/debug/`).
    static func executable() throws -> URL {
        var candidates: [URL] = []
        for bundle in Bundle.allBundles + [Bundle.main] {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("interference"))
        }
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(argument0.deletingLastPathComponent().appendingPathComponent("interference"))
        candidates.append(argument0.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("interference"))
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url }
        throw MissingExecutable(searched: candidates.map(\.path))
    }

    struct MissingExecutable: Error, CustomStringConvertible {
        let searched: [String]
        var description: String { "interference executable not built; looked in \(searched)" }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the executable to completion (`interrupt` sends SIGINT once `trigger` appears in the
    /// child's log file; after `timeout` seconds the child is killed, so a hang fails the test
    /// instead of stopping it).
    static func run(
        _ arguments: [String], interruptWhenExists trigger: URL? = nil, signal: Int32 = SIGINT,
        timeout: TimeInterval? = nil, fileSizeLimit: Int? = nil, standardOutput: LostOutput? = nil
    ) throws -> Result {
        let process = try launcher(arguments, fileSizeLimit: fileSizeLimit, standardOutput: standardOutput)
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let trigger {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, process.isRunning {
                if let text = try? String(contentsOf: trigger, encoding: .utf8), text.contains("\"step\":2,") { break }
                Thread.sleep(forTimeInterval: 0.01)
            }
            kill(process.processIdentifier, signal)
        }
        if let timeout {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A process that runs the executable with `arguments` as a shell would start it: signals
    /// unblocked and at their default actions. The test runner's threads block some signals, and a
    /// child inherits that mask; with SIGINT blocked, a bug that left SIGINT ignored went unseen
    /// (a blocked signal is queued, not discarded). `python3` (a `make test` dependency) resets the
    /// mask and execs the executable under the same process id.
    /// `fileSizeLimit` (bytes) makes every write beyond it fail with EFBIG, as a full disk or a
    /// quota would (SIGXFSZ ignored, as `ulimit -f` with `trap '' XFSZ`).
    /// `standardOutput` replaces the pipe the results would reach by a stream that loses them.
    static func launcher(
        _ arguments: [String], fileSizeLimit: Int? = nil, standardOutput: LostOutput? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let limit = fileSizeLimit.map {
            "import resource; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (\($0), \($0)))"
        } ?? ""
        let output: String
        switch standardOutput {
        case nil: output = ""
        case .closed: output = "os.close(1)"
        case .full: output = "os.dup2(os.open('/dev/full', os.O_WRONLY), 1)"
        }
        let reset = """
            import os, signal, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)
            \(limit)
            \(output)
            os.execv(sys.argv[1], sys.argv[1:])
            """
        process.arguments = ["python3", "-c", reset, try executable().path] + arguments
        return process
    }

    /// A standard output that loses what is written to it: closed (`>&-`), or a full device.
    enum LostOutput { case closed, full }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ti-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `body` with a fresh temporary folder, removed afterwards whatever `body` does.
    static func withTemporaryDirectory(_ body: (_ root: URL) throws -> Void) throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        try body(root)
    }

    static let tiny = ["--config", "tiny", "--batch-size", "8", "--warmup", "1"]

    /// Runs `body` with a fresh temporary folder `root` (removed afterwards) and the checkpoint of a
    /// tiny model trained into `root/run`.
    static func withTinyRun(
        sourceLocation: SourceLocation = #_sourceLocation, _ body: (_ root: URL, _ checkpoint: URL) throws -> Void
    ) throws {
        try withTemporaryDirectory { root in
            try body(root, try trainTiny(into: root.appendingPathComponent("run"), sourceLocation: sourceLocation))
        }
    }

    /// Trains the tiny attribute-routed MoE (2 experts) for 2 steps into `directory` and returns its
    /// checkpoint; the training itself must exit 0.
    static func trainTinyMoE(into directory: URL, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        let train = try run(
            ["train", "--model", "moe-attribute", "--experts", "2", "--data", data, "--steps", "2",
             "--out", directory.path] + tiny)
        #expect(train.status == 0, "stderr: \(train.stderr)", sourceLocation: sourceLocation)
        return directory.appendingPathComponent("model.safetensors")
    }

    /// Trains the tiny dense model for `steps` into `directory` and returns its checkpoint; the
    /// training itself must exit 0.
    static func trainTiny(
        into directory: URL, steps: Int = 3, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> URL {
        let train = try run(
            ["train", "--model", "dense", "--data", data, "--steps", "\(steps)", "--out", directory.path] + tiny)
        #expect(train.status == 0, "stderr: \(train.stderr)", sourceLocation: sourceLocation)
        return directory.appendingPathComponent("model.safetensors")
    }

    @Test("--help lists train and evaluate and the exit codes; exit 0")
    func help() throws {
        let result = try Self.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("train") && result.stdout.contains("evaluate"))
        #expect(result.stdout.contains("Exit status"))
        let train = try Self.run(["train", "--help"])
        #expect(train.status == 0 && train.stdout.contains("--resume"))
        // No subcommand at all is bad usage, not success.
        let bare = try Self.run([])
        Self.expectRefused(bare, naming: ["no subcommand given", "train", "diagnose", "--help"])
        #expect(!bare.stderr.contains("read-metadata"), "the hidden subcommand is not offered: \(bare.stderr)")
        Self.expectRefused(try Self.run(["help", "nosuch"]), naming: ["help: no subcommand 'nosuch'", "probe"])
        #expect(try Self.run(["help", "probe"]).stdout.contains("--memory-budget"))
        #expect(try Self.run(["help", "help"]).status == 0)
        let version = try Self.run(["--version"])
        #expect(version.status == 0 && version.stdout == "task-interference 0.1.0\n", "\(version.stdout)")
    }

    @Test("unknown model, unknown option, a bad task weight or top-k → exit 2 with one line; a tiny MoE trains (kind moe)")
    func badUsage() throws {
        let out = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let common = ["--data", Self.data, "--steps", "2", "--out", out.path]
        let unknown = try Self.run(["train", "--model", "sparse"] + common)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("sparse"))
        #expect(unknown.stderr.split(separator: "\n").count == 1)
        let option = try Self.run(["train", "--model", "dense", "--frobnicate"] + common)
        #expect(option.status == 2)
        let moe = try Self.run(
            ["train", "--model", "moe-attribute", "--experts", "2"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("moe").path] + Self.tiny)
        #expect(moe.status == 0, "stderr: \(moe.stderr)")
        let header = try String(
            contentsOf: out.appendingPathComponent("moe/model.safetensors"), encoding: .isoLatin1)
        #expect(header.contains("\"kind\":\"moe\"") && header.contains("\"routing\":\"attribute\""))
        let badTopK = try Self.run(
            ["train", "--model", "moe-token", "--experts", "1"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("topk").path] + Self.tiny)
        Self.expectRefused(badTopK, naming: ["--top-k 2 must be at most --experts 1"])
        let topThree = try Self.run(
            ["train", "--model", "moe-token", "--top-k", "3"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("topk").path] + Self.tiny)
        Self.expectRefused(topThree, naming: ["--top-k must be 1 or 2, got 3"])
        // Given together on a resume they are checked against each other before the checkpoint.
        let resumedTopK = try Self.run(
            ["train", "--model", "moe-attribute", "--resume", "--experts", "1", "--top-k", "2"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("moe").path] + Self.tiny)
        Self.expectRefused(resumedTopK, naming: ["--top-k 2 must be at most --experts 1"])
        let task = try Self.run(
            ["train", "--model", "dense", "--sampling-weights", "ocr=1"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("task").path] + Self.tiny)
        #expect(task.status == 2)
        #expect(task.stderr.contains("--sampling-weights: unknown task 'ocr'"), "\(task.stderr)")
        // A stray comma or a task weighted twice is a typo, not a weight to drop or overwrite.
        for (weights, reason) in [("mlm=1,", "'' is not task=weight"), ("mlm=1,mlm=2", "task 'mlm' is given twice")] {
            let typo = try Self.run(
                ["train", "--model", "dense", "--sampling-weights", weights] + common.dropLast(2)
                    + ["--out", out.appendingPathComponent("typo").path] + Self.tiny)
            Self.expectRefused(typo, naming: ["--sampling-weights", reason])
        }
        for tasks in ["mlm,", ",mlm", "mlm,,captioning"] {
            let probe = try Self.run(
                ["probe", "--checkpoint", Self.data, "--data", Self.data, "--tasks", tasks, "--out", out.appendingPathComponent("p.h5").path])
            Self.expectRefused(probe, naming: ["--tasks", "'\(tasks)' has an empty name"])
        }
        // A usage mistake points to the help of its own command, which documents the option.
        let noModel = try Self.run(["train"] + common)
        Self.expectRefused(noModel, naming: ["--model is required", "--resume", "(see 'interference train --help')"])
        // Which layers get experts (issue 4 item 1): recorded in the checkpoint, experts only there.
        let odd = try Self.run(
            ["train", "--model", "moe-attribute", "--experts", "2", "--moe-layers", "odd"] + common.dropLast(2)
                + ["--out", out.appendingPathComponent("odd").path] + Self.tiny + ["--layers", "3"])
        #expect(odd.status == 0, "stderr: \(odd.stderr)")
        let oddHeader = try String(
            contentsOf: out.appendingPathComponent("odd/model.safetensors"), encoding: .isoLatin1)
        #expect(oddHeader.contains(#"\"moe_layers\":\"odd\""#), "the configuration JSON, escaped in the header")
        #expect(oddHeader.contains("encoder.layers.0.ffn.dense2.experts.1.weight") && oddHeader.contains("encoder.layers.2.ffn.dense2.experts.1.weight"))
        #expect(!oddHeader.contains("encoder.layers.1.ffn.dense2.experts") && oddHeader.contains("encoder.layers.1.ffn.dense2.weight"))
        let resumed = try Self.run(
            ["train", "--resume", "--moe-layers", "all"] + common.dropLast(2) + ["--out", out.appendingPathComponent("odd").path])
        Self.expectRefused(resumed, naming: ["--moe-layers all given, but the checkpoint has --moe-layers odd"])
        let badLayers = try Self.run(["train", "--model", "moe-attribute", "--moe-layers", "evens"] + common)
        Self.expectRefused(badLayers, naming: ["evens", "--moe-layers"])
        // MoE options on the dense model would be ignored silently: refused instead.
        for option in ["--experts", "--top-k", "--moe-layers"] {
            let dense = try Self.run(["train", "--model", "dense", option, option == "--moe-layers" ? "odd" : "2"] + common)
            Self.expectRefused(dense, naming: [option, "MoE models only"])
        }
        let probeOne = try Self.run(
            ["probe", "--checkpoint", "x", "--data", Self.data, "--tasks", "mlm", "--samples", "1", "--out", out.appendingPathComponent("p.h5").path])
        Self.expectRefused(probeOne, naming: ["--samples must be at least 2 (leave-one-out", "(see 'interference probe --help')"])
        // Refused by the option check, before the checkpoint ("x", missing) is looked at (mutant C24).
        let probeEmpty = try Self.run(
            ["probe", "--checkpoint", "x", "--data", Self.data, "--tasks", "mlm", "--batch-size", "0", "--out", out.appendingPathComponent("p.h5").path])
        Self.expectRefused(probeEmpty, naming: ["--batch-size must be", "(see 'interference probe --help')"])
        let demo = try Self.run(["demo", "--help"])
        #expect(demo.status == 0 && demo.stdout.contains("USAGE: interference demo [<options>]"), "\(demo.stdout)")
    }

    @Test("a missing or malformed data file → exit 2 naming the path")
    func badData() throws {
        let out = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let missing = out.appendingPathComponent("nope.h5").path
        let result = try Self.run(["train", "--model", "dense", "--data", missing, "--steps", "2", "--out", out.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains(missing))
        let garbage = out.appendingPathComponent("garbage.h5")
        try Data("not hdf5".utf8).write(to: garbage)
        let malformed = try Self.run(["evaluate", "--checkpoint", garbage.path, "--data", garbage.path])
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains(garbage.path))
        // The dataset given as the checkpoint: named as the HDF5 file it is.
        let swapped = try Self.run(["evaluate", "--checkpoint", Self.data, "--data", Self.data])
        Self.expectRefused(swapped, naming: [Self.data, "not a safetensors checkpoint but an HDF5 file"])
    }

    @Test("tiny train → 0 with a checkpoint and a log; evaluate it → 0, as text and JSON; resume refuses changed options")
    func trainAndEvaluate() throws {
        try Self.withTemporaryDirectory { root in
            let out = root.appendingPathComponent("run")
            let train = try Self.run(
                ["train", "--model", "dense", "--data", Self.data, "--steps", "4", "--out", out.path] + Self.tiny)
            #expect(train.status == 0, "stderr: \(train.stderr)")
            #expect(train.stderr.isEmpty, "no progress line when stderr is not a terminal")
            let checkpoint = out.appendingPathComponent("model.safetensors")
            #expect(FileManager.default.fileExists(atPath: checkpoint.path))
            let log = try String(contentsOf: out.appendingPathComponent("log.jsonl"), encoding: .utf8)
            #expect(log.split(separator: "\n").count == 4)
            #expect(log.contains("\"task\"") && log.contains("\"lr\"") && log.contains("\"loss\""))

            let evaluate = try Self.run(["evaluate", "--checkpoint", checkpoint.path, "--data", Self.data])
            #expect(evaluate.status == 0, "stderr: \(evaluate.stderr)")
            #expect(evaluate.stdout.contains("image-classification/accuracy") && evaluate.stdout.contains("chance"))
            let json = try Self.run(["evaluate", "--checkpoint", checkpoint.path, "--data", Self.data, "--json"])
            #expect(json.status == 0)
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((object?["metrics"] as? [Any])?.count == 5)

            let again = try Self.run(
                ["train", "--model", "dense", "--data", Self.data, "--steps", "6", "--out", out.path] + Self.tiny)
            #expect(again.status == 2 && again.stderr.contains("--resume"))
            let changed = try Self.run(
                ["train", "--model", "dense", "--data", Self.data, "--steps", "6", "--out", out.path, "--resume", "--lr", "0.5"])
            #expect(changed.status == 2 && changed.stderr.contains("--lr 0.5 given, the checkpoint has 0.002"), "\(changed.stderr)")
            let resumed = try Self.run(
                ["train", "--model", "dense", "--data", Self.data, "--steps", "6", "--out", out.path, "--resume"])
            #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
            #expect(resumed.stdout.contains("6/6"))
        }
    }

    @Test(
        "SIGINT, SIGTERM (a scheduler's time limit) or SIGHUP: the run writes a checkpoint, exits 128 + signal, and --resume finishes it",
        arguments: [SIGINT, SIGTERM, SIGHUP])
    func interrupt(signal: Int32) throws {
        try Self.withTemporaryDirectory { root in
            let out = root.appendingPathComponent("run")
            let arguments = ["train", "--model", "dense", "--data", Self.data, "--steps", "100000", "--out", out.path] + Self.tiny
            let result = try Self.run(arguments, interruptWhenExists: out.appendingPathComponent("log.jsonl"), signal: signal)
            #expect(result.status == 128 + signal, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("--resume"))
            let checkpoint = out.appendingPathComponent("model.safetensors")
            #expect(FileManager.default.fileExists(atPath: checkpoint.path))
            let evaluate = try Self.run(["evaluate", "--checkpoint", checkpoint.path, "--data", Self.data, "--json"])
            #expect(evaluate.status == 0)
            // --resume alone (no --model: it comes from the checkpoint) finishes a shortened run.
            // (A checkpoint's own --experts given again is accepted without its --top-k: see
            // `resumeRepeatsCheckpointValues`.)
            let step = try #require(Self.checkpointStep(out))
            let resumed = try Self.run(
                ["train", "--data", Self.data, "--steps", "\(step + 2)", "--out", out.path, "--resume"])
            #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
            #expect(resumed.stdout.contains("\(step + 2)/\(step + 2)"))
        }
    }

    @Test("--resume accepts the checkpoint's own values given again, and only those (top-1 MoE of 1 expert)")
    func resumeRepeatsCheckpointValues() throws {
        try Self.withTemporaryDirectory { root in
            let out = root.appendingPathComponent("run").path
            let first = try Self.run(
                ["train", "--model", "moe-token", "--experts", "1", "--top-k", "1", "--data", Self.data, "--steps", "2", "--out", out]
                    + Self.tiny)
            #expect(first.status == 0, "stderr: \(first.stderr)")
            let again = try Self.run(["train", "--resume", "--experts", "1", "--data", Self.data, "--steps", "3", "--out", out])
            #expect(again.status == 0, "the default --top-k 2 must not be held against --experts 1: \(again.stderr)")
            let other = try Self.run(["train", "--resume", "--top-k", "2", "--data", Self.data, "--steps", "4", "--out", out])
            Self.expectRefused(other, naming: ["--top-k 2 given, but the checkpoint has --top-k 1"])
        }
    }

    /// The step of the run's checkpoint, from the name of its optimizer state.
    static func checkpointStep(_ run: URL) -> Int? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("optimizer-"), name.hasSuffix(".safetensors") else { return nil }
            return Int(name.dropFirst("optimizer-".count).dropLast(".safetensors".count))
        }.max()
    }
}

extension CLITests {
    /// Runs the executable with its stderr on a pseudo-terminal (as a user at a shell sees it) and
    /// returns what was drawn there; stdout is discarded.
    static func terminalStderr(_ arguments: [String]) throws -> (status: Int32, text: String) {
        let script = """
            import os, pty, subprocess, sys
            master, slave = pty.openpty()
            child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=slave)
            os.close(slave)
            drawn = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                drawn += chunk
            sys.stdout.write(drawn.decode("utf-8", "replace"))
            sys.exit(child.wait())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, try executable().path] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("on a terminal train and probe draw a progress line; --quiet draws none")
    func quietOnATerminal() throws {
        try Self.withTemporaryDirectory { root in
            let train = ["train", "--model", "dense", "--data", Self.data, "--steps", "3"] + Self.tiny
            let drawn = try Self.terminalStderr(train + ["--out", root.appendingPathComponent("a").path])
            #expect(drawn.status == 0 && drawn.text.contains("\u{1B}[K") && drawn.text.contains("step 3/3"), "\(drawn.text)")
            let quiet = try Self.terminalStderr(train + ["--out", root.appendingPathComponent("b").path, "--quiet"])
            #expect(quiet.status == 0 && quiet.text.isEmpty, "\(quiet.text)")
            let probe = [
                "probe", "--checkpoint", root.appendingPathComponent("a/model.safetensors").path, "--data", Self.data,
                "--tasks", "mlm", "--samples", "2", "--batch-size", "2",
            ]
            let probed = try Self.terminalStderr(probe + ["--out", root.appendingPathComponent("p.h5").path])
            #expect(probed.status == 0 && probed.text.contains("probe: mini-batch 2/2"), "\(probed.text)")
            let silent = try Self.terminalStderr(probe + ["--out", root.appendingPathComponent("q.h5").path, "--quiet"])
            #expect(silent.status == 0 && silent.text.isEmpty, "\(silent.text)")
        }
    }
}

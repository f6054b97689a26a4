import Foundation
import Testing

/// Bad input to every command, run as a user would: exit 2 with exactly one stderr line naming the
/// file or option, no output or stray temporary file left behind, and the inputs unchanged.
extension CLITests {
    /// A refusal: exit 2, one stderr line containing every string of `naming`.
    static func expectRefused(
        _ result: Result, naming: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == 2, "stdout: \(result.stdout) stderr: \(result.stderr)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 1 && result.stderr.hasSuffix("\n"), "not one line: \(result.stderr)", sourceLocation: sourceLocation)
        for text in naming {
            #expect(result.stderr.contains(text), "'\(text)' not named in: \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// Every entry below `folder` (hidden ones included) with its bytes, to prove a refused run
    /// left the folder exactly as it was.
    static func snapshot(_ folder: URL) -> [String: Data] {
        var files: [String: Data] = [:]
        let base = folder.resolvingSymlinksInPath().path
        guard let walker = FileManager.default.enumerator(atPath: base) else { return files }
        while let name = walker.nextObject() as? String {
            let path = base + "/" + name
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let isRegular = (attributes?[.type] as? FileAttributeType) == .typeRegular
            files[name] = isRegular ? (FileManager.default.contents(atPath: path) ?? Data()) : Data(name.utf8)
        }
        return files
    }

    /// Runs `arguments` in a state where they must be refused, and checks that nothing below
    /// `folder` changed (no output, no temporary file, every input byte for byte the same).
    static func expectRefusedUnchanged(
        _ arguments: [String], in folder: URL, naming: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = snapshot(folder)
        let result = try run(arguments)
        expectRefused(result, naming: naming, sourceLocation: sourceLocation)
        let after = snapshot(folder)
        #expect(
            Set(after.keys) == Set(before.keys), "files added \(Set(after.keys).subtracting(before.keys)), removed \(Set(before.keys).subtracting(after.keys))",
            sourceLocation: sourceLocation)
        for (name, bytes) in before where after[name] != bytes && after[name] != nil {
            Issue.record("\(name) changed", sourceLocation: sourceLocation)
        }
    }

    @Test("an error message is one line even when a file name holds a newline")
    func oneLineErrors() throws {
        try Self.withTemporaryDirectory { root in
            let odd = root.appendingPathComponent("two\nlines\r.h5").path
            let result = try Self.run(["check", "--baseline", odd, "--candidate", odd])
            Self.expectRefused(result, naming: [root.appendingPathComponent("two lines .h5").path])
        }
    }
}

extension CLITests {
    /// A tiny checkpoint, its probe file and interference file in a fresh folder, for `body`.
    static func withTinyAnalysis(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (_ root: URL, _ checkpoint: String, _ probe: String, _ analysis: String) throws -> Void
    ) throws {
        try withTinyRun(sourceLocation: sourceLocation) { root, checkpoint in
            let analysis = try probeAndAnalyze(checkpoint: checkpoint, in: root, name: "dense", seed: 0)
            let probe = root.appendingPathComponent("dense.probe.h5").path
            try body(root, checkpoint.path, probe, analysis.path)
        }
    }

    @Test("a FIFO, /dev/zero, a folder or a missing file as any input → 2 naming it at once, nothing written")
    func nonRegularInputs() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, analysis in
            let bad = root.appendingPathComponent("bad")
            try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
            let fifo = bad.appendingPathComponent("fifo.h5").path
            #expect(mkfifo(fifo, 0o644) == 0)
            let zero = bad.appendingPathComponent("zero.h5").path
            try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
            let folder = bad.appendingPathComponent("folder.h5").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            let missing = bad.appendingPathComponent("missing.h5").path
            let out = root.appendingPathComponent("out")
            let cases = [(fifo, "not a regular file"), (zero, "not a regular file"), (folder, "is a directory"), (missing, "does not exist")]
            for (path, reason) in cases {
                let commands: [[String]] = [
                    ["analyze", path, "--out", out.path + ".h5"],
                    ["probe", "--checkpoint", checkpoint, "--data", path, "--tasks", "mlm", "--out", out.path + ".h5"],
                    ["probe", "--checkpoint", path, "--data", Self.data, "--tasks", "mlm", "--out", out.path + ".h5"],
                    ["report", path, "--out", out.path + ".md"],
                    ["check", "--baseline", analysis, "--candidate", path],
                    ["check", "--baseline", path, "--candidate", analysis],
                    ["merge", path, "--out", out.path + ".h5"],
                    ["evaluate", "--checkpoint", checkpoint, "--data", path],
                    ["train", "--model", "dense", "--data", path, "--steps", "2", "--out", out.path],
                    ["diagnose", "--checkpoint", checkpoint, "--data", path, "--out", out.path],
                    ["diagnose", "--checkpoint", path, "--data", Self.data, "--out", out.path],
                    ["demo", "--data", path, "--out", out.path],
                    ["analyze", probe, "--lookahead", "1e-3", "--checkpoint", checkpoint, "--data", path, "--out", out.path + ".h5"],
                ]
                for arguments in commands {
                    let before = Self.snapshot(root)
                    let result = try Self.run(arguments, timeout: 10)
                    Self.expectRefused(result, naming: [path, reason])
                    #expect(Self.snapshot(root).keys == before.keys, "\(arguments) left files behind")
                }
            }
        }
    }
}

extension CLITests {
    @Test("--out naming an input (same path, symlink, '..', hard link) → 2 before any work, the input intact")
    func outputIsAnInput() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, analysis in
            let shards = (1...2).map { root.appendingPathComponent("shard-\($0).h5").path }
            for (k, shard) in shards.enumerated() {
                let made = try Self.run(
                    ["probe", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "mlm", "--samples", "4",
                     "--batch-size", "4", "--shard", "\(k + 1)/2", "--out", shard, "--quiet"])
                #expect(made.status == 0, "stderr: \(made.stderr)")
            }
            let data = root.appendingPathComponent("data.h5").path
            try FileManager.default.copyItem(atPath: Self.data, toPath: data)
            let link = root.appendingPathComponent("link.h5").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: probe)
            let hard = root.appendingPathComponent("hard.h5").path
            try FileManager.default.linkItem(atPath: analysis, toPath: hard)
            let dotted = root.appendingPathComponent("run/../dense.probe.h5").path
            let probing = ["probe", "--tasks", "mlm", "--samples", "2", "--batch-size", "4"]
            let cases: [([String], [String])] = [
                (probing + ["--checkpoint", checkpoint, "--data", data, "--out", data], [data, "--data"]),
                (probing + ["--checkpoint", checkpoint, "--data", data, "--out", checkpoint], [checkpoint, "--checkpoint"]),
                (["analyze", probe, "--bootstrap", "0", "--out", probe], [probe]),
                (["analyze", probe, "--bootstrap", "0", "--out", link], [link, probe]),
                (["analyze", probe, "--bootstrap", "0", "--out", dotted], [probe]),
                (["analyze", probe, "--lookahead", "1e-3", "--checkpoint", checkpoint, "--data", data, "--out", checkpoint],
                 [checkpoint, "--checkpoint"]),
                (["merge"] + shards + ["--out", shards[0]], [shards[0]]),
                (["report", analysis, "--out", analysis], [analysis]),
                (["report", analysis, "--out", hard], [hard, analysis]),
            ]
            for (arguments, naming) in cases {
                try Self.expectRefusedUnchanged(arguments, in: root, naming: naming + ["would overwrite the input"])
            }
            // Folder outputs: an input lying where the command writes one of its files.
            let folder = root.appendingPathComponent("folder")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let inside = folder.appendingPathComponent("report.md").path
            try FileManager.default.copyItem(atPath: Self.data, toPath: inside)
            try Self.expectRefusedUnchanged(
                ["diagnose", "--checkpoint", checkpoint, "--data", inside, "--tasks", "image-classification,mlm",
                 "--samples", "3", "--batch-size", "4", "--bootstrap", "0", "--out", folder.path],
                in: root, naming: [inside, "--data"])
            let demoData = folder.appendingPathComponent("dense.h5").path
            try FileManager.default.copyItem(atPath: Self.data, toPath: demoData)
            try Self.expectRefusedUnchanged(
                ["demo", "--data", demoData, "--out", folder.path, "--steps", "2", "--samples", "2", "--batch-size", "4",
                 "--bootstrap", "0", "--lookahead", "0"],
                in: root, naming: [demoData, "--data"])
        }
    }
}

extension CLITests {
    @Test("report: one label twice, a heatmap name that is an input or a folder, --out a folder or in a missing folder → 2, nothing written")
    func reportOutputs() throws {
        try Self.withTinyAnalysis { root, checkpoint, _, analysis in
            let other = try Self.probeAndAnalyze(checkpoint: URL(fileURLWithPath: checkpoint), in: root, name: "moe", seed: 3).path
            let out = root.appendingPathComponent("out")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let report = out.appendingPathComponent("report.md").path

            let twin = root.appendingPathComponent("twin.h5").path
            try FileManager.default.copyItem(atPath: analysis, toPath: twin)
            try Self.expectRefusedUnchanged(
                ["report", analysis, twin, "--out", report], in: root, naming: [analysis, twin, "'dense'"])

            // An input under the name of one of the heatmaps the report writes beside it.
            let heatmapNamed = out.appendingPathComponent("report-dense-encoder.layers.0.svg").path
            try FileManager.default.copyItem(atPath: analysis, toPath: heatmapNamed)
            try Self.expectRefusedUnchanged(
                ["report", heatmapNamed, "--out", report], in: root, naming: [heatmapNamed, "would overwrite the input"])
            try FileManager.default.removeItem(atPath: heatmapNamed)

            try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: false)
            try Self.expectRefusedUnchanged(["report", analysis, other, "--out", report], in: root, naming: [report, "is a directory"])
            try FileManager.default.removeItem(atPath: report)

            // The second run's heatmap is blocked by a folder: that file is named, and the first
            // run's heatmap is not left behind.
            let blocked = out.appendingPathComponent("report-moe-encoder.layers.0.svg").path
            try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
            try Self.expectRefusedUnchanged(["report", analysis, other, "--out", report], in: root, naming: [blocked, "is a directory"])
            try FileManager.default.removeItem(atPath: blocked)

            let nested = root.appendingPathComponent("new/sub/report.md").path
            try Self.expectRefusedUnchanged(["report", analysis, "--out", nested], in: root, naming: [nested, "does not exist"])

            let good = try Self.run(["report", analysis, other, "--out", report])
            #expect(good.status == 0, "stderr: \(good.stderr)")
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)) == [
                "report.md", "report-dense-encoder.layers.0.svg", "report-moe-encoder.layers.0.svg",
            ])
            // A second report in the same folder, with a run of the same label, keeps its own
            // heatmap: the first report's picture is not replaced by the other run's.
            let first = try Data(contentsOf: out.appendingPathComponent("report-moe-encoder.layers.0.svg"))
            let second = try Self.run(["report", other, "--out", out.appendingPathComponent("b.md").path])
            #expect(second.status == 0, "stderr: \(second.stderr)")
            #expect(try Data(contentsOf: out.appendingPathComponent("report-moe-encoder.layers.0.svg")) == first)
            let b = try String(contentsOf: out.appendingPathComponent("b.md"), encoding: .utf8)
            #expect(b.contains("](./b-moe-encoder.layers.0.svg)"), "\(b)")
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("b-moe-encoder.layers.0.svg").path))
        }
    }
}

extension CLITests {
    /// A copy of the two-task interference file `source` with its one 2×2 matrix I replaced by
    /// `matrix` (row-major), written through h5py: our datasets carry HDF5's Fletcher-32 checksum,
    /// which h5py writes anew and a raw byte patch would break (the file is then refused as damaged
    /// before its values are looked at).
    static func patchedInterference(_ source: String, matrix: [Double], to path: String) throws {
        let entries = matrix.map { "float('\($0)')" }  // 'inf', '-inf' and 'nan' parse as floats
        let rows = "[[\(entries[0]), \(entries[1])], [\(entries[2]), \(entries[3])]]"
        try editedCopy(
            of: source, to: path,
            """
            found = []
            f.visititems(lambda n, o: found.append(n) if n.endswith('/interference') and o.shape == (2, 2) else None)
            assert len(found) == 1, found
            f[found[0]][...] = \(rows)
            """)
    }

    @Test("check and report: files that cannot be compared are both named; ±∞ or a stray NaN → 2; a whole undefined row still compares")
    func unusableValues() throws {
        try Self.withTinyRun { root, checkpointFile in
            let plain = try Self.probeAndAnalyze(
                checkpoint: checkpointFile, in: root, name: "plain", seed: 0, samples: 8, batchSize: 8, bootstrap: 0).path
            let swapped = try Self.probeAndAnalyze(
                checkpoint: checkpointFile, in: root, name: "swapped", seed: 0, tasks: "mlm,image-classification", bootstrap: 0).path
            try Self.expectRefusedUnchanged(
                ["check", "--baseline", plain, "--candidate", swapped], in: root, naming: [plain, swapped, "tasks"])
            try Self.expectRefusedUnchanged(
                ["check", "--baseline", plain, "--candidate", plain, "--use-intervals"], in: root,
                naming: ["baseline \(plain)", "candidate \(plain)", "no bootstrap interval"])

            let infinite = root.appendingPathComponent("infinite.h5").path
            try Self.patchedInterference(plain, matrix: [1, .infinity, 0.5, 1], to: infinite)
            let stray = root.appendingPathComponent("stray-nan.h5").path
            try Self.patchedInterference(plain, matrix: [1, .nan, 0.5, 1], to: stray)
            let entry = "I[image-classification, mlm]"
            for bad in [infinite, stray] {
                try Self.expectRefusedUnchanged(
                    ["check", "--baseline", plain, "--candidate", bad], in: root, naming: [bad, "encoder.layers.0", entry])
                try Self.expectRefusedUnchanged(
                    ["check", "--baseline", bad, "--candidate", plain], in: root, naming: [bad, "encoder.layers.0", entry])
                try Self.expectRefusedUnchanged(
                    ["report", bad, "--out", root.appendingPathComponent("r.md").path], in: root,
                    naming: [bad, "encoder.layers.0", entry])
            }
            // A float type whose size and bit fields are sound but whose exponent bias is not
            // (byte damage did this to the CI baseline at stop 40): libhdf5 would read every value
            // as 0. Refused naming the dataset; so is a defined row whose diagonal is not 1.
            let biased = root.appendingPathComponent("biased.h5").path
            try Self.editedCopy(
                of: plain, to: biased,
                """
                found = []
                f.visititems(lambda n, o: found.append(n) if n.endswith('/interference') else None)
                values = f[found[0]][()]
                t = h5py.h5t.IEEE_F64LE.copy()
                t.set_ebias(1000)
                del f[found[0]]
                d = h5py.h5d.create(f.id, found[0].encode(), t, h5py.h5s.create_simple(values.shape))
                d.write(h5py.h5s.ALL, h5py.h5s.ALL, values)
                """)
            try Self.expectRefusedUnchanged(
                ["check", "--baseline", biased, "--candidate", plain], in: root,
                naming: [biased, "interference", "not a standard IEEE float"])
            let zeroDiagonal = root.appendingPathComponent("zero-diagonal.h5").path
            try Self.patchedInterference(plain, matrix: [0, 0.5, 0.5, 1], to: zeroDiagonal)
            try Self.expectRefusedUnchanged(
                ["check", "--baseline", zeroDiagonal, "--candidate", plain], in: root,
                naming: [zeroDiagonal, "I[image-classification, image-classification]", "exactly 1 on the diagonal"])
            // A row whose every denominator was flagged is NaN on purpose: still compared (moved
            // against a defined row, unchanged against itself) and reported.
            let undefined = root.appendingPathComponent("undefined-row.h5").path
            try Self.patchedInterference(plain, matrix: [.nan, .nan, 0.5, 1], to: undefined)
            #expect(try Self.run(["check", "--baseline", undefined, "--candidate", undefined, "--tolerance", "0"]).status == 0)
            #expect(try Self.run(["check", "--baseline", plain, "--candidate", undefined]).status == 1)
            let reported = try Self.run(["report", undefined, "--out", root.appendingPathComponent("undefined.md").path])
            #expect(reported.status == 0, "stderr: \(reported.stderr)")
        }
    }

    @Test("report: --groups naming nothing or a group twice, runs with no group in common → 2")
    func reportGroups() throws {
        try Self.withTinyAnalysis { root, _, probe, analysis in
            let roles = root.appendingPathComponent("roles.h5").path
            #expect(try Self.run(["analyze", probe, "--group-by", "role", "--bootstrap", "0", "--label", "roles", "--out", roles]).status == 0)
            let out = root.appendingPathComponent("r.md").path
            try Self.expectRefusedUnchanged(["report", analysis, roles, "--out", out], in: root, naming: [analysis, roles, "share no group"])
            for groups in ["", ",", " , ", "encoder.layers.0,encoder.layers.0", "encoder.layers.0,"] {
                try Self.expectRefusedUnchanged(["report", analysis, "--groups", groups, "--out", out], in: root, naming: ["--groups"])
            }
            try Self.expectRefusedUnchanged(
                ["report", analysis, "--groups", "encoder.layers.7", "--out", out], in: root,
                naming: ["--groups", "encoder.layers.7", analysis])
        }
    }

    @Test("report of an interference file with no groups → 2 naming it")
    func reportNoGroups() throws {
        try Self.withTinyAnalysis { root, _, _, analysis in
            let empty = root.appendingPathComponent("no-groups.h5").path
            try Self.editedCopy(of: analysis, to: empty, "for k in list(f['groups']): del f['groups'][k]")
            try Self.expectRefusedUnchanged(
                ["report", empty, "--out", root.appendingPathComponent("r.md").path], in: root, naming: [empty, "no groups"])
        }
    }

    @Test("a string changed behind the file format's back (damaged heap byte, h5py edit keeping the digest) → 2 naming the file and strings_sha256")
    func changedStringsAreRefused() throws {
        try Self.withTinyAnalysis { root, _, probe, analysis in
            // One letter of a task name, where HDF5's global heap keeps it: still valid UTF-8.
            let damaged = root.appendingPathComponent("damaged.h5").path
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: analysis)))
            let needle = Array("image-classification".utf8)
            let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
            bytes[at] = UInt8(ascii: "I")
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            try Self.expectRefusedUnchanged(
                ["report", damaged, "--out", root.appendingPathComponent("r.md").path], in: root,
                naming: [damaged, "strings_sha256", "damaged file"])
            let edited = root.appendingPathComponent("edited.probe.h5").path
            try Self.editedCopy(of: probe, to: edited, keepDigest: true, "f.attrs['split'] = 'validation'")
            try Self.expectRefusedUnchanged(
                ["analyze", edited, "--out", root.appendingPathComponent("a.h5").path], in: root,
                naming: [edited, "strings_sha256", "delete that attribute"])
        }
    }

    @Test("analyze of a probe listing a task or split this tool does not know, absurd samples, batch size 0, or a task's losses or examples of the wrong shape → 2 naming the file and the name")
    func analyzeUnknownTask() throws {
        try Self.withTinyAnalysis { root, _, probe, _ in
            let out = root.appendingPathComponent("a.h5").path
            // (copy, h5py edit of it, what the one-line refusal must name besides the file)
            let edits: [(name: String, edit: String, naming: String)] = [
                ("renamed", "t = [x.decode() if isinstance(x, bytes) else x for x in f.attrs['tasks']]\n"
                    + "f.attrs['tasks'] = [('segmentation' if x == 'mlm' else x).encode() for x in t]", "'segmentation'"),
                ("split", "f.attrs['split'] = 'holdout'", "'holdout'"),
                // Rows are tasks × samples: a value this large overflowed the count (a trap) before.
                ("huge", "f.attrs['samples_per_task'] = 2**62", "samples_per_task"),
                ("empty-batches", "f.attrs['batch_size'] = 0", "batch_size"),
                // A task's losses one short; its example indices one column short of the batch
                // size (read past their end, a trap, without the check).
                ("losses", "d = f['tasks/mlm/loss'][:-1]\ndel f['tasks/mlm/loss']\nf['tasks/mlm/loss'] = d",
                    "/tasks/mlm/loss"),
                ("examples", "d = f['tasks/mlm/examples'][:, :-1]\ndel f['tasks/mlm/examples']\n"
                    + "f['tasks/mlm/examples'] = d", "/tasks/mlm/examples"),
            ]
            for (name, edit, naming) in edits {
                let copy = root.appendingPathComponent("\(name).probe.h5").path
                try Self.editedCopy(of: probe, to: copy, edit)
                try Self.expectRefusedUnchanged(["analyze", copy, "--out", out], in: root, naming: [copy, naming])
            }
        }
    }

    /// One changed byte, found by flipping bytes of these committed files, each of which killed
    /// the command before (exit 139 or 132):
    /// - in a variable-length string's global-heap reference, which libhdf5 1.10 follows without a
    ///   bounds check (SIGSEGV): now read first in a child process (`HDF5Preflight`);
    /// - in an integer's type header (8 bytes → 137), which libhdf5 1.10 converts past its buffer
    ///   (SIGSEGV): now checked before reading (`checkNumericLayout`);
    /// - in `samples_per_task`'s type, which made the value huge and the row count overflow
    ///   (SIGILL): both are checked now;
    /// - in the images' chunk dimensions (4 → 36, past the dimension of 8), which libhdf5 1.10
    ///   reads past its buffer (SIGSEGV): storage is now checked against the shape first.
    /// Refused, whether the library crashes (in the child) or, once fixed upstream, fails the read.
    @Test("an HDF5 input with one damaged byte that crashed libhdf5 or overflowed a count → 2 naming it, nothing written")
    func crashingStrings() throws {
        let probe = Self.packageRoot.appendingPathComponent("Tests/InterferenceTests/Fixtures/probe_dense_demo.h5").path
        try Self.withTemporaryDirectory { root in
            func corrupted(_ source: String, at offset: Int, to value: UInt8, name: String) throws -> String {
                var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
                try #require(bytes[offset] != value)
                bytes[offset] = value
                let path = root.appendingPathComponent(name).path
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                return path
            }
            let out = root.appendingPathComponent("i.h5").path
            for (offset, value, named) in [(2761, UInt8(128), [String]()), (2667, 2, []), (1633, 128, ["damaged numeric type"])] {
                let bad = try corrupted(probe, at: offset, to: value, name: "probe-\(offset).h5")
                try Self.expectRefusedUnchanged(["analyze", bad, "--out", out], in: root, naming: [bad] + named)
                try Self.expectRefusedUnchanged(["merge", bad, "--out", out], in: root, naming: [bad] + named)
            }
            let baseline = Self.baseline.path
            let bad = try corrupted(baseline, at: 2382, to: 1, name: "baseline.h5")
            try Self.expectRefusedUnchanged(
                ["check", "--baseline", baseline, "--candidate", bad], in: root, naming: [bad])
            try Self.expectRefusedUnchanged(
                ["report", bad, "--out", root.appendingPathComponent("r.md").path], in: root, naming: [bad])
            let types = try corrupted(Self.data, at: 89745, to: 137, name: "digits-type.h5")
            let chunks = try corrupted(Self.data, at: 1703, to: 36, name: "digits-chunk.h5")
            try Self.withTinyRun { _, checkpoint in
                try Self.expectRefusedUnchanged(
                    ["evaluate", "--checkpoint", checkpoint.path, "--data", types], in: root, naming: [types, "/captions/tokens"])
                try Self.expectRefusedUnchanged(
                    ["evaluate", "--checkpoint", checkpoint.path, "--data", chunks], in: root, naming: [chunks, "/images"])
            }
        }
    }

    /// Copies `file` to `copy` and runs `body` on the copy with h5py (`f`, opened r+): files our own
    /// writers never make. The Makefile's `pydeps` installs h5py for `make test`. Unless
    /// `keepDigest`, the edit also deletes the `strings_sha256` our files record, as a user who
    /// edits one on purpose is told to (else the edited strings are refused as damaged).
    static func editedCopy(of file: String, to copy: String, keepDigest: Bool = false, _ body: String) throws {
        try FileManager.default.copyItem(atPath: file, toPath: copy)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let edit = keepDigest ? body : body + "\nif 'strings_sha256' in f.attrs: del f.attrs['strings_sha256']"
        let indented = edit.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        process.arguments = ["python3", "-c", "import h5py, sys\nwith h5py.File(sys.argv[1], 'r+') as f:\n" + indented, copy]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "h5py could not edit \(copy)")
    }
}

extension CLITests {
    @Test("diagnose: bad options or inputs → 2 before the folder is made; a later failure removes what the run made, never what was there")
    func diagnoseCleansUp() throws {
        try Self.withTinyRun { root, checkpointFile in
            let checkpoint = checkpointFile.path
            let garbage = root.appendingPathComponent("garbage.h5").path
            try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: garbage))
            let settings = ["--tasks", "image-classification,mlm", "--samples", "3", "--batch-size", "4", "--bootstrap", "0"]
            let fresh = root.appendingPathComponent("fresh/nested").path
            let existing = root.appendingPathComponent("existing")
            try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: true)
            try Data("keep me".utf8).write(to: existing.appendingPathComponent("notes.txt"))
            for out in [fresh, existing.path] {
                let cases: [([String], [String])] = [
                    (["--checkpoint", checkpoint, "--data", Self.data, "--tasks", "mlm,foo"], ["--tasks", "'foo'"]),
                    (["--checkpoint", checkpoint, "--data", Self.data, "--samples", "1"], ["--samples"]),
                    (["--checkpoint", garbage, "--data", Self.data], [garbage]),
                    (["--checkpoint", checkpoint, "--data", garbage], [garbage]),
                    // Found only by the probe, after the folder was made.
                    (["--checkpoint", checkpoint, "--data", Self.data, "--batch-size", "100000"], ["batch size 100000"]),
                ]
                for (arguments, naming) in cases {
                    try Self.expectRefusedUnchanged(
                        ["diagnose", "--out", out] + settings + arguments, in: root, naming: naming)
                }
            }
        }
    }
}

extension CLITests {
    @Test("demo: every bad option → 2 naming it before anything is trained or written")
    func demoOptions() throws {
        try Self.withTemporaryDirectory { root in
            let out = root.appendingPathComponent("demo").path
            let quick = [
                "--data", Self.data, "--out", out, "--steps", "2", "--samples", "2", "--batch-size", "4", "--bootstrap", "0",
                "--lookahead", "0", "--lookahead-sweep", "",
            ]
            let cases: [([String], String)] = [
                (["--experts", "1"], "--experts"), (["--experts", "0"], "--experts"), (["--tasks", "mlm,foo"], "--tasks"),
                (["--samples", "1"], "--samples"), (["--steps", "0"], "--steps"), (["--batch-size", "0"], "--batch-size"),
                (["--lookahead-samples", "0"], "--lookahead-samples"),
                (["--lookahead", "-1e-3"], "--lookahead"), (["--lookahead-sweep", "0"], "--lookahead-sweep"),
                // Look-ahead options with the check off, or asking for more than --samples 2 gives.
                (["--lookahead-method", "difference"], "--lookahead-method"),
                (["--lookahead", "1e-3", "--lookahead-samples", "3"], "--lookahead-samples 3"),
                (["--lookahead", "1e-3", "--lookahead-steps", "2"], "--lookahead-steps 2"),
            ]
            for (arguments, option) in cases {
                try Self.expectRefusedUnchanged(["demo"] + quick + arguments, in: root, naming: [option])
            }
            let file = root.appendingPathComponent("a-file").path
            try Data().write(to: URL(fileURLWithPath: file))
            try Self.expectRefusedUnchanged(["demo"] + quick + ["--out", file], in: root, naming: [file, "must be a folder"])
        }
    }
}

extension CLITests {
    @Test("an output that is a FIFO or a device → 2 naming it, the node left as it was; a folder taking no files → 2 before any work")
    func nonRegularOutputs() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, analysis in
            let fifo = root.appendingPathComponent("fifo.out").path
            #expect(mkfifo(fifo, 0o644) == 0)
            let device = root.appendingPathComponent("null.out").path
            try FileManager.default.createSymbolicLink(atPath: device, withDestinationPath: "/dev/null")
            let probing = ["probe", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "mlm", "--samples", "2", "--batch-size", "2"]
            for out in [fifo, device] {
                for arguments in [
                    probing + ["--out", out],
                    ["analyze", probe, "--bootstrap", "0", "--out", out],
                    ["merge", probe, "--out", out],
                    ["report", analysis, "--out", out],
                    ["train", "--model", "dense", "--data", Self.data, "--steps", "2", "--out", root.appendingPathComponent("run").path, "--curves", out] + Self.tiny,
                ] {
                    try Self.expectRefusedUnchanged(arguments, in: root, naming: [out, "not a regular file"])
                }
                // …and as a folder output: a device or FIFO is not called "a file".
                try Self.expectRefusedUnchanged(
                    ["train", "--model", "dense", "--data", Self.data, "--steps", "2", "--out", out] + Self.tiny,
                    in: root, naming: [out, "must be a folder, and this is not a regular file"])
            }
            // A file a folder output writes (diagnose's report.md) that is a FIFO: refused as well,
            // before the probe runs (the probe.h5 it would write first is not made).
            let folder = root.appendingPathComponent("diagnosis")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
            let reportFIFO = folder.appendingPathComponent("report.md").path
            #expect(mkfifo(reportFIFO, 0o644) == 0)
            try Self.expectRefusedUnchanged(
                ["diagnose", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "image-classification,mlm",
                 "--samples", "2", "--batch-size", "2", "--bootstrap", "0", "--out", folder.path],
                in: root, naming: [reportFIFO, "--out exists and is not a regular file"])
            var info = stat()
            #expect(stat(reportFIFO, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
            #expect(stat(fifo, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
            #expect(lstat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)
            for arguments in [
                probing + ["--out", "/proc/p.h5"], ["analyze", probe, "--bootstrap", "0", "--out", "/sys/i.h5"],
                ["diagnose", "--checkpoint", checkpoint, "--data", Self.data, "--out", "/proc/diagnosis"],
            ] {
                try Self.expectRefusedUnchanged(arguments, in: root, naming: ["cannot write --out"])
            }
        }
    }

    @Test("train --curves: a missing folder, '', a folder, the data or a run file → 2 before training; in the new run folder → 0")
    func trainCurves() throws {
        try Self.withTemporaryDirectory { root in
            let data = root.appendingPathComponent("data.h5").path
            try FileManager.default.copyItem(atPath: Self.data, toPath: data)
            let run = root.appendingPathComponent("run")
            let train = ["train", "--model", "dense", "--data", data, "--steps", "3", "--out", run.path] + Self.tiny
            let cases: [(String, [String])] = [
                (root.appendingPathComponent("nope/curves.svg").path, ["nope", "does not exist"]),
                ("", ["--curves", "empty"]),
                (root.path, [root.path, "directory"]),
                (data, [data, "would overwrite the input"]),
                (run.appendingPathComponent("model.safetensors").path, ["model.safetensors"]),
                // A folder that takes no new files (for root too): found before training, not after.
                ("/proc/curves.svg", ["/proc/curves.svg", "cannot write --curves"]),
            ]
            for (curves, naming) in cases {
                try Self.expectRefusedUnchanged(train + ["--curves", curves], in: root, naming: naming)
            }
            let curves = run.appendingPathComponent("curves.svg")
            let good = try Self.run(train + ["--curves", curves.path])
            #expect(good.status == 0, "stderr: \(good.stderr)")
            #expect(FileManager.default.fileExists(atPath: curves.path))
        }
    }
}

extension CLITests {
    @Test("a negative number reaches the checks: the message names the option and what it must be, not 'Missing value'")
    func negativeNumbers() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, analysis in
            let out = root.appendingPathComponent("out").path
            let probing = ["probe", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "mlm", "--out", out]
            let training = ["train", "--model", "dense", "--data", Self.data, "--steps", "2", "--out", out]
            let diagnosing = ["diagnose", "--checkpoint", checkpoint, "--data", Self.data, "--out", out]
            let demo = ["demo", "--data", Self.data, "--out", out]
            let lookAhead = ["--lookahead", "1e-3", "--checkpoint", checkpoint, "--data", Self.data]
            let cases: [([String], String, String)] = [
                (probing, "--samples", "at least 2"), (probing, "--batch-size", "positive"),
                (probing, "--seed", "non-negative"),
                (["analyze", probe, "--out", out], "--bootstrap", "0 (no intervals) or 2"),
                (["analyze", probe, "--out", out], "--seed", "non-negative"),
                (["analyze", probe, "--out", out, "--checkpoint", checkpoint, "--data", Self.data], "--lookahead", "> 0"),
                (["analyze", probe, "--out", out] + lookAhead, "--lookahead-samples", "positive"),
                (["analyze", probe, "--out", out] + lookAhead, "--lookahead-steps", "positive"),
                (["check", "--baseline", analysis, "--candidate", analysis], "--tolerance", "non-negative"),
                (["evaluate", "--checkpoint", checkpoint, "--data", Self.data], "--batch-size", "positive"),
                (["evaluate", "--checkpoint", checkpoint, "--data", Self.data], "--masking-seed", "non-negative"),
                (training, "--steps", "positive"), (training, "--seed", "non-negative"), (training, "--lr", "positive"),
                (training, "--warmup", "negative"), (training, "--width", "positive"), (training, "--top-k", "1 or 2"),
                (diagnosing, "--samples", "at least 2"), (diagnosing, "--bootstrap", "0 (no intervals) or 2"),
                (diagnosing, "--seed", "non-negative"),
                (demo, "--steps", "positive"), (demo, "--experts", "at least 2"), (demo, "--lookahead", "λ > 0"),
                (demo, "--seed", "non-negative"),
            ]
            for (command, option, reason) in cases {
                let result = try Self.run(command + [option, "-1"])
                Self.expectRefused(result, naming: [option, reason])
                #expect(!result.stderr.contains("Missing value"), "\(command) \(option): \(result.stderr)")
            }
            // One replicate is not an interval: a zero-width "95 %" one would mark every value †.
            for command in [["analyze", probe, "--out", out], diagnosing, demo] {
                Self.expectRefused(try Self.run(command + ["--bootstrap", "1"]), naming: ["--bootstrap", "got 1"])
            }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}

extension CLITests {
    @Test("--memory-budget that is not a byte count → 2 naming the option, not another command")
    func memoryBudget() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, _ in
            let out = root.appendingPathComponent("out.h5").path
            for command in [
                ["merge", probe, "--out", out],
                ["probe", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "mlm", "--out", out],
            ] {
                for budget in ["x", "-1", "1PiB"] {
                    let result = try Self.run(command + ["--memory-budget", budget])
                    Self.expectRefused(result, naming: ["--memory-budget", "'\(budget)' is not a byte count"])
                    #expect(!result.stderr.contains("probe:"), "\(result.stderr)")
                }
                let huge = try Self.run(command + ["--memory-budget", "9000000TiB"])
                Self.expectRefused(huge, naming: ["--memory-budget", "'9000000TiB' is more bytes than a machine can address"])
            }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}

extension CLITests {
    /// A batch scheduler stops jobs with SIGTERM (or SIGHUP); an interactive user with SIGINT. The
    /// probe then exits with 128 + the signal, as by default, and leaves neither its output nor the
    /// hidden temporary file it was writing.
    @Test("SIGTERM, SIGHUP or SIGINT during a probe or a diagnose → 128 + signal, and no file or folder left behind")
    func signalsRemoveUnfinishedOutputs() throws {
        try Self.withTinyRun { root, checkpoint in
            let long = ["--tasks", "image-classification,mlm", "--samples", "2000", "--batch-size", "4"]
            for number in [SIGTERM, SIGHUP, SIGINT] {
                let folder = root.appendingPathComponent("out-\(number)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                // diagnose makes its own folder inside `folder`; a stopped run must remove it again.
                let diagnose = folder.appendingPathComponent("d")
                for (arguments, writing) in [
                    (["probe", "--checkpoint", checkpoint.path, "--data", Self.data, "--quiet", "--out",
                      folder.appendingPathComponent("p.h5").path] + long, folder),
                    (["diagnose", "--checkpoint", checkpoint.path, "--data", Self.data, "--out", diagnose.path] + long, diagnose),
                ] {
                    let process = try Self.launcher(arguments)
                    process.standardError = FileHandle.nullDevice
                    process.standardOutput = FileHandle.nullDevice
                    try process.run()
                    // Wait until the command is writing a temporary file, then stop it.
                    let deadline = Date().addingTimeInterval(60)
                    var started = false
                    while Date() < deadline, process.isRunning, !started {
                        started = ((try? FileManager.default.contentsOfDirectory(atPath: writing.path)) ?? []).contains { $0.contains(".tmp-") }
                        if !started { Thread.sleep(forTimeInterval: 0.005) }
                    }
                    try #require(started, "\(arguments[0]), signal \(number): never started writing")
                    kill(process.processIdentifier, number)
                    process.waitUntilExit()
                    #expect(
                        process.terminationReason == .exit && process.terminationStatus == 128 + number,
                        "\(arguments[0]), signal \(number): \(process.terminationReason) \(process.terminationStatus)")
                    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [], "\(arguments[0]), signal \(number)")
                }
            }
        }
    }
}

extension CLITests {
    /// A full disk or a quota (here a file-size limit) fails writes with EFBIG. Every command must
    /// then exit 2 with one line, and leave no output, temporary file or orphaned training log
    /// (HDF5's exit-time cleanup used to crash on the half-closed file; the training log's write
    /// trapped).
    @Test("results that cannot reach stdout (closed, or a full device) → 2 naming standard output, not 0 or 1")
    func lostStandardOutput() throws {
        try Self.withTinyRun { root, checkpoint in
            let evaluate = ["evaluate", "--checkpoint", checkpoint.path, "--data", Self.data]
            let shown = try Self.run(evaluate)
            try #require(shown.status == 0 && shown.stdout.contains("accuracy"), "stderr: \(shown.stderr)")
            let probe = root.appendingPathComponent("probe.h5").path
            let made = try Self.run(
                ["probe", "--checkpoint", checkpoint.path, "--data", Self.data, "--tasks", "image-classification,mlm",
                 "--samples", "2", "--batch-size", "2", "--out", probe])
            try #require(made.status == 0, "stderr: \(made.stderr)")
            let analysis = root.appendingPathComponent("interference.h5").path
            let analyzed = try Self.run(["analyze", probe, "--bootstrap", "0", "--out", analysis])
            try #require(analyzed.status == 0, "stderr: \(analyzed.stderr)")
            let unchanged = ["check", "--baseline", analysis, "--candidate", analysis, "--tolerance", "0"]
            // A check that fails (exit 1) and whose table is lost is a lost result too: 2, not 1.
            let reseeded = root.appendingPathComponent("reseeded.h5").path
            let other = root.appendingPathComponent("other.h5").path
            for arguments in [
                ["probe", "--checkpoint", checkpoint.path, "--data", Self.data, "--tasks", "image-classification,mlm",
                 "--samples", "2", "--batch-size", "2", "--seed", "7", "--out", reseeded],
                ["analyze", reseeded, "--bootstrap", "0", "--out", other],
            ] {
                let made = try Self.run(arguments)
                try #require(made.status == 0, "\(arguments[0]): \(made.stderr)")
            }
            let moved = ["check", "--baseline", analysis, "--candidate", other, "--tolerance", "0"]
            try #require(try Self.run(moved).status == 1)
            for (arguments, reason) in [
                (evaluate + ["--json"], "No space left on device"), (unchanged, "No space left on device"),
            ] {
                let lost = try Self.run(arguments, standardOutput: .full)
                #expect(lost.status == 2, "\(arguments[0]): \(lost.stderr)")
                #expect(lost.stderr == "error: standard output: cannot write the results: \(reason)\n")
            }
            let lostMoved = try Self.run(moved, standardOutput: .full)
            #expect(lostMoved.status == 2, "\(lostMoved.stderr)")
            #expect(lostMoved.stderr.hasSuffix("\nerror: standard output: cannot write the results: No space left on device\n"))
            let closed = try Self.run(evaluate, standardOutput: .closed)
            #expect(closed.status == 2)
            #expect(closed.stderr == "error: standard output: cannot write the results: it was closed\n")
            // A command whose results are a file keeps its status and the file, with a warning;
            // the file equals one written with stdout open.
            let again = root.appendingPathComponent("again.h5").path
            let quiet = try Self.run(["analyze", probe, "--bootstrap", "0", "--out", again], standardOutput: .closed)
            #expect(quiet.status == 0)
            #expect(quiet.stderr == "warning: standard output: cannot write: it was closed\n")
            let written = try Data(contentsOf: URL(fileURLWithPath: analysis))
            let rewritten = try Data(contentsOf: URL(fileURLWithPath: again))
            #expect(written.count == rewritten.count && !String(decoding: rewritten, as: UTF8.self).contains("wrote "))
        }
    }

    @Test("a temporary file a killed run left beside an output → a warning naming it; the run succeeds and leaves it")
    func abandonedTemporaryWarned() throws {
        try Self.withTinyAnalysis { root, _, probe, _ in
            let out = root.appendingPathComponent("again.h5")
            let process = try Self.launcher(["analyze", probe, "--bootstrap", "0", "--out", out.path])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // Whether or not the kill came before the temporary file: one left by a gone process.
            let left = root.appendingPathComponent(".again.h5.tmp-\(process.processIdentifier)-00000000000000aa")
            try Data(count: 2_000_000).write(to: left)
            let result = try Self.run(["analyze", probe, "--bootstrap", "0", "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("warning: \(left.path): 2.0 MB left by a write whose process is not running here"), "\(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: left.path) && FileManager.default.fileExists(atPath: out.path))
        }
    }

    @Test("temporary files a killed run left in a training folder → one warning each (every output's); training succeeds and leaves them")
    func abandonedTemporariesOfARunWarned() throws {
        try Self.withTemporaryDirectory { root in
            let folder = root.appendingPathComponent("run")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let finished = Process()
            finished.executableURL = URL(fileURLWithPath: "/bin/true")
            try finished.run()
            finished.waitUntilExit()
            let gone = finished.processIdentifier
            // The model's and an optimizer state's, as a run killed while checkpointing leaves them.
            let left = [".model.safetensors.tmp-\(gone)-00000000000000ab", ".optimizer-00000002.safetensors.tmp-\(gone)-00000000000000cd"]
                .map { folder.appendingPathComponent($0) }
            for (file, bytes) in zip(left, [1200, 3_500_000]) { try Data(count: bytes).write(to: file) }
            let result = try Self.run(
                ["train", "--model", "dense", "--data", Self.data, "--steps", "2", "--quiet", "--out", folder.path] + Self.tiny)
            #expect(result.status == 0, "\(result.stderr)")
            let warnings = result.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
            #expect(warnings.count == 2, "\(result.stderr)")
            #expect(result.stderr.contains("warning: \(left[0].path): 1200 bytes left by a write whose process is not running here"), "\(result.stderr)")
            #expect(result.stderr.contains("warning: \(left[1].path): 3.5 MB left by a write whose process is not running here"), "\(result.stderr)")
            #expect(left.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path))
        }
    }

    @Test("a full disk during probe, analyze or train → 2, one line, nothing left behind")
    func fullDisk() throws {
        try Self.withTinyAnalysis { root, checkpoint, probe, _ in
            let folder = root.appendingPathComponent("full")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let commands: [(String, [String])] = [
                ("probe", ["probe", "--checkpoint", checkpoint, "--data", Self.data, "--tasks", "image-classification,mlm",
                           "--samples", "4", "--batch-size", "4", "--quiet", "--out", folder.appendingPathComponent("p.h5").path]),
                ("analyze", ["analyze", probe, "--bootstrap", "5", "--out", folder.appendingPathComponent("i.h5").path]),
                ("train", ["train", "--model", "dense", "--data", Self.data, "--steps", "3", "--out",
                           folder.appendingPathComponent("run").path] + Self.tiny),
            ]
            for (name, arguments) in commands {
                for limit in [0, 4096] {
                    let result = try Self.run(arguments, timeout: 120, fileSizeLimit: limit)
                    #expect(result.status == 2, "\(name), limit \(limit): \(result.status) \(result.stderr)")
                    let lines = result.stderr.split(separator: "\n")
                    #expect(lines.count == 1, "\(name), limit \(limit): \(result.stderr)")
                    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [], "\(name), limit \(limit)")
                }
            }
        }
    }
}

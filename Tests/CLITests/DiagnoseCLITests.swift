import Foundation
import Testing

/// `diagnose` run as a user would: probe, analyze and report into one folder (with the exact
/// look-ahead check on request), and bad requests → exit 2 with one line naming the file, nothing
/// written.
extension CLITests {
    @Test("diagnose: probe.h5, interference.h5 and report.md in one folder, --lookahead included; bad requests → 2")
    func diagnose() throws {
        try Self.withTinyRun { root, checkpointFile in
            let checkpoint = checkpointFile.path
            let settings = [
                "--data", Self.data, "--tasks", "image-classification,mlm", "--samples", "3", "--batch-size", "4",
                "--bootstrap", "0",
            ]
            let out = root.appendingPathComponent("diagnosis")
            let good = try Self.run(
                ["diagnose", "--checkpoint", checkpoint, "--out", out.path, "--lookahead", "1e-3",
                 "--lookahead-samples", "2", "--lookahead-steps", "1"] + settings)
            #expect(good.status == 0, "stderr: \(good.stderr)")
            #expect(good.stdout.contains("look-ahead encoder.layers.0: λ = 0.001, 8 pairs"), "\(good.stdout)")
            for name in ["probe.h5", "interference.h5", "report.md"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "no \(name)")
            }
            let markdown = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(markdown.contains("## encoder.layers.0"))
            #expect(markdown.contains("## Look-ahead check") && markdown.contains("| 0.001 | 8 |"))
            #expect(!markdown.contains("## Routing"), "a dense checkpoint has no routing table")
            // With intervals, shown whole on request (the later --bootstrap overrides the settings').
            let bracketed = root.appendingPathComponent("bracketed")
            let bracket = try Self.run(
                ["diagnose", "--checkpoint", checkpoint, "--out", bracketed.path] + settings
                    + ["--bootstrap", "20", "--intervals", "bracket"])
            #expect(bracket.status == 0, "stderr: \(bracket.stderr)")
            let bracketText = try String(contentsOf: bracketed.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(bracketText.contains("Cells: `value [low, high]`.") && !bracketText.contains(" ± "), "\(bracketText)")

            func expectRefused(_ arguments: [String], naming file: String, _ reason: String) throws {
                let bad = root.appendingPathComponent("bad")
                let result = try Self.run(["diagnose", "--out", bad.path] + arguments + settings)
                #expect(result.status == 2, "\(arguments): stdout \(result.stdout)")
                #expect(result.stderr.contains(file) && result.stderr.contains(reason), "\(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: bad.appendingPathComponent("report.md").path))
                #expect(!FileManager.default.fileExists(atPath: bad.appendingPathComponent("probe.h5").path))
            }
            // Option mistakes name the option, not a file.
            try expectRefused(["--checkpoint", checkpoint, "--intervals", "sideways"], naming: "--intervals", "sideways")
            try expectRefused(["--checkpoint", checkpoint, "--lookahead", "0"], naming: "--lookahead", "finite λ > 0")
            try expectRefused(
                ["--checkpoint", checkpoint, "--lookahead-samples", "0", "--lookahead", "1e-3"], naming: "--lookahead-samples", "positive")
            try expectRefused(["--checkpoint", checkpoint, "--lookahead-steps", "2"], naming: "--lookahead-steps", "needs --lookahead")
            // More than --samples 3 can give: refused, not quietly reduced.
            try expectRefused(
                ["--checkpoint", checkpoint, "--lookahead", "1e-3", "--lookahead-samples", "4"], naming: "--lookahead-samples 4", "--samples 3")
            try expectRefused(
                ["--checkpoint", checkpoint, "--lookahead", "1e-3", "--lookahead-steps", "3"], naming: "--lookahead-steps 3", "at most 2")
            let missing = root.appendingPathComponent("missing.safetensors").path
            try expectRefused(["--checkpoint", missing], naming: missing, "does not exist")
        }
    }

    @Test("diagnose an MoE checkpoint: the report adds its routing table, measured on the probe's mini-batches; report on its interference file prints it too")
    func diagnoseMoE() throws {
        try Self.withTemporaryDirectory { root in
            let checkpoint = try Self.trainTinyMoE(into: root.appendingPathComponent("moe"))
            let out = root.appendingPathComponent("diagnosis")
            let result = try Self.run(
                ["diagnose", "--checkpoint", checkpoint.path, "--data", Self.data,
                 "--tasks", "image-classification,mlm", "--samples", "2", "--batch-size", "2", "--bootstrap", "0",
                 "--label", "tiny-moe", "--out", out.path])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let markdown = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(markdown.contains("## Routing"))
            #expect(markdown.contains("**tiny-moe** — routing: attribute, 2 experts."), "\(markdown)")
            // One row per layer, decision, task and segment, both experts' shares and both entropies.
            let rows = markdown.split(separator: "\n").filter { $0.hasPrefix("| 0 | ") }
            for decision in ["attention", "ffn"] {
                for task in ["image-classification", "mlm"] {
                    #expect(rows.contains { $0.hasPrefix("| 0 | \(decision) | \(task) | input 0 |") }, "\(rows)")
                }
            }
            #expect(rows.allSatisfy { $0.split(separator: "|").count == 8 }, "\(rows)")
            // The table is in the files too: `report` on the interference file prints the same section.
            let again = root.appendingPathComponent("again.md")
            let report = try Self.run(["report", out.appendingPathComponent("interference.h5").path, "--out", again.path])
            #expect(report.status == 0, "stderr: \(report.stderr)")
            let fromFile = try String(contentsOf: again, encoding: .utf8)
            let section = { (text: String) in text.components(separatedBy: "## Routing").last ?? "" }
            #expect(fromFile.contains("## Routing") && section(fromFile) == section(markdown), "\(fromFile)")
        }
    }

    /// A shard of an MoE run written before probe files stored the routing table (made here by
    /// deleting `/routing` with h5py): the merge still succeeds, but its file must carry no table of
    /// part of the run, and the user is told which shard lacks one. The same shards unedited merge
    /// with the table.
    @Test("merge: an MoE shard without /routing → merged with no table and a note naming the shard")
    func mergeShardWithoutRoutingTable() throws {
        try Self.withTemporaryDirectory { root in
            let checkpoint = try Self.trainTinyMoE(into: root.appendingPathComponent("moe"))
            let shards = try (1...2).map { k in
                let shard = root.appendingPathComponent("shard\(k).h5").path
                let probe = try Self.run(
                    ["probe", "--checkpoint", checkpoint.path, "--data", Self.data,
                     "--tasks", "image-classification,mlm", "--samples", "2", "--batch-size", "2", "--shard", "\(k)/2",
                     "--out", shard])
                #expect(probe.status == 0, "stderr: \(probe.stderr)")
                return shard
            }
            let old = root.appendingPathComponent("old-shard2.h5").path
            try Self.editedCopy(of: shards[1], to: old, "del f['routing']")
            /// Merges `inputs`, analyses and reports the result; returns merge's stdout and the report.
            func mergedReport(_ inputs: [String], name: String) throws -> (merge: String, report: String) {
                let merged = root.appendingPathComponent("\(name).h5").path
                let merge = try Self.run(["merge"] + inputs + ["--out", merged])
                #expect(merge.status == 0, "stderr: \(merge.stderr)")
                let analysis = root.appendingPathComponent("\(name).interference.h5").path
                let analyze = try Self.run(["analyze", merged, "--bootstrap", "0", "--out", analysis])
                #expect(analyze.status == 0, "stderr: \(analyze.stderr)")
                let report = root.appendingPathComponent("\(name).md")
                let reported = try Self.run(["report", analysis, "--out", report.path])
                #expect(reported.status == 0, "stderr: \(reported.stderr)")
                return (merge.stdout, try String(contentsOf: report, encoding: .utf8))
            }
            let whole = try mergedReport(shards, name: "merged")
            #expect(whole.report.contains("## Routing") && !whole.merge.contains("note:"), "\(whole)")
            let mixed = try mergedReport([shards[0], old], name: "mixed")
            #expect(!mixed.report.contains("## Routing"), "\(mixed.report)")
            #expect(mixed.merge.contains("note: \(old) holds no routing table"), "\(mixed.merge)")
            #expect(!mixed.merge.contains(shards[0]), "\(mixed.merge)")
        }
    }
}

extension CLITests {
    /// Issue 5's non-finite gradient, met from the one-shot command: without the flag `diagnose`
    /// stops naming the task, the mini-batch and the flag that exists there; with it the mini-batches
    /// are excluded and the report lists them.
    @Test("diagnose: a non-finite mini-batch stops it naming --skip-nonfinite; with the flag it is excluded and reported")
    func diagnoseSkipsNonFinite() throws {
        try Self.withTinyRun { root, checkpoint in
            // Two columns of the patch projection at 1.8e38: an image whose two pixels there are both
            // bright overflows to ∞ (then NaN); an image dark at either does not.
            let planted = root.appendingPathComponent("planted.safetensors").path
            let plant = """
                import sys
                from safetensors import safe_open
                from safetensors.numpy import save_file
                with safe_open(sys.argv[1], "np") as f:
                    meta = f.metadata(); tensors = {k: f.get_tensor(k) for k in f.keys()}
                w = tensors["video_embed.embeddings.weight"].copy(); w[:, [0, 3]] = 1.8e38
                tensors["video_embed.embeddings.weight"] = w
                meta.pop("tensors_sha256", None)
                save_file(tensors, sys.argv[2], metadata=meta)
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", plant, checkpoint.path, planted]
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "python's safetensors could not write \(planted)")
            let settings = [
                "diagnose", "--checkpoint", planted, "--data", Self.data, "--tasks", "image-classification,mlm",
                "--samples", "10", "--batch-size", "2", "--bootstrap", "0",
            ]
            let stopped = root.appendingPathComponent("stopped")
            try Self.expectRefusedUnchanged(
                settings + ["--out", stopped.path], in: root,
                naming: ["task image-classification, mini-batch", "non-finite", "--skip-nonfinite"])
            let skipped = root.appendingPathComponent("skipped")
            let result = try Self.run(settings + ["--out", skipped.path, "--skip-nonfinite"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let report = try String(contentsOf: skipped.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(report.contains("mini-batch indices excluded from every task for non-finite gradients"), "\(report)")
        }
    }
}

extension CLITests {
    /// The paper's Table 1 tensor from the one-shot command: `--parameters` with one glob that
    /// selects W2 of each layer, experts included, so one request serves the dense and the MoE
    /// checkpoint; a glob that selects nothing is refused naming it.
    @Test("diagnose --parameters: W2 per layer for dense and MoE alike; a glob matching nothing → 2")
    func diagnoseParameters() throws {
        try Self.withTinyRun { root, dense in
            let moe = try Self.trainTinyMoE(into: root.appendingPathComponent("moe-run"))
            let settings = [
                "--data", Self.data, "--tasks", "image-classification,mlm", "--samples", "3", "--batch-size", "4",
                "--bootstrap", "0", "--parameters", "encoder.layers.*.ffn.dense2.*weight",
            ]
            for (name, checkpoint, members) in [
                ("dense", dense, ["`encoder.layers.0.ffn.dense2.weight`"]),
                ("moe", moe, ["`encoder.layers.0.ffn.dense2.experts.0.weight`", "`encoder.layers.0.ffn.dense2.experts.1.weight`"]),
            ] {
                let out = root.appendingPathComponent(name)
                let result = try Self.run(["diagnose", "--checkpoint", checkpoint.path, "--out", out.path] + settings)
                #expect(result.status == 0, "stderr: \(result.stderr)")
                let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
                let line = try #require(report.split(separator: "\n").first { $0.hasPrefix("Parameters:") })
                for member in members { #expect(line.contains(member), "\(line)") }
                #expect(!line.contains("bias") && !line.contains("dense.weight") && !line.contains("gate"), "\(line)")
            }
            try Self.expectRefusedUnchanged(
                ["diagnose", "--checkpoint", dense.path, "--data", Self.data, "--out", root.appendingPathComponent("none").path,
                 "--parameters", "encoder.layers.*.ffn.dense3.*weight"],
                in: root, naming: ["encoder.layers.*.ffn.dense3.*weight"])
        }
    }
}

extension CLITests {
    /// `demo` end to end at toy sizes: both models trained, probed and reported, each whole layer and
    /// W2 alone per layer (the paper's Table 1 tensor: the dense `ffn.dense2.weight`, every expert's
    /// in the MoE), all in the report and in both interference files.
    @Test("demo at toy sizes: whole layers and W2 per layer for dense and MoE, in the report and the files")
    func demoReportsLayersAndW2() throws {
        try Self.withTemporaryDirectory { root in
            let out = root.appendingPathComponent("demo")
            let result = try Self.run(
                ["demo", "--data", Self.data, "--out", out.path, "--steps", "2", "--samples", "3", "--batch-size", "4",
                 "--bootstrap", "0", "--lookahead", "0", "--tasks", "image-classification,mlm"], timeout: 300)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            for group in ["encoder.layers.0", "encoder.layers.1", "encoder.layers.0.ffn.dense2", "encoder.layers.1.ffn.dense2"] {
                #expect(report.contains("\n## \(group)\n"), "no section \(group)")
                for run in ["dense", "moe"] {
                    #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("report-\(run)-\(group).svg").path))
                }
            }
            let lines = report.split(separator: "\n")
            let w2 = try #require(lines.firstIndex { $0 == "## encoder.layers.1.ffn.dense2" })
            let parameters = try #require(lines[w2...].first { $0.hasPrefix("Parameters:") })
            #expect(
                parameters.contains("dense: `encoder.layers.1.ffn.dense2.weight`")
                    && parameters.contains("`encoder.layers.1.ffn.dense2.experts.0.weight`")
                    && !parameters.contains("bias"), "\(parameters)")
        }
    }
}

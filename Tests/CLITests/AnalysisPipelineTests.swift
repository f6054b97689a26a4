import Foundation
import Testing

/// `analyze`, `report` and `check` on a tiny model, run as a user would (issue 5 items 3, 5, 6).
extension CLITests {
    /// Tiny train → probe (N = 3, B = 4) → analyze; returns the run folder.
    static func probeAndAnalyze(
        checkpoint: URL, in root: URL, name: String, seed: Int, tasks: String = "image-classification,mlm",
        samples: Int = 3, batchSize: Int = 4, bootstrap: Int = 20
    ) throws -> URL {
        let probe = root.appendingPathComponent("\(name).probe.h5")
        let probed = try run(
            ["probe", "--checkpoint", checkpoint.path, "--data", data,
             "--tasks", tasks, "--samples", "\(samples)", "--batch-size", "\(batchSize)",
             "--seed", "\(seed)", "--out", probe.path, "--quiet"])
        #expect(probed.status == 0, "stderr: \(probed.stderr)")
        let analysis = root.appendingPathComponent("\(name).h5")
        let analyzed = try run(
            ["analyze", probe.path, "--group-by", "layer", "--bootstrap", "\(bootstrap)", "--seed", "1",
             "--label", name, "--out", analysis.path])
        #expect(analyzed.status == 0, "stderr: \(analyzed.stderr)")
        return analysis
    }

    @Test("train → probe → analyze → report → check against itself → 0; a perturbed candidate → 1; not HDF5 → 2")
    func analyzeReportCheck() throws {
        try Self.withTinyRun { root, checkpoint in
            let baseline = try Self.probeAndAnalyze(checkpoint: checkpoint, in: root, name: "dense", seed: 0)

            let reportURL = root.appendingPathComponent("report/report.md")
            // report writes into a folder that exists, as probe, analyze and merge do.
            try FileManager.default.createDirectory(
                at: reportURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            let report = try Self.run(["report", baseline.path, "--out", reportURL.path])
            #expect(report.status == 0, "stderr: \(report.stderr)")
            let markdown = try String(contentsOf: reportURL, encoding: .utf8)
            #expect(markdown.contains("encoder.layers.0") && markdown.contains("image-classification"))
            let files = try FileManager.default.contentsOfDirectory(atPath: reportURL.deletingLastPathComponent().path)
            #expect(files.contains { $0.hasSuffix(".svg") })
            #expect(markdown.contains("Cells: `value ± half-width of the interval`."), "\(markdown)")
            // The intervals whole on request; an unknown style → 2, naming the option, nothing written.
            let bracketURL = root.appendingPathComponent("report/bracket.md")
            let bracket = try Self.run(["report", baseline.path, "--intervals", "bracket", "--out", bracketURL.path])
            #expect(bracket.status == 0, "stderr: \(bracket.stderr)")
            let bracketText = try String(contentsOf: bracketURL, encoding: .utf8)
            #expect(bracketText.contains("Cells: `value [low, high]`.") && !bracketText.contains(" ± "), "\(bracketText)")
            let unknownURL = root.appendingPathComponent("report/unknown.md")
            let unknown = try Self.run(["report", baseline.path, "--intervals", "sideways", "--out", unknownURL.path])
            #expect(unknown.status == 2 && unknown.stderr.contains("--intervals"), "stderr: \(unknown.stderr)")
            #expect(!FileManager.default.fileExists(atPath: unknownURL.path))

            let same = try Self.run(["check", "--baseline", baseline.path, "--candidate", baseline.path, "--tolerance", "0"])
            #expect(same.status == 0, "stderr: \(same.stderr)")
            #expect(same.stdout.contains("within tolerance"))

            let perturbed = try Self.probeAndAnalyze(checkpoint: checkpoint, in: root, name: "perturbed", seed: 7)
            let moved = try Self.run(
                ["check", "--baseline", baseline.path, "--candidate", perturbed.path, "--tolerance", "0"])
            #expect(moved.status == 1, "stdout: \(moved.stdout) stderr: \(moved.stderr)")
            #expect(moved.stdout.contains("| group |"))

            // Three runs: each later one also minus the first, one heatmap per run and layer.
            let other = try Self.probeAndAnalyze(checkpoint: checkpoint, in: root, name: "other", seed: 3)
            let three = root.appendingPathComponent("report/three.md")
            let threeRuns = try Self.run(["report", baseline.path, perturbed.path, other.path, "--out", three.path])
            #expect(threeRuns.status == 0, "stderr: \(threeRuns.stderr)")
            let text = try String(contentsOf: three, encoding: .utf8)
            #expect(text.contains("perturbed − dense: mlm") && text.contains("other − dense: mlm"), "\(text)")
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("report/three-other-encoder.layers.0.svg").path))

            // The committed demo's MoE run holds two values outside their own intervals: checked
            // against itself with intervals it still passes (identical runs never regress).
            let demo = Self.packageRoot.appendingPathComponent("reports/demo/moe.h5").path
            let demoItself = try Self.run(["check", "--baseline", demo, "--candidate", demo, "--use-intervals", "--tolerance", "0"])
            #expect(demoItself.status == 0, "stdout: \(demoItself.stdout) stderr: \(demoItself.stderr)")

            let garbage = root.appendingPathComponent("garbage.h5")
            try Data("not hdf5".utf8).write(to: garbage)
            let bad = try Self.run(["check", "--baseline", baseline.path, "--candidate", garbage.path])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains(garbage.path))
            #expect(bad.stderr.split(separator: "\n").count == 1)
            let badAnalyze = try Self.run(["analyze", garbage.path, "--out", root.appendingPathComponent("x.h5").path])
            #expect(badAnalyze.status == 2 && badAnalyze.stderr.contains(garbage.path))
        }
    }
}

extension CLITests {
    /// `analyze --parameters` narrows the probe's tensors before grouping: W2 alone per layer
    /// (`layer-role`) is the paper's Table 1 tensor, and for the dense model it is the same single
    /// tensor `--group-by parameter` analyses, so the two files print the same matrix; a glob that
    /// matches nothing → 2 naming it.
    @Test("analyze --parameters W2 --group-by layer-role: the paper's tensor per layer; a glob matching nothing → 2")
    func analyzePaperTensor() throws {
        try Self.withTinyRun { root, checkpoint in
            _ = try Self.probeAndAnalyze(checkpoint: checkpoint, in: root, name: "dense", seed: 0)
            let probe = root.appendingPathComponent("dense.probe.h5").path
            let w2 = root.appendingPathComponent("w2.h5").path
            let narrowed = try Self.run(
                ["analyze", probe, "--parameters", "encoder.layers.*.ffn.dense2.*weight", "--group-by", "layer-role",
                 "--bootstrap", "0", "--out", w2])
            #expect(narrowed.status == 0, "stderr: \(narrowed.stderr)")
            let single = root.appendingPathComponent("single.h5").path
            let perTensor = try Self.run(
                ["analyze", probe, "--parameters", "encoder.layers.0.ffn.dense2.weight", "--group-by", "parameter",
                 "--bootstrap", "0", "--out", single])
            #expect(perTensor.status == 0, "stderr: \(perTensor.stderr)")
            func table(_ file: String, _ group: String) throws -> [Substring] {
                let out = root.appendingPathComponent(UUID().uuidString + ".md").path
                let made = try Self.run(["report", file, "--out", out])
                #expect(made.status == 0, "stderr: \(made.stderr)")
                let text = try String(contentsOfFile: out, encoding: .utf8)
                #expect(text.contains("## \(group)"), "\(text)")
                #expect(text.contains("Parameters: `encoder.layers.0.ffn.dense2.weight`."), "\(text)")
                let lines = text.split(separator: "\n")
                let start = try #require(lines.firstIndex { $0.hasPrefix("| loss ↓ / step →") })
                return Array(lines[(start + 2)...(start + 3)])
            }
            #expect(try table(w2, "encoder.layers.0.ffn.dense2") == table(single, "encoder.layers.0.ffn.dense2.weight"))
            try Self.expectRefusedUnchanged(
                ["analyze", probe, "--parameters", "*.ffn.dense3.*", "--out", root.appendingPathComponent("none.h5").path],
                in: root, naming: [probe, "--parameters '*.ffn.dense3.*' matches none"])
        }
    }
}

import Foundation
import Testing

/// `analyze --lookahead λ` run as a user would: a working check, and every bad request → exit 2 with
/// one line naming the file.
extension CLITests {
    @Test("analyze --lookahead: exact beside first-order; no --checkpoint, no stored rows, λ ≤ 0, another checkpoint → 2")
    func lookAhead() throws {
        try Self.withTinyRun { root, checkpointFile in
            let checkpoint = checkpointFile.path
            func probe(_ name: String, store: Bool) throws -> String {
                let url = root.appendingPathComponent(name).path
                let probed = try Self.run(
                    ["probe", "--checkpoint", checkpoint, "--data", Self.data,
                     "--tasks", "image-classification,mlm", "--samples", "3", "--batch-size", "4",
                     "--out", url, "--quiet"] + (store ? ["--store-gradients"] : []))
                #expect(probed.status == 0, "stderr: \(probed.stderr)")
                return url
            }
            let rows = try probe("rows.probe.h5", store: true)
            let grams = try probe("grams.probe.h5", store: false)
            let out = root.appendingPathComponent("out.h5").path
            let source = ["--checkpoint", checkpoint, "--data", Self.data]

            let good = try Self.run(
                ["analyze", rows, "--bootstrap", "0", "--lookahead", "1e-3", "--lookahead-samples", "2",
                 "--lookahead-steps", "1", "--out", out] + source)
            #expect(good.status == 0, "stderr: \(good.stderr)")
            #expect(good.stdout.contains("look-ahead encoder.layers.0: λ = 0.001, 8 pairs"))
            let report = root.appendingPathComponent("report.md")
            let reported = try Self.run(["report", out, "--out", report.path])
            #expect(reported.status == 0, "stderr: \(reported.stderr)")
            let markdown = try String(contentsOf: report, encoding: .utf8)
            #expect(markdown.contains("## Look-ahead check") && markdown.contains("| 0.001 | 8 | difference |"))

            // The integral method, asked for by name, is recorded and reported as such.
            let integral = try Self.run(
                ["analyze", rows, "--bootstrap", "0", "--lookahead", "1e-3", "--lookahead-samples", "2",
                 "--lookahead-steps", "1", "--lookahead-method", "integral", "--out", out] + source)
            #expect(integral.status == 0, "stderr: \(integral.stderr)")
            #expect(integral.stdout.contains("λ = 0.001, 8 pairs (integral)"), "\(integral.stdout)")

            func expectRefused(_ arguments: [String], naming file: String, _ reason: String) throws {
                let result = try Self.run(["analyze"] + arguments + ["--out", root.appendingPathComponent("bad.h5").path])
                #expect(result.status == 2, "\(arguments): stdout \(result.stdout)")
                #expect(result.stderr.contains(file) && result.stderr.contains(reason), "\(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("bad.h5").path))
            }
            try expectRefused([rows, "--lookahead", "1e-3"], naming: rows, "needs --checkpoint and --data")
            try expectRefused(
                [rows, "--lookahead", "1e-3", "--checkpoint", checkpoint], naming: rows, "needs --checkpoint and --data")
            try expectRefused([grams, "--lookahead", "1e-3"] + source, naming: grams, "--store-gradients")
            try expectRefused([rows, "--lookahead", "0"] + source, naming: "--lookahead", "finite λ > 0")
            try expectRefused([rows, "--lookahead=-1"] + source, naming: "--lookahead", "finite λ > 0")
            try expectRefused([rows, "--lookahead", "inf"] + source, naming: "--lookahead", "finite λ > 0")
            // Look-ahead options without --lookahead would run no check and say nothing.
            try expectRefused([rows, "--lookahead-method", "integral"], naming: "--lookahead-method", "needs --lookahead")
            try expectRefused([rows, "--lookahead-samples", "2"], naming: "--lookahead-samples", "needs --lookahead")
            try expectRefused([rows] + source, naming: "--checkpoint", "look-ahead")
            // More samples than the probe has (3 per task): refused, not quietly reduced.
            try expectRefused(
                [rows, "--lookahead", "1e-3", "--lookahead-samples", "4"] + source, naming: rows, "--lookahead-samples 4")
            try expectRefused(
                [rows, "--lookahead", "1e-3", "--lookahead-steps", "3"] + source, naming: rows, "at most 2")
            let unknownMethod = try Self.run(
                ["analyze", rows, "--lookahead", "1e-3", "--lookahead-method", "secant"] + source
                    + ["--out", root.appendingPathComponent("bad.h5").path])
            #expect(unknownMethod.status == 2 && unknownMethod.stderr.contains("'secant'"), "\(unknownMethod.stderr)")
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("bad.h5").path))
            // A step so large the loss overflows: the message says which command, not "probe:".
            let huge = try Self.run(
                ["analyze", rows, "--bootstrap", "0", "--lookahead", "1e30", "--out", root.appendingPathComponent("huge.h5").path]
                    + source)
            #expect(huge.status == 2 && huge.stderr.hasPrefix("error: analyze: --lookahead: ") && huge.stderr.contains("smaller λ"), "\(huge.stderr)")
            // A checkpoint other than the one probed: named, with the probe it does not match.
            let otherCheckpoint = try Self.trainTiny(into: root.appendingPathComponent("other"), steps: 4).path
            try expectRefused(
                [rows, "--lookahead", "1e-3", "--checkpoint", otherCheckpoint, "--data", Self.data],
                naming: otherCheckpoint, "SHA-256 differs")
        }
    }
}

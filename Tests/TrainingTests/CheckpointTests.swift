import Foundation
import Kernels
import Storage
import TestSupport
import Testing
import Training
import UniPerceiver

/// Checkpoints: bit-identical round trip, Python interoperability both ways, and every kind of
/// bad file refused with a typed error that names the file and the first offending tensor.
@Suite struct CheckpointTests {
    let config = ModelConfig(
        hiddenSize: 16, numLayers: 2, numHeads: 2, ffnSize: 32, imageSize: 4, patchSize: 2,
        channels: 1, vocabSize: 12, maxTextLength: 6)

    func batch() -> Batch {
        var rng = SeededRNG(seed: 4)
        let images = Tensor.gaussian([2, 1, 4, 4], rng: &rng)
        return .captioning(images: images, captions: [[1, 2, 8], [3, 8]])
    }

    @Test("save → load → forward gives bit-identical losses")
    func roundTrip() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try Model(config: config, seed: 9)
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url)
        #expect(loaded.config == model.config)
        #expect(loaded.parameters == model.parameters)
        #expect(try loaded.loss(batch()).bitPattern == model.loss(batch()).bitPattern)
    }

    /// A checkpoint records the SHA-256 of its tensor bytes, so a damaged weight is refused on load
    /// instead of loading as another number (109 of 400 damaged checkpoints changed `evaluate`'s
    /// output unnoticed before, `reports/robustness.md`).
    @Test("a damaged weight in a saved checkpoint is refused on load")
    func damagedWeightRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(try Model(config: config, seed: 9), to: url)
        #expect(try SafeTensors.read(url).metadata[SafeTensors.checksumKey] != nil)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[bytes.count - 3] ^= 0x01  // the lowest mantissa bit of a byte of the last weight
        try Data(bytes).write(to: url)
        #expect(throws: (any Error).self) { try Checkpoint.load(url) }
    }

    @Test("Python's safetensors package reads what we write, value for value")
    func pythonReadsOurFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try Model(config: config, seed: 10)
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(model, to: url)
        let entry = model.table.entries[3]
        let script = """
            import json, sys
            from safetensors import safe_open
            with safe_open(sys.argv[1], framework="numpy") as f:
                meta = f.metadata()
                t = f.get_tensor(sys.argv[2])
                print(json.dumps({"keys": len(list(f.keys())), "shape": list(t.shape), "sum": float(t.astype("float64").sum()),
                                  "config": json.loads(meta["config"])["hidden_size"]}))
            """
        let output = try runPython(script, arguments: [url.path, entry.name])
        let reply = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        #expect(reply?["keys"] as? Int == model.table.entries.count)
        #expect(reply?["shape"] as? [Int] == entry.shape)
        #expect(reply?["config"] as? Int == 16)
        let sum = model.parameters[entry.range].reduce(0.0) { $0 + Double($1) }
        #expect(abs((reply?["sum"] as? Double ?? .nan) - sum) <= 1e-9 * max(1, abs(sum)))
    }

    @Test("a checkpoint written by Python loads")
    func pythonWrittenCheckpointLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("UniPerceiverTests/Fixtures/dense_tiny.safetensors")
        let model = try Checkpoint.load(url)
        #expect(model.config.hiddenSize == 16)
        #expect(model.parameters.count == model.table.totalCount)
    }

    /// `make bench` is not run by CI, and its harness writes checkpoints of its own: stop 38 found that
    /// the loader had refused its MoE checkpoint's metadata since 2026-12-06. Its writer, run here on the
    /// same configurations shrunk to a tiny width, must produce files this loader accepts.
    @Test("the benchmark harness's checkpoints load")
    func benchmarkHarnessCheckpointsLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks").path
        let script = """
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import run_bench
            run_bench.CONFIGS = [(key, label, dict(shape, hidden_size=16, ffn_size=32, num_layers=2, num_heads=2), batch)
                                 for key, label, shape, batch in run_bench.CONFIGS]
            setups = run_bench.write_inputs(sys.argv[2])
            print(json.dumps({key: [setup[0].get("routing", "none"), setup[1]] for key, setup in setups.items()}))
            """
        let reply = try runPython(script, arguments: [benchmarks, directory.path])
        let written = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: [String]] ?? [:]
        #expect(written.keys.sorted() == ["a", "b", "c", "d"])
        for (key, value) in written.sorted(by: { $0.key < $1.key }) {
            let model = try Checkpoint.load(URL(fileURLWithPath: value[1]))
            #expect(model.config.routing.rawValue == value[0], "config (\(key))")
            #expect(model.config.hiddenSize == 16, "config (\(key))")
        }
    }

    /// Issue 4's bad input: a checkpoint whose expert tensors disagree with its configuration's
    /// expert count is refused naming both counts, not one gate's shape.
    @Test("an expert count that disagrees with the configuration is named")
    func expertCountDisagrees() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var moe = config
        moe.routing = .attribute
        moe.numExperts = 2
        let model = try Model(config: moe, seed: 3)
        let entries = model.table.entries.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: Array(model.parameters[$0.range]))
        }
        var four = moe
        four.numExperts = 4
        let dense = try Model(config: config, seed: 3)
        let denseEntries = dense.table.entries.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: Array(dense.parameters[$0.range]))
        }
        let cases: [(String, [SafeTensorsEntry], ModelConfig, [String])] = [
            ("four", entries, four, ["2 experts per MoE linear", "num_experts is 4"]),
            ("dense", entries, config, ["2 experts per MoE linear", "configuration is dense"]),
            ("none", denseEntries, four, ["no expert tensors", "num_experts is 4"]),
        ]
        for (name, tensors, claimed, naming) in cases {
            let url = directory.appendingPathComponent("\(name).safetensors")
            try Data(SafeTensors.encode(tensors, metadata: ["config": claimed.jsonString()])).write(to: url)
            do {
                _ = try Checkpoint.load(url)
                Issue.record("\(name): loaded")
            } catch {
                for text in naming + [url.path] {
                    #expect(error.description.contains(text), "\(name): '\(text)' not in: \(error.description)")
                }
            }
        }
    }

    enum Damage: String, CaseIterable {
        case truncated, malformedHeader, offsetsOutsideFile, unknownDType, missingTensor
        case unexpectedTensor, wrongShape, nonFiniteWeight, infiniteWeight
        case otherFormat, otherVersion, kindContradictsConfig, routingContradictsConfig
    }

    @Test("bad checkpoints are refused with the file and the offending tensor", arguments: Damage.allCases)
    func badCheckpoint(damage: Damage) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try Model(config: config, seed: 11)
        let url = directory.appendingPathComponent("bad.safetensors")
        var entries = model.table.entries.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: Array(model.parameters[$0.range]))
        }
        var metadata = ["config": config.jsonString()]
        let first = entries[0].name
        var expectedTensor: String? = first
        switch damage {
        case .nonFiniteWeight, .infiniteWeight:
            let entry = model.table.entries[2]
            var values = Array(model.parameters[entry.range])
            values[values.count - 1] = damage == .nonFiniteWeight ? .nan : -.infinity
            entries[2] = SafeTensorsEntry(name: entry.name, shape: entry.shape, floats: values)
            expectedTensor = entry.name
        case .otherFormat, .otherVersion, .kindContradictsConfig, .routingContradictsConfig:
            let (key, value) = [
                Damage.otherFormat: ("format", "someone-else/checkpoint"), .otherVersion: ("version", "2"),
                .kindContradictsConfig: ("kind", "moe"), .routingContradictsConfig: ("routing", "attribute"),
            ][damage]!
            metadata[key] = value
            expectedTensor = key  // the message names the metadata key
        case .missingTensor:
            entries.remove(at: 0)
        case .unexpectedTensor:
            entries.append(SafeTensorsEntry(name: "encoder.layers.9.extra", shape: [2], floats: [1, 2]))
            expectedTensor = "encoder.layers.9.extra"
        case .wrongShape:
            entries[0] = SafeTensorsEntry(name: first, shape: [1, entries[0].shape.reduce(1, *)], floats: Array(model.parameters[model.table.entries[0].range]))
        default:
            break
        }
        var bytes = SafeTensors.encode(entries, metadata: metadata)
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        switch damage {
        case .truncated:
            bytes.removeLast(100)
            expectedTensor = nil
        case .malformedHeader:
            bytes[8] = UInt8(ascii: "x")
            expectedTensor = nil
        case .offsetsOutsideFile:
            // Point the first tensor's data_offsets far beyond the buffer (same header length).
            var header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
            let range = try #require(header.range(of: "\"data_offsets\":[0,"))
            header.replaceSubrange(range, with: "\"data_offsets\":[9,")
            let end = try #require(header.range(of: "]", range: range.upperBound..<header.endIndex))
            let digits = header[range.upperBound..<end.lowerBound]
            header.replaceSubrange(range.upperBound..<end.lowerBound, with: String(repeating: "9", count: digits.count))
            bytes.replaceSubrange(8..<(8 + headerLength), with: Array(header.utf8))
        case .unknownDType:
            var header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
            let range = try #require(header.range(of: "\"F32\""))
            header.replaceSubrange(range, with: "\"Q32\"")
            bytes.replaceSubrange(8..<(8 + headerLength), with: Array(header.utf8))
        default:
            break
        }
        try Data(bytes).write(to: url)
        do {
            _ = try Checkpoint.load(url)
            Issue.record("\(damage.rawValue): a damaged checkpoint loaded")
        } catch {
            let message = error.description
            #expect(message.contains(url.path), "\(damage.rawValue): message does not name the file: \(message)")
            if let expectedTensor {
                #expect(message.contains(expectedTensor), "\(damage.rawValue): message does not name \(expectedTensor): \(message)")
            }
        }
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ti-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `python3 -c script args…` and returns its stdout; a failure to start or a non-zero exit
/// fails the caller (the Makefile installs Python's safetensors for `make test`).
func runPython(_ script: String, arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw PythonFailure(message: String(decoding: errors, as: UTF8.self))
    }
    return String(decoding: data, as: UTF8.self)
}

struct PythonFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { "python3 failed: \(message)" }
}

import Datasets
import Foundation
import Kernels
import Storage
import Training
import UniPerceiver

@testable import GradientProbe

/// The bundled dataset, a tiny model fitted to it, and a checkpoint of that model in a fresh folder.
struct ProbeFixture {
    static let dataURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("notebooks-data/digits.h5")

    static let dataset: DigitsDataset = {
        do { return try DigitsDataset.load(dataURL) } catch { fatalError("\(error)") }
    }()

    /// D = 16, 2 layers, 8×8 single-channel images in 4 patches, the dataset's vocabulary.
    /// γ = 0.5 instead of the paper's 1e-3 so that the encoder's gradients are clearly non-zero.
    static let config: ModelConfig = {
        let data = dataset
        let longest = (data.corpus + data.captions + data.classNames).map(\.count).max() ?? 1
        return ModelConfig(
            hiddenSize: 16, numLayers: 2, numHeads: 2, ffnSize: 32, imageSize: data.imageSize,
            patchSize: 4, channels: data.channels, vocabSize: data.vocabulary.count,
            maxTextLength: longest, layerScaleInit: 0.5)
    }()

    static func model(seed: UInt64 = 11) -> Model {
        do { return try Model(config: config, seed: seed) } catch { fatalError("\(error)") }
    }

    /// An attribute-routed MoE sibling of ``config`` (8 experts, top-1): most experts get no
    /// mini-batch, so their gradient rows are all zero.
    static func moeModel(seed: UInt64 = 12) throws -> Model {
        var moe = config
        moe.routing = .attribute
        moe.numExperts = 8
        moe.topK = 1
        return try Model(config: moe, seed: seed)
    }

    static let tasks: [TaskKind] = [.imageClassification, .mlm, .captioning]

    let directory: URL
    let checkpoint: URL

    init(model: Model = ProbeFixture.model()) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("GradientProbeTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        checkpoint = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(model, to: checkpoint)
    }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// Every name in the folder, hidden ones included (catches stray temporary files).
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    /// N = 4 mini-batches of B = 4 per task, three tasks: 12 rows.
    static func options(
        seed: UInt64 = 5, parameters: [String] = ParameterSelection.defaultPatterns,
        storeGradients: Bool = false, shard: ShardSpec? = nil,
        memoryBudget: Int = ProbeOptions.defaultMemoryBudget, skipNonFinite: Bool = false
    ) -> ProbeOptions {
        ProbeOptions(
            tasks: tasks, samplesPerTask: 4, batchSize: 4, seed: seed,
            parameters: ParameterSelection(patterns: parameters), storeGradients: storeGradients,
            shard: shard, memoryBudget: memoryBudget, skipNonFinite: skipNonFinite)
    }

    @discardableResult
    func probe(_ name: String, _ options: ProbeOptions) throws -> ProbeSummary {
        try Probe.run(checkpoint: checkpoint, data: Self.dataURL, options: options, out: file(name))
    }
}

/// `R·Rᵀ` of Float rows by plain Double loops (the reference for the Gram).
func naiveGram(_ rows: [Float], count: Int, width: Int) -> [Double] {
    var gram = [Double](repeating: 0, count: count * count)
    for a in 0..<count {
        for b in 0..<count {
            var sum = 0.0
            for k in 0..<width { sum += Double(rows[a * width + k]) * Double(rows[b * width + k]) }
            gram[a * count + b] = sum
        }
    }
    return gram
}

/// Largest |x − y| / max(|y|, floor) over two equal-length arrays.
func maxRelativeError(_ x: [Double], _ y: [Double], floor: Double) -> Double {
    zip(x, y).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0
}

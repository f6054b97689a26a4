import Kernels
import TestSupport
@testable import UniPerceiver

/// The configuration of the committed fixtures (Fixtures/README.md).
let tinyConfig = ModelConfig(
    hiddenSize: 16, numLayers: 2, numHeads: 2, ffnSize: 64, imageSize: 4, patchSize: 2,
    channels: 2, vocabSize: 20, maxTextLength: 8, layerScaleInit: 1e-3)

/// `tinyConfig` routed by `routing` (dense for `.none`) over `experts` experts, top-`topK`, in `layers`.
func tinyConfig(routing: Routing, experts: Int = 4, topK: Int = 2, layers: MoELayers = .all) -> ModelConfig {
    var config = tinyConfig
    config.routing = routing
    if routing != .none {
        config.numExperts = experts
        config.topK = topK
        config.moeLayers = layers
    }
    return config
}

/// A tiny model whose weights are scaled so every gradient is clearly non-zero (the paper's γ of
/// 1e-3 would make the encoder's gradients vanish next to the head's), like the fixture weights.
func randomizedModel(
    seed: UInt64, logScales: [Float] = [2.659, 2.0, 3.0, 4.8], config: ModelConfig = tinyConfig
) -> Model {
    var model = try! Model(config: config, seed: seed)
    var rng = SeededRNG(seed: seed &+ 1)
    for entry in model.table.entries {
        let name = entry.name
        for i in entry.range {
            let g = Float(rng.nextGaussian())
            if name.hasSuffix("residual_scale") {
                model.parameters[i] = 0.5 + 0.2 * g
            } else if name.contains("LayerNormModules") || name.contains("_norm.") || name.contains("ln_post") {
                model.parameters[i] = name.hasSuffix("weight") ? 1 + 0.2 * g : 0.1 * g
            } else if name.hasSuffix("bias") {
                model.parameters[i] = 0.1 * g
            } else if name.contains("embeddings.weight") || name.contains("pos") || name.contains("token_type") {
                model.parameters[i] = 0.5 * g
            } else if !name.hasPrefix("predictor.logit_scale") {
                model.parameters[i] = 0.3 * g
            }
        }
    }
    for (task, value) in zip(TaskKind.allCases, logScales) {
        let entry = model.table.entry(named: "predictor." + ParameterLayout.logitScaleName(task))!
        model.parameters[entry.offset] = value
    }
    return model
}

/// A random batch of `task` for the tiny configuration: 3 examples, variable text lengths.
func randomBatch(_ task: TaskKind, seed: UInt64, config: ModelConfig = tinyConfig) -> Batch {
    var rng = SeededRNG(seed: seed)
    let B = 3
    let images = Tensor.gaussian([B, config.channels, config.imageSize, config.imageSize], rng: &rng)
    let regular = config.vocabSize - 5
    func text(_ length: Int) -> [Int] { (0..<(length - 1)).map { _ in rng.nextInt(below: regular) } + [config.eotId] }
    switch task {
    case .imageClassification:
        let names = (0..<4).map { k in text(2 + k % 3) }
        return .imageClassification(images: images, labels: [0, 3, 1], classNames: names)
    case .mlm:
        var tokens: [[Int]] = []
        var labels: [[Int]] = []
        for b in 0..<B {
            var row = text(4 + b)
            var label = [Int](repeating: -1, count: row.count)
            for t in [1, 2 + b % 2] {
                label[t] = row[t]
                row[t] = t == 1 ? config.speId : rng.nextInt(below: regular)
            }
            tokens.append(row)
            labels.append(label)
        }
        return .mlm(tokens: tokens, labels: labels)
    case .captioning:
        return .captioning(images: images, captions: [text(3), text(5), text(2)])
    case .retrieval:
        return .retrieval(images: images, captions: [text(4), text(2), text(5)])
    }
}

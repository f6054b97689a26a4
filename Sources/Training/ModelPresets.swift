import Datasets
import UniPerceiver

/// Named model shapes for the bundled data. Image size, channels, vocabulary and text length come
/// from the dataset; the preset fixes width, depth, heads, FFN width and patch size.
public enum ModelPreset: String, CaseIterable, Sendable {
    /// The demo model (Sources/Training/README.md, "Demo configuration").
    case small
    /// For tests and smoke runs: trains a few steps in well under a second in a debug build.
    case tiny

    public var shape: ModelShape {
        switch self {
        case .small: ModelShape(hiddenSize: 64, numLayers: 2, numHeads: 4, ffnSize: 256, patchSize: 2)
        case .tiny: ModelShape(hiddenSize: 16, numLayers: 1, numHeads: 2, ffnSize: 32, patchSize: 4)
        }
    }
}

/// The part of a `ModelConfig` the user chooses.
public struct ModelShape: Sendable, Equatable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var ffnSize: Int
    public var patchSize: Int

    public init(hiddenSize: Int, numLayers: Int, numHeads: Int, ffnSize: Int, patchSize: Int) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.ffnSize = ffnSize
        self.patchSize = patchSize
    }
}

public enum ModelPresets {
    /// The longest token sequence of the dataset (class names, captions, corpus), EOT included.
    public static func longestSequence(_ dataset: DigitsDataset) -> Int {
        (dataset.classNames + dataset.captions + dataset.corpus).map(\.count).max() ?? 0
    }

    /// A validated configuration of `shape` for `dataset`.
    /// - Throws: `TrainingError.config` when the shape does not divide (width by heads, image by patch…).
    public static func config(_ shape: ModelShape, for dataset: DigitsDataset) throws(TrainingError) -> ModelConfig {
        let config = ModelConfig(
            hiddenSize: shape.hiddenSize, numLayers: shape.numLayers, numHeads: shape.numHeads,
            ffnSize: shape.ffnSize, imageSize: dataset.imageSize, patchSize: shape.patchSize,
            channels: dataset.channels, vocabSize: dataset.vocabulary.count,
            maxTextLength: longestSequence(dataset))
        do { try config.validate() } catch { throw .config(error) }
        return config
    }
}

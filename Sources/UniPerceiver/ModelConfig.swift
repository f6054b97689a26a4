import Foundation

/// A configuration value that cannot build a model.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case notPositive(field: String, value: Int)
    case indivisible(field: String, value: Int, by: Int)
    case malformed(reason: String)

    public var description: String {
        switch self {
        case .notPositive(let field, let value): "model config: \(field) must be positive, got \(value)"
        case .indivisible(let field, let value, let by):
            "model config: \(field) = \(value) is not divisible by \(by)"
        case .malformed(let reason): "model config: \(reason)"
        }
    }
}

/// The shape of a small Uni-Perceiver (README.md, "Configuration"). JSON keys are snake_case, as in
/// the checkpoint header's `__metadata__["config"]`.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var ffnSize: Int
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var vocabSize: Int
    public var maxTextLength: Int
    public var layerScaleInit: Float

    public init(
        hiddenSize: Int, numLayers: Int, numHeads: Int, ffnSize: Int, imageSize: Int,
        patchSize: Int, channels: Int, vocabSize: Int, maxTextLength: Int,
        layerScaleInit: Float = 1e-3
    ) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.ffnSize = ffnSize
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.channels = channels
        self.vocabSize = vocabSize
        self.maxTextLength = maxTextLength
        self.layerScaleInit = layerScaleInit
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case numLayers = "num_layers"
        case numHeads = "num_heads"
        case ffnSize = "ffn_size"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case channels
        case vocabSize = "vocab_size"
        case maxTextLength = "max_text_length"
        case layerScaleInit = "layer_scale_init"
    }

    public var headDim: Int { hiddenSize / numHeads }
    public var patchesPerSide: Int { imageSize / patchSize }
    public var patchCount: Int { patchesPerSide * patchesPerSide }
    public var patchFeatures: Int { channels * patchSize * patchSize }
    /// `<|endoftext|>`, the fourth-last id.
    public var eotId: Int { vocabSize - 4 }
    /// `<|spe|>`, the last id: sequence prefix, MLM mask and caption query token.
    public var speId: Int { vocabSize - 1 }

    /// Checks sizes and divisibility; every model constructor calls it.
    public func validate() throws(ConfigError) {
        for (field, value) in [
            ("hidden_size", hiddenSize), ("num_layers", numLayers), ("num_heads", numHeads),
            ("ffn_size", ffnSize), ("image_size", imageSize), ("patch_size", patchSize),
            ("channels", channels), ("max_text_length", maxTextLength),
        ] where value <= 0 {
            throw .notPositive(field: field, value: value)
        }
        if vocabSize <= 5 { throw .malformed(reason: "vocab_size must exceed the 5 special ids, got \(vocabSize)") }
        if hiddenSize % numHeads != 0 { throw .indivisible(field: "hidden_size", value: hiddenSize, by: numHeads) }
        if hiddenSize % 4 != 0 { throw .indivisible(field: "hidden_size", value: hiddenSize, by: 4) }
        if imageSize % patchSize != 0 { throw .indivisible(field: "image_size", value: imageSize, by: patchSize) }
    }

    /// The configuration as compact JSON with sorted keys (what checkpoints store).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a struct of Ints and a Float cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Decodes and validates a configuration from JSON text.
    public static func fromJSON(_ text: String) throws(ConfigError) -> ModelConfig {
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(text.utf8))
        } catch {
            throw .malformed(reason: "cannot decode JSON (\(error))")
        }
        try config.validate()
        return config
    }
}

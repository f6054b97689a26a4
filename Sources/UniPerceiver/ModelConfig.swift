import Foundation

/// A configuration value that cannot build a model.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case notPositive(field: String, value: Int)
    case indivisible(field: String, value: Int, by: Int)
    case malformed(reason: String)
    /// `routing` is not one of `none`, `attribute`, `token`, `context`, `modality`, `task`.
    case unknownRouting(String)
    /// `moe_layers` is not `all`, `odd`, `none` or `every-K` with K ≥ 1.
    case unknownMoELayers(String)
    /// `top_k` is outside 1…2 or larger than `num_experts`.
    case badTopK(topK: Int, experts: Int)
    /// A size beyond what this tool can hold (a field over its limit, or too many parameters).
    case tooLarge(field: String, value: Int, limit: Int)

    public var description: String {
        switch self {
        case .notPositive(let field, let value): "model config: \(field) must be positive, got \(value)"
        case .indivisible(let field, let value, let by):
            "model config: \(field) = \(value) is not divisible by \(by)"
        case .malformed(let reason): "model config: \(reason)"
        case .unknownRouting(let value):
            "model config: unknown routing \"\(value)\" (expected one of \(Routing.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .unknownMoELayers(let value):
            "model config: unknown moe_layers \"\(value)\" (expected all, odd, none or every-K with K ≥ 1)"
        case .badTopK(let topK, let experts):
            "model config: top_k = \(topK) must be 1 or 2 and at most num_experts = \(experts)"
        case .tooLarge(let field, let value, let limit):
            "model config: \(field) = \(value) is larger than this tool handles (at most \(limit))"
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
    /// Conditional-MoE routing (README.md, "Conditional MoE"); `.none` is the dense model.
    public var routing: Routing
    /// Experts per MoE-ised linear (E, default 8).
    public var numExperts: Int
    /// Experts chosen per routing decision (1 or 2, default 2).
    public var topK: Int
    /// Which layers are MoE layers when `routing != .none`.
    public var moeLayers: MoELayers

    public init(
        hiddenSize: Int, numLayers: Int, numHeads: Int, ffnSize: Int, imageSize: Int,
        patchSize: Int, channels: Int, vocabSize: Int, maxTextLength: Int,
        layerScaleInit: Float = 1e-3, routing: Routing = .none, numExperts: Int = 8, topK: Int = 2,
        moeLayers: MoELayers = .all
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
        self.routing = routing
        self.numExperts = numExperts
        self.topK = topK
        self.moeLayers = moeLayers
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
        case routing
        case numExperts = "num_experts"
        case topK = "top_k"
        case moeLayers = "moe_layers"
    }

    /// Dense checkpoints and fixtures carry no MoE keys: they decode with `routing = none`. An
    /// unknown `routing` or `moe_layers` string is a `ConfigError` naming the value.
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numLayers = try c.decode(Int.self, forKey: .numLayers)
        numHeads = try c.decode(Int.self, forKey: .numHeads)
        ffnSize = try c.decode(Int.self, forKey: .ffnSize)
        imageSize = try c.decode(Int.self, forKey: .imageSize)
        patchSize = try c.decode(Int.self, forKey: .patchSize)
        channels = try c.decode(Int.self, forKey: .channels)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxTextLength = try c.decode(Int.self, forKey: .maxTextLength)
        layerScaleInit = try c.decode(Float.self, forKey: .layerScaleInit)
        let routingName = try c.decodeIfPresent(String.self, forKey: .routing) ?? Routing.none.rawValue
        guard let routing = Routing(rawValue: routingName) else { throw ConfigError.unknownRouting(routingName) }
        self.routing = routing
        numExperts = try c.decodeIfPresent(Int.self, forKey: .numExperts) ?? 8
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? 2
        let layersName = try c.decodeIfPresent(String.self, forKey: .moeLayers) ?? MoELayers.all.name
        guard let layers = MoELayers(name: layersName) else { throw ConfigError.unknownMoELayers(layersName) }
        moeLayers = layers
    }

    /// A dense configuration encodes exactly the keys it had before MoE existed (checkpoint headers
    /// of dense models are unchanged); an MoE configuration adds its four keys.
    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(ffnSize, forKey: .ffnSize)
        try c.encode(imageSize, forKey: .imageSize)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(channels, forKey: .channels)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxTextLength, forKey: .maxTextLength)
        try c.encode(layerScaleInit, forKey: .layerScaleInit)
        if routing != .none {
            try c.encode(routing.rawValue, forKey: .routing)
            try c.encode(numExperts, forKey: .numExperts)
            try c.encode(topK, forKey: .topK)
            try c.encode(moeLayers.name, forKey: .moeLayers)
        }
    }

    /// Whether 0-based layer `n` is an MoE layer.
    public func isMoELayer(_ n: Int) -> Bool { routing != .none && moeLayers.contains(n) }

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
        // Bounds first, so that no size arithmetic below or in the parameter table can overflow,
        // and a damaged or mistyped configuration is refused instead of exhausting memory.
        for (field, value, limit) in [
            ("hidden_size", hiddenSize, 1 << 16), ("num_layers", numLayers, 1 << 10), ("ffn_size", ffnSize, 1 << 18),
            ("image_size", imageSize, 1 << 12), ("patch_size", patchSize, 1 << 12), ("channels", channels, 1 << 10),
            ("vocab_size", vocabSize, 1 << 24),
            ("max_text_length", maxTextLength, 1 << 16), ("num_experts", routing == .none ? 1 : numExperts, 1 << 10),
        ] where value > limit {
            throw .tooLarge(field: field, value: value, limit: limit)
        }
        if approximateParameterCount > Double(Self.parameterLimit) {
            throw .tooLarge(
                field: "parameter count", value: Int(min(approximateParameterCount, 9e18)), limit: Self.parameterLimit)
        }
        if hiddenSize % numHeads != 0 { throw .indivisible(field: "hidden_size", value: hiddenSize, by: numHeads) }
        if hiddenSize % 4 != 0 { throw .indivisible(field: "hidden_size", value: hiddenSize, by: 4) }
        if imageSize % patchSize != 0 { throw .indivisible(field: "image_size", value: imageSize, by: patchSize) }
        if routing != .none {
            if numExperts <= 0 { throw .notPositive(field: "num_experts", value: numExperts) }
            if !(1...2).contains(topK) || topK > numExperts { throw .badTopK(topK: topK, experts: numExperts) }
            if case .every(let k) = moeLayers, k <= 0 { throw .unknownMoELayers(moeLayers.name) }
        }
    }

    /// The most parameters a model may have: 16 GiB of Float32 weights (Uni-Perceiver-MoE large
    /// with every layer routed has 2.4e9).
    public static let parameterLimit = 1 << 32

    /// The parameter count, in Double so that no configuration can overflow it: every layer's
    /// attention and FFN linears (E times over when routed) plus the embeddings, to within the
    /// biases, LayerNorms and gates.
    var approximateParameterCount: Double {
        let D = Double(hiddenSize)
        let experts = routing == .none ? 1 : Double(max(numExperts, 1))
        let layer = experts * (4 * D * D + 2 * D * Double(ffnSize))
        let patch = Double(channels) * Double(patchSize) * Double(patchSize) * D
        let positions = (Double(imageSize / max(patchSize, 1)) * Double(imageSize / max(patchSize, 1)) + Double(maxTextLength)) * D
        return Double(numLayers) * layer + Double(vocabSize) * D + patch + positions
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
        } catch let error as ConfigError {
            throw error
        } catch {
            throw .malformed(reason: "cannot decode JSON (\(error))")
        }
        try config.validate()
        return config
    }
}

/// What the Conditional-MoE gate sees (uniperceiver-model.md §5.5); `none` is the dense model.
public enum Routing: String, CaseIterable, Codable, Sendable {
    case none
    /// The released routing: the 8-bit attribute vector of (task, side, segment) (§5.2, §5.6).
    case attribute
    /// Each token's own hidden state (the LN'd input of the linear); GShard balance loss.
    case token
    /// The mean of the sample's hidden states (valid positions); one decision per sample.
    case context
    /// A learned embedding of the token's modality (image or text).
    case modality
    /// A learned embedding of the task.
    case task

    /// Whether the decision depends on the data (so experts cannot be pre-merged).
    public var isDataDependent: Bool { self == .token || self == .context }
}

/// Which 0-based encoder layers are MoE layers (official `MOE_EXPERT_LOCATION`).
public enum MoELayers: Equatable, Sendable {
    /// Every layer (the tiny 7-task MoE config).
    case all
    /// 0-based even layers (1-based odd: layers 1, 3, 5, …), the base and large runs.
    case odd
    /// No layer (an MoE configuration that is dense in practice).
    case none
    /// Layers n with n % k == 0 (`every-2` equals `odd`).
    case every(Int)

    public func contains(_ n: Int) -> Bool {
        switch self {
        case .all: true
        case .odd: n % 2 == 0
        case .none: false
        case .every(let k): k > 0 && n % k == 0
        }
    }

    /// The JSON spelling: `all`, `odd`, `none` or `every-K`.
    public var name: String {
        switch self {
        case .all: "all"
        case .odd: "odd"
        case .none: "none"
        case .every(let k): "every-\(k)"
        }
    }

    public init?(name: String) {
        switch name {
        case "all": self = .all
        case "odd": self = .odd
        case "none": self = .none
        default:
            guard name.hasPrefix("every-"), let k = Int(name.dropFirst(6)), k >= 1 else { return nil }
            self = .every(k)
        }
    }
}

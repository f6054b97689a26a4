import Foundation
import Kernels
import Storage
import UniPerceiver

/// A checkpoint that cannot become a model.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file itself is unreadable or its tensors do not match the configuration (names the tensor).
    case storage(StorageError)
    case missingConfig(file: String)
    case badConfig(file: String, reason: String)
    /// `format`, `version`, `kind` or `routing` of the header is not this tool's or contradicts the
    /// configuration.
    case badMetadata(file: String, reason: String)
    /// A weight is NaN or infinite (flat index within the tensor).
    case nonFinite(file: String, tensor: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case .storage(let error): error.description
        case .missingConfig(let file): "\(file): no model configuration in the header's __metadata__[\"config\"]"
        case .badConfig(let file, let reason): "\(file): \(reason)"
        case .badMetadata(let file, let reason): "\(file): \(reason)"
        case .nonFinite(let file, let tensor, let index, let value):
            "\(file): tensor \(tensor) holds a non-finite value (\(value)) at flat index \(index)"
        }
    }
}

/// Model checkpoints in safetensors: F32 tensors under the paper-era names, the configuration as
/// JSON in `__metadata__["config"]`, `format = task-interference/checkpoint`, `version = 1`.
public enum Checkpoint {
    public static let format = "task-interference/checkpoint"

    /// Reads a checkpoint whole or not at all: the header is checked against the configuration's
    /// parameter table (every name present, none extra, every shape right) before any value is used,
    /// and every value must be finite (a NaN weight would otherwise surface as a NaN loss, or as a
    /// chance-level accuracy, far from its cause). `format`, `version`, `kind` and `routing`, when
    /// the header has them, must be this tool's and agree with the configuration; a file without
    /// them (written by another tool with our names and config) is read.
    /// - Throws: `CheckpointError.storage` naming the file and the first offending tensor,
    ///   `.missingConfig`, `.badConfig`, `.badMetadata`, `.nonFinite`.
    public static func load(_ url: URL) throws(CheckpointError) -> Model {
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(url) } catch { throw .storage(error) }
        if let found = file.metadata["format"], found != format {
            throw .badMetadata(file: url.path, reason: "format \"\(found)\" is not \"\(format)\"")
        }
        if let found = file.metadata["version"], found != "1" {
            throw .badMetadata(file: url.path, reason: "version \"\(found)\" is not supported (this tool reads version 1)")
        }
        guard let json = file.metadata["config"] else { throw .missingConfig(file: url.path) }
        let config: ModelConfig
        do { config = try ModelConfig.fromJSON(json) } catch {
            throw .badConfig(file: url.path, reason: error.description)
        }
        let kind = config.routing == .none ? "dense" : "moe"
        if let found = file.metadata["kind"], found != kind {
            throw .badMetadata(file: url.path, reason: "kind \"\(found)\" contradicts the configuration (routing \(config.routing.rawValue): \(kind))")
        }
        if let found = file.metadata["routing"], found != config.routing.rawValue {
            throw .badMetadata(file: url.path, reason: "routing \"\(found)\" contradicts the configuration's \(config.routing.rawValue)")
        }
        try checkExpertCount(names: file.names, config: config, file: url.path)
        let table = Model.parameterTable(for: config)
        var values = [Float]()
        values.reserveCapacity(table.totalCount)
        do {
            try file.validate(expected: table.entries.map { ($0.name, $0.shape) })
            for entry in table.entries { values += try file.tensor(entry.name).data }
        } catch { throw .storage(error) }
        if let index = values.withUnsafeBufferPointer({ firstNonFinite($0) }) {
            let entry = table.entry(containing: index)!
            throw .nonFinite(file: url.path, tensor: entry.name, index: index - entry.offset, value: values[index])
        }
        do { return try Model(config: config, parameters: values) } catch {
            throw .badConfig(file: url.path, reason: error.description)
        }
    }

    /// Refuses a file whose expert tensors (`….experts.K.…`) disagree with the configuration's expert
    /// count, naming both counts: the table check that follows would only say that one gate's shape
    /// is off, or that a tensor is missing.
    static func checkExpertCount(names: [String], config: ModelConfig, file: String) throws(CheckpointError) {
        var found = 0
        var example = ""
        for name in names {
            guard let range = name.range(of: ".experts.") else { continue }
            let digits = name[range.upperBound...].prefix { $0.isNumber }
            if let k = Int(digits), k + 1 > found {
                found = k + 1
                example = name
            }
        }
        let hasMoELayer = (0..<config.numLayers).contains(where: config.isMoELayer)
        if config.routing == .none, found > 0 {
            throw .badConfig(
                file: file, reason: "the tensors hold \(found) experts per MoE linear ('\(example)'), but the configuration is dense")
        }
        if hasMoELayer, found != config.numExperts {
            let holds = found == 0 ? "no expert tensors" : "\(found) experts per MoE linear ('\(example)')"
            throw .badConfig(
                file: file, reason: "the tensors hold \(holds), but the configuration's num_experts is \(config.numExperts)")
        }
    }

    /// Writes the model atomically (temporary name, then rename), tensors in table order.
    public static func save(
        _ model: Model, to url: URL, metadata extra: [String: String] = [:]
    ) throws(CheckpointError) {
        let entries = model.table.entries.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: Array(model.parameters[$0.range]))
        }
        // `format`, `version`, `config`, `kind` and `routing` are this writer's, whatever `extra` says.
        var metadata = extra
        metadata["format"] = format
        metadata["version"] = "1"
        metadata["config"] = model.config.jsonString()
        // What `load` checks against the configuration.
        metadata["kind"] = model.config.routing == .none ? "dense" : "moe"
        metadata["routing"] = model.config.routing.rawValue
        do { try SafeTensors.write(entries, metadata: metadata, checksum: true, to: url) } catch { throw .storage(error) }
    }
}

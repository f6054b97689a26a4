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

    public var description: String {
        switch self {
        case .storage(let error): error.description
        case .missingConfig(let file): "\(file): no model configuration in the header's __metadata__[\"config\"]"
        case .badConfig(let file, let reason): "\(file): \(reason)"
        }
    }
}

/// Model checkpoints in safetensors: F32 tensors under the paper-era names, the configuration as
/// JSON in `__metadata__["config"]`, `format = task-interference/checkpoint`, `version = 1`.
public enum Checkpoint {
    public static let format = "task-interference/checkpoint"

    /// Reads a checkpoint whole or not at all: the header is checked against the configuration's
    /// parameter table (every name present, none extra, every shape right) before any value is used.
    /// - Throws: `CheckpointError.storage` naming the file and the first offending tensor,
    ///   `.missingConfig`, `.badConfig`.
    public static func load(_ url: URL) throws(CheckpointError) -> Model {
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(url) } catch { throw .storage(error) }
        guard let json = file.metadata["config"] else { throw .missingConfig(file: url.path) }
        let config: ModelConfig
        do { config = try ModelConfig.fromJSON(json) } catch {
            throw .badConfig(file: url.path, reason: error.description)
        }
        let table = Model.parameterTable(for: config)
        var values = [Float]()
        values.reserveCapacity(table.totalCount)
        do {
            try file.validate(expected: table.entries.map { ($0.name, $0.shape) })
            for entry in table.entries { values += try file.tensor(entry.name).data }
        } catch { throw .storage(error) }
        do { return try Model(config: config, parameters: values) } catch {
            throw .badConfig(file: url.path, reason: error.description)
        }
    }

    /// Writes the model atomically (temporary name, then rename), tensors in table order.
    public static func save(
        _ model: Model, to url: URL, metadata extra: [String: String] = [:]
    ) throws(CheckpointError) {
        let entries = model.table.entries.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: Array(model.parameters[$0.range]))
        }
        var metadata = extra
        metadata["format"] = format
        metadata["version"] = "1"
        metadata["config"] = model.config.jsonString()
        metadata["kind"] = metadata["kind"] ?? "dense"
        do { try SafeTensors.write(entries, metadata: metadata, to: url) } catch { throw .storage(error) }
    }
}

import Datasets
import Foundation
import Interference
import Storage
import Training
import UniPerceiver

/// Every way a probe, a merge or a probe-file read can be refused.
///
/// One enum for the `GradientProbe` module (house-style §7). Each case carries the evidence — the
/// file, the HDF5 path, the task and mini-batch — and `description` is one line, `"<file>: <reason>"`
/// where there is a file, for the command line to print as is (exit 2).
public enum ProbeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A request that cannot be probed (no task, N < 1, a bad shard spec, …).
    case badOption(reason: String)
    /// A `--parameters` glob that selects no parameter of the model.
    case noParameterMatches(pattern: String)
    /// Task `task`'s mini-batch `miniBatch` (0-based) gave a non-finite loss or gradient.
    case nonFiniteGradient(task: String, miniBatch: Int, what: String)
    /// The model refused a batch (wrong image shape, token ids outside the vocabulary, …).
    case model(ModelError)
    /// The checkpoint cannot become a model.
    case checkpoint(CheckpointError)
    /// The dataset file cannot be read or does not fit the request.
    case dataset(DatasetError)
    /// The file is missing, not HDF5, truncated or otherwise damaged.
    case unreadable(file: String, reason: String)
    /// The root attribute `format` is missing (`found` nil) or is not `"task-interference/probe"`.
    case wrongFormat(file: String, found: String?)
    /// The root attribute `version` is missing (`found` nil) or is not one this build reads.
    case unsupportedVersion(file: String, found: Int?, supported: Int)
    /// A dataset the schema requires is absent.
    case missingDataset(file: String, path: String)
    /// An attribute the schema requires is absent.
    case missingAttribute(file: String, path: String, name: String)
    /// A dataset or attribute holds the wrong shape or a value that contradicts the rest of the file.
    case badContent(file: String, path: String, reason: String)
    /// The file is one shard of a sharded probe: merge the shards before reading it as a probe.
    case isShard(file: String, index: Int, count: Int)
    /// Two shards that cannot be merged: they disagree on `field` (model, data, tasks, seed, …).
    case mismatchedShards(first: String, second: String, field: String)
    /// The shards given to `merge` do not form one complete probe (missing, repeated, not a shard).
    case incompleteShards(reason: String)
    /// Any other storage failure (writing the output, reading rows back).
    case storage(StorageError)
    /// The exact look-ahead needs raw rows, and the probe file has none for `parameter`.
    case noStoredGradients(file: String, parameter: String)
    /// A checkpoint or data file (`file`) whose SHA-256 differs from the one the probe `probe` records.
    case sourceMismatch(file: String, probe: String, what: String)
    /// Rebuilding task `task`'s mini-batch `miniBatch` did not give what the probe `file` recorded.
    case notReproduced(file: String, task: String, miniBatch: Int, reason: String)

    /// One line for the user: the file first when there is one.
    public var description: String { description(command: "probe") }

    /// `description` as the command that ran (`analyze`, `merge`, …) says it: a line that names no
    /// file starts with that command, since under another command "probe:" misleads.
    public func description(command: String) -> String {
        switch self {
        case .badOption(let reason): return "\(command): \(reason)"
        case .noParameterMatches(let pattern):
            return "\(command): --parameters '\(pattern)' matches no parameter of the model"
        case .nonFiniteGradient(let task, let miniBatch, let what):
            return
                "\(command): task \(task), mini-batch \(miniBatch): non-finite \(what) "
                + "(use --skip-nonfinite to record and exclude it)"
        case .model(let error): return error.description
        case .checkpoint(let error): return error.description
        case .dataset(let error): return error.description
        case .unreadable(let file, let reason): return "\(file): \(reason)"
        case .wrongFormat(let file, let found):
            let what = found.map { "'\($0)'" } ?? "missing"
            return "\(file): root attribute 'format' is \(what), expected '\(ProbeFile.format)'"
        case .unsupportedVersion(let file, let found, let supported):
            let what = found.map(String.init) ?? "missing"
            return "\(file): root attribute 'version' is \(what), this build reads version \(supported)"
        case .missingDataset(let file, let path): return "\(file): missing dataset \(path)"
        case .missingAttribute(let file, let path, let name):
            return "\(file): missing attribute '\(name)' on \(path)"
        case .badContent(let file, let path, let reason): return "\(file): \(path): \(reason)"
        case .isShard(let file, let index, let count):
            return
                "\(file): shard \(index)/\(count) of a sharded probe; "
                + "join the shards with `interference merge` first"
        case .mismatchedShards(let first, let second, let field):
            return "\(second): cannot merge with \(first): they differ in \(field)"
        case .incompleteShards(let reason): return "merge: \(reason)"
        case .storage(let error): return error.description
        case .noStoredGradients(let file, let parameter):
            return
                "\(file): no stored gradient rows for \(parameter); the look-ahead needs a probe "
                + "made with --store-gradients"
        case .sourceMismatch(let file, let probe, let what):
            return "\(file): SHA-256 differs from the \(what) \(probe) was made from"
        case .notReproduced(let file, let task, let miniBatch, let reason):
            return "\(file): task \(task), mini-batch \(miniBatch) not reproduced: \(reason)"
        }
    }

    /// Storage errors with a probe-level meaning get their own case; the rest are wrapped.
    static func reading(_ error: StorageError) -> ProbeError {
        switch error {
        case .cannotOpen(let file, let reason): .unreadable(file: file, reason: reason)
        case .missingDataset(let file, let path): .missingDataset(file: file, path: path)
        case .missingAttribute(let file, let path, let name):
            .missingAttribute(file: file, path: path, name: name)
        case .hdf5(let file, let operation, let path, let detail):
            .unreadable(
                file: file,
                reason: "cannot \(operation) \(path) (truncated or damaged file?) \(detail)")
        default: .storage(error)
        }
    }

    /// An error of the metric's module about `file` (a probe file or shard it read): its storage
    /// errors as ours, a refusal naming a file as that file's, anything else as `file`'s content.
    static func reading(_ error: InterferenceError, file: URL) -> ProbeError {
        switch error {
        case .storage(let e): reading(e)
        case .badFile(let named, let reason): .unreadable(file: named, reason: reason)
        case .missing(let named, let what): .unreadable(file: named, reason: "no \(what)")
        default: .badContent(file: file.path, path: "/", reason: error.description)
        }
    }
}

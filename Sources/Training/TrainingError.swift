import Datasets
import Storage
import UniPerceiver

/// Everything that stops training or evaluation, each case one "file/task/step: reason" line.
public enum TrainingError: Error, Sendable, Equatable, CustomStringConvertible {
    case dataset(DatasetError)
    case checkpoint(CheckpointError)
    case storage(StorageError)
    case config(ConfigError)
    case model(ModelError)
    /// A training option outside its domain (names the option).
    case badOption(name: String, reason: String)
    /// The loss of `step` (0-based) on `task` was NaN or infinite; nothing of that step was applied
    /// or written.
    case nonFiniteLoss(step: Int, task: String, value: Double)
    /// The gradient of `step` on `task` had a NaN or infinite norm.
    case nonFiniteGradient(step: Int, task: String)
    /// The optimizer step made a weight NaN or infinite (first such tensor named).
    case nonFiniteWeights(step: Int, task: String, tensor: String)
    /// The model and the dataset do not fit together (vocabulary, text length).
    case incompatible(file: String, reason: String)
    /// `--resume` without a checkpoint in the directory.
    case noCheckpoint(directory: String)
    /// A fresh run into a directory that already holds one.
    case existingCheckpoint(directory: String)
    /// A fresh run into a directory that holds no checkpoint but a file the run would write
    /// (`log.jsonl`, an optimizer state), which it would overwrite.
    case existingRunFile(directory: String, file: String)
    /// A checkpoint or state file that cannot be resumed (names the file and what is wrong).
    case badState(file: String, reason: String)
    /// Writing the log or creating the output directory failed.
    case io(file: String, reason: String)

    /// True whether or not the run had written a checkpoint: nothing of the failed step is applied.
    private static let stopped = "training stopped; a checkpoint already written, if any, is from an earlier step and unchanged"

    public var description: String {
        switch self {
        case .dataset(let error): error.description
        case .checkpoint(let error): error.description
        case .storage(let error): error.description
        case .config(let error): error.description
        case .model(let error): error.description
        case .badOption(let name, let reason): "\(name): \(reason)"
        case .nonFiniteLoss(let step, let task, let value):
            // A NaN's sign bit means nothing, and "-nan" reads like a negative number.
            "step \(step), task \(task): loss is \(value.isNaN ? "NaN" : "\(value)"); \(Self.stopped)"
        case .nonFiniteGradient(let step, let task):
            "step \(step), task \(task): gradient norm is not finite; \(Self.stopped)"
        case .nonFiniteWeights(let step, let task, let tensor):
            "step \(step), task \(task): the update made \(tensor) non-finite (learning rate too large, or a damaged optimizer state); \(Self.stopped)"
        case .incompatible(let file, let reason): "\(file): \(reason)"
        case .noCheckpoint(let directory): "\(directory): no checkpoint to resume (expected \(TrainingSession.modelFileName))"
        case .existingCheckpoint(let directory):
            "\(directory): already holds a checkpoint; pass --resume to continue it or choose another output directory"
        case .existingRunFile(let directory, let file):
            "\(directory): already holds \(file) but no checkpoint (a run stopped before its first one?); a new run would overwrite it: remove it or choose another output directory"
        case .badState(let file, let reason): "\(file): \(reason)"
        case .io(let file, let reason): "\(file): \(reason)"
        }
    }
}

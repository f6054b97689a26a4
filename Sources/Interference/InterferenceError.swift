import Storage

/// Every way an interference computation or an interference/probe file can be refused.
///
/// One enum for the `Interference` module (house-style §7). `description` is one line; cases about a
/// file start with the file's path, so the CLI can print them as is.
public enum InterferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A Gram matrix that is not `[T·N, T·N]` for the given tasks, or rows of unequal length.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// The Gram size is not a multiple of the task count, so rows cannot be split task-major.
    case samplesNotDivisible(name: String, size: Int, tasks: Int)
    /// The leave-one-out mean needs at least two samples per task (and at least one task).
    case tooFewSamples(name: String, samplesPerTask: Int)
    /// A NaN or infinity in a Gram matrix (or a raw row) at this position.
    case nonFinite(name: String, row: Int, column: Int)
    /// A group with no parameters.
    case emptyGroup(name: String)
    /// A grouping under which none of the probed parameters falls (e.g. `layer` on embeddings only).
    case nothingToGroup(grouping: String, parameters: [String])
    /// Two parameters (or groups) with the same name.
    case duplicateName(String)
    /// Bootstrap settings out of range (replicates < 1, confidence outside (0, 1)).
    case invalidBootstrap(reason: String)
    /// A look-ahead measurement that cannot be used (index out of range, a == b, λ ≤ 0, non-finite).
    case invalidMeasurement(reason: String)
    /// A file that is not of the expected format or version, or is inconsistent with itself.
    case badFile(file: String, reason: String)
    /// A group or task that the file does not hold.
    case missing(file: String, what: String)
    /// A lower-level storage failure, kept whole.
    case storage(StorageError)

    public var description: String {
        switch self {
        case .shapeMismatch(let name, let expected, let found):
            return "\(name): expected shape \(expected), found \(found)"
        case .samplesNotDivisible(let name, let size, let tasks):
            return "\(name): Gram size \(size) is not a multiple of the \(tasks) tasks"
        case .tooFewSamples(let name, let samplesPerTask):
            return
                "\(name): need at least 2 samples per task for leave-one-out, got \(samplesPerTask)"
        case .nonFinite(let name, let row, let column):
            return "\(name): non-finite value at [\(row), \(column)]"
        case .emptyGroup(let name):
            return "group '\(name)' has no parameters"
        case .nothingToGroup(let grouping, let parameters):
            let example = parameters.first.map { " (e.g. '\($0)')" } ?? ""
            return "--group-by \(grouping): none of the \(parameters.count) probed parameters\(example) falls into a \(grouping) group; "
                + "use --group-by parameter or model"
        case .duplicateName(let name):
            return "duplicate name '\(name)'"
        case .invalidBootstrap(let reason):
            return "bootstrap: \(reason)"
        case .invalidMeasurement(let reason):
            return "look-ahead: \(reason)"
        case .badFile(let file, let reason):
            return "\(file): \(reason)"
        case .missing(let file, let what):
            return "\(file): no \(what)"
        case .storage(let error):
            return error.description
        }
    }
}

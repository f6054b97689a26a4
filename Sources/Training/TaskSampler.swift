import Kernels
import UniPerceiver

/// Draws the task of each training step with probability proportional to its sampling weight
/// (uniperceiver-model.md §4: one task per step, ∝ `SAMPLING_WEIGHT`).
///
/// One draw consumes exactly one `nextDouble()` `u` of the generator and returns the first task
/// (in `tasks` order) whose cumulative weight exceeds `u · Σw`, so another language repeats it.
public struct TaskSampler: Sendable, Equatable {
    public let tasks: [TaskKind]
    public let weights: [Double]
    private let cumulative: [Double]

    /// Tasks with zero weight are never drawn. Precondition: weights are finite, non-negative and
    /// at least one is positive (`TrainingOptions.validate` checks user input first).
    public init(tasks: [TaskKind], weights: [Double]) {
        precondition(tasks.count == weights.count && !tasks.isEmpty, "TaskSampler: \(tasks.count) tasks, \(weights.count) weights")
        precondition(weights.allSatisfy { $0.isFinite && $0 >= 0 } && weights.contains { $0 > 0 }, "TaskSampler: bad weights \(weights)")
        self.tasks = tasks
        self.weights = weights
        var running = 0.0
        cumulative = weights.map { running += $0; return running }
    }

    public func draw(_ rng: inout SeededRNG) -> TaskKind {
        let target = rng.nextDouble() * cumulative.last!
        for (task, bound) in zip(tasks, cumulative) where target < bound { return task }
        // Round-off at the top end: the last task with positive weight.
        return tasks[weights.lastIndex { $0 > 0 }!]
    }

    /// The probability of each task, `w / Σw`.
    public var probabilities: [Double] { weights.map { $0 / cumulative.last! } }
}

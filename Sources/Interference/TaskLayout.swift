/// Which task each Gram row belongs to: `T` tasks of `N` samples each, rows task-major.
///
/// Row `t·N + a` is sample `a` of task `tasks[t]`. The notebook's leave-one-out pairs sample `b` of
/// one task with sample `b` of every task, so all tasks have the same `N`.
public struct TaskLayout: Sendable, Equatable, Codable {
    /// Task names in row order (e.g. `["cls", "mlm", "cap"]`).
    public let tasks: [String]
    /// Samples (mini-batch gradients) per task, `N ≥ 2`.
    public let samplesPerTask: Int

    /// - Throws: `.tooFewSamples` when `N < 2` or there is no task, `.duplicateName` for a repeated task.
    public init(tasks: [String], samplesPerTask: Int) throws(InterferenceError) {
        guard !tasks.isEmpty, samplesPerTask >= 2 else {
            throw .tooFewSamples(name: "tasks \(tasks)", samplesPerTask: samplesPerTask)
        }
        var seen = Set<String>()
        for task in tasks where !seen.insert(task).inserted { throw .duplicateName(task) }
        self.tasks = tasks
        self.samplesPerTask = samplesPerTask
    }

    /// The layout of a Gram matrix of `size` rows over these tasks (`N = size / T`).
    /// - Throws: `.samplesNotDivisible`, `.tooFewSamples`, `.duplicateName`.
    public init(tasks: [String], gramSize size: Int, name: String = "gram")
        throws(InterferenceError)
    {
        guard !tasks.isEmpty, size % tasks.count == 0 else {
            throw .samplesNotDivisible(name: name, size: size, tasks: tasks.count)
        }
        try self.init(tasks: tasks, samplesPerTask: size / tasks.count)
    }

    /// Number of tasks `T`.
    public var taskCount: Int { tasks.count }
    /// Number of Gram rows `T·N`.
    public var rowCount: Int { tasks.count * samplesPerTask }
    /// The Gram row of sample `sample` of task index `task`.
    public func row(task: Int, sample: Int) -> Int { task * samplesPerTask + sample }
}

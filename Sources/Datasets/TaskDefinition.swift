import UniPerceiver

/// What each of the four tasks reads from the dataset and which target set it scores against.
public struct TaskDefinition: Sendable, Equatable {
    /// Where a task's inputs come from.
    public enum Source: String, Sendable {
        /// Rows of `/images` (with their labels or captions).
        case images
        /// Sentences of `/corpus`.
        case corpus
    }

    /// Which candidates the task's logits range over.
    public enum Targets: String, Sendable {
        /// The K class names.
        case classNames = "class-names"
        /// Every vocabulary id, each encoded as `[SPE, v, EOT]`.
        case vocabulary
        /// The captions of the batch's own images.
        case batchCaptions = "batch-captions"
    }

    public let kind: TaskKind
    public let source: Source
    public let targets: Targets
    public let attributes: TaskAttributes

    /// The name used on the command line, in files and in reports (`kind.rawValue`).
    public var name: String { kind.rawValue }

    /// The definition of `kind`.
    public init(_ kind: TaskKind) {
        self.kind = kind
        self.attributes = TaskAttributes.of(kind)
        switch kind {
        case .imageClassification: (source, targets) = (.images, .classNames)
        case .mlm: (source, targets) = (.corpus, .vocabulary)
        case .captioning: (source, targets) = (.images, .vocabulary)
        case .retrieval: (source, targets) = (.images, .batchCaptions)
        }
    }

    /// All four tasks in `TaskKind.allCases` order.
    public static let all: [TaskDefinition] = TaskKind.allCases.map(TaskDefinition.init)

    /// The task called `name` (`image-classification`, `mlm`, `captioning`, `retrieval`).
    /// - Throws: `DatasetError.unknownTask` listing the known names.
    public static func named(_ name: String) throws(DatasetError) -> TaskDefinition {
        guard let kind = TaskKind(rawValue: name) else {
            throw .unknownTask(name: name, known: TaskKind.allCases.map(\.rawValue))
        }
        return TaskDefinition(kind)
    }
}

/// The fixed partition of a dataset file: examples a model trains on, and examples it is scored on.
public enum DatasetSplit: String, CaseIterable, Codable, Sendable {
    case train
    case validation
}

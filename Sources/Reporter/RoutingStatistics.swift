import Foundation

/// How a MoE run's router spread each task's tokens over the experts, as given to the report.
///
/// `load[e]` is the fraction of the task's routed token slots (top-k counted k times) that went to
/// expert e in that layer; a row sums to 1. The producer (probe or trainer) measures it; the report
/// only prints it, with the normalised entropy `−Σ p log p / log E` (1 = uniform, 0 = one expert).
public struct RoutingStatistics: Sendable, Equatable, Codable {
    /// One layer × task row.
    public struct Entry: Sendable, Equatable, Codable {
        public var layer: Int
        public var task: String
        public var load: [Double]

        public init(layer: Int, task: String, load: [Double]) {
            self.layer = layer
            self.task = task
            self.load = load
        }

        /// `−Σ p log p / log E` over the load (0 when E ≤ 1).
        public var normalizedEntropy: Double {
            guard load.count > 1 else { return 0 }
            let total = load.reduce(0, +)
            guard total > 0 else { return .nan }
            var h = 0.0
            for p in load where p > 0 { h -= (p / total) * log(p / total) }
            return h / log(Double(load.count))
        }
    }

    /// The run's label (matches `InterferenceAnalysis.label`).
    public var run: String
    /// Routing strategy, free text (e.g. "attribute", "token").
    public var routing: String
    /// Number of experts E.
    public var experts: Int
    /// Rows, in the order they are printed.
    public var entries: [Entry]

    public init(run: String, routing: String, experts: Int, entries: [Entry]) {
        self.run = run
        self.routing = routing
        self.experts = experts
        self.entries = entries
    }
}

import Foundation
import Interference

/// How a MoE run's router spread each task's tokens over the experts, as given to the report.
///
/// `load[e]` is the share of the task's routed tokens that went to expert e in that layer (for
/// top-k routing, each token's renormalised gate weights; a row sums to 1). The producer (probe or
/// trainer) measures it; the report only prints it, with the normalised entropy of the load
/// `−Σ p log p / log E` (1 = uniform, 0 = one expert) and, when given, the router's own mean gate
/// entropy per token (also divided by `log E`). `decision` and `segment` are free text (e.g. `ffn`,
/// `input 1`); the report shows their columns only when some entry has them.
public struct RoutingStatistics: Sendable, Equatable, Codable {
    /// One layer × task row.
    public struct Entry: Sendable, Equatable, Codable {
        public var layer: Int
        public var task: String
        public var load: [Double]
        /// Which routing decision of the layer (e.g. `attention`, `ffn`); "" when there is one.
        public var decision: String
        /// Which part of the input (e.g. `input 0`, `candidates 0`); "" for the whole task.
        public var segment: String
        /// Mean over tokens of the gate's softmax entropy `−Σ_e p_e ln p_e / ln E`, when measured.
        public var gateEntropy: Double?

        public init(
            layer: Int, task: String, load: [Double], decision: String = "", segment: String = "",
            gateEntropy: Double? = nil
        ) {
            self.layer = layer
            self.task = task
            self.load = load
            self.decision = decision
            self.segment = segment
            self.gateEntropy = gateEntropy
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

    /// A run's table as its interference file keeps it (`InterferenceAnalysis.routing`): loads are
    /// the weight shares, segments read "input 0", gate entropy divided by `ln E`.
    public init(_ table: RoutingTable, run: String) {
        let experts = table.experts
        self.init(
            run: run, routing: table.routing, experts: experts,
            entries: table.rows.map { r in
                // A segment with no valid token has no entropy to show (n/a, not a confident 0).
                Entry(
                    layer: r.layer, task: r.task, load: r.weightShare, decision: r.decision,
                    segment: "\(r.side) \(r.segment)",
                    gateEntropy: r.tokens == 0 ? nil : experts > 1 ? r.meanEntropy / log(Double(experts)) : 0)
            })
    }

    /// The tables of those runs that have one (MoE runs), in run order, each named as the report
    /// names its run.
    public static func of(_ runs: [InterferenceAnalysis]) -> [RoutingStatistics] {
        runs.enumerated().compactMap { k, run in
            run.routing.map { RoutingStatistics($0, run: MarkdownReport.label(of: run, index: k)) }
        }
    }
}

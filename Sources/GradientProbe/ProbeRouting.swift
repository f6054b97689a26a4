import Datasets
import Interference
import UniPerceiver

/// How an MoE model routed the probe's own mini-batches (issue 5 item 5, "MoE routing statistics").
///
/// One record per (MoE layer, decision, task, side, segment), pooled over the task's N probed
/// mini-batches, each rebuilt by the probe's `WorkPlan` and run with its gate noise (as the probe ran
/// it). Pooling weights each mini-batch's `ForwardPass.routingStatistics` by its valid tokens:
///
///     weightShare[e] = Σ_batches tokens·weightShare[e] / Σ tokens     (sums to 1 over e)
///     meanEntropy    = Σ_batches tokens·meanEntropy / Σ tokens        (nats, gate softmax per token)
public struct ProbeRouting: Sendable, Equatable {
    public let layer: Int
    public let decision: RoutingStatistics.Decision
    public let task: TaskKind
    public let side: SequenceSide
    public let segment: Int
    /// Valid tokens over all of the task's mini-batches.
    public let tokens: Int
    /// Mean renormalised gate weight each expert receives per token `[E]`.
    public let weightShare: [Double]
    /// Mean gate entropy `−Σ_e p_e ln p_e` per token, in nats.
    public let meanEntropy: Double

    /// The file's table (`Interference.RoutingTable`, the model's words as strings) of pooled records.
    public static func table(_ records: [ProbeRouting], routing: Routing, experts: Int) -> RoutingTable {
        RoutingTable(
            routing: routing.rawValue, experts: experts,
            rows: records.map { r in
                RoutingTable.Row(
                    layer: r.layer, decision: r.decision.rawValue, task: r.task.rawValue, side: r.side.rawValue,
                    segment: r.segment, tokens: r.tokens, weightShare: r.weightShare, meanEntropy: r.meanEntropy)
            })
    }

    /// Forward passes over every mini-batch `options` describes (the probe's options), pooled: the
    /// records of the table a probe of `model` with these options writes (`ProbeSummary.routing`),
    /// without the backward passes. A dense model gives no records.
    /// - Throws: `.dataset` (split too small, image shape), `.model` (a batch the model refuses).
    public static func collect(model: Model, dataset: DigitsDataset, options: ProbeOptions)
        throws(ProbeError) -> [ProbeRouting]
    {
        do {
            try dataset.checkImageShape(imageSize: model.config.imageSize, channels: model.config.channels)
        } catch { throw .dataset(error) }
        let plan = try WorkPlan(options: options, dataset: dataset)
        var pool = Pool()
        for w in 0..<plan.itemCount {
            do { pool.add(try model.forward(plan.batch(w, dataset: dataset), noise: plan.noise(w)).routingStatistics) }
            catch { throw .model(error) }
        }
        return pool.records(tasks: plan.tasks)
    }

    /// Pools `ForwardPass.routingStatistics` over mini-batches, each weighted by its valid tokens
    /// (the formulas above). The probe adds every pass it runs; `collect` runs its own.
    struct Pool {
        private struct Key: Hashable {
            var layer: Int
            var decision: String
            var task: TaskKind
            var side: SequenceSide
            var segment: Int
        }
        private var order: [Key] = []
        private var tokens: [Key: Int] = [:]
        private var weight: [Key: [Double]] = [:]
        private var entropy: [Key: Double] = [:]

        mutating func add(_ statistics: [RoutingStatistics]) {
            for s in statistics {
                let key = Key(
                    layer: s.layer, decision: s.decision.rawValue, task: s.task, side: s.side, segment: s.segment)
                if tokens[key] == nil {
                    order.append(key)
                    tokens[key] = 0
                    weight[key] = [Double](repeating: 0, count: s.weightShare.count)
                    entropy[key] = 0
                }
                let n = Double(s.tokens)
                tokens[key]! += s.tokens
                for e in s.weightShare.indices { weight[key]![e] += n * s.weightShare[e] }
                entropy[key]! += n * s.meanEntropy
            }
        }

        /// One record per key, sorted by layer, decision, task (in `tasks` order), side and segment.
        func records(tasks: [TaskKind]) -> [ProbeRouting] {
            func rank(_ t: TaskKind) -> Int { tasks.firstIndex(of: t) ?? tasks.count }
            return order.sorted {
                ($0.layer, $0.decision, rank($0.task), $0.side.rawValue, $0.segment)
                    < ($1.layer, $1.decision, rank($1.task), $1.side.rawValue, $1.segment)
            }.map { key in
                let n = Double(max(tokens[key]!, 1))
                return ProbeRouting(
                    layer: key.layer, decision: RoutingStatistics.Decision(rawValue: key.decision)!,
                    task: key.task, side: key.side, segment: key.segment, tokens: tokens[key]!,
                    weightShare: weight[key]!.map { $0 / n }, meanEntropy: entropy[key]! / n)
            }
        }
    }
}

import Datasets
import Interference
import UniPerceiver

/// How an MoE model routed the probe's own mini-batches (issue 4 item 5, "routing statistics …
/// available to later reporting"): the file's `/routing` table (`Interference.RoutingTable`).
///
/// One row per (MoE layer, decision, task, side, segment), pooled over the task's probed
/// mini-batches, each rebuilt by the probe's `WorkPlan` and run with its gate noise. Pooling weights
/// each mini-batch's `ForwardPass.routingStatistics` by its valid tokens (`RoutingTable.pooled`):
///
///     weightShare[e] = Σ_batches tokens·weightShare[e] / Σ tokens     (sums to 1 over e)
///     meanEntropy    = Σ_batches tokens·meanEntropy / Σ tokens        (nats, gate softmax per token)
public enum ProbeRouting {
    /// One forward pass's statistics as a table of its own (the model's words as strings).
    static func table(_ statistics: [RoutingStatistics], of config: ModelConfig) -> RoutingTable {
        RoutingTable(
            routing: config.routing.rawValue, experts: config.numExperts,
            rows: statistics.map { s in
                RoutingTable.Row(
                    layer: s.layer, decision: s.decision.rawValue, task: s.task.rawValue, side: s.side.rawValue,
                    segment: s.segment, tokens: s.tokens, weightShare: s.weightShare, meanEntropy: s.meanEntropy)
            })
    }

    /// The passes' tables pooled, in the probe's row order; nil for a dense model (or no pass).
    static func pooled(_ passes: [RoutingTable], of config: ModelConfig, tasks: [TaskKind]) -> RoutingTable? {
        guard config.routing != .none else { return nil }
        return RoutingTable.pooled(passes, tasks: tasks.map(\.rawValue))
    }

    /// Forward passes over every mini-batch `options` describes (the probe's options, every item even
    /// for a shard), pooled: the table an unsharded probe of `model` with these options writes
    /// (`ProbeSummary.routing`) when it excludes no mini-batch, without the backward passes. Nil for
    /// a dense model.
    /// - Throws: `.dataset` (split too small, image shape), `.model` (a batch the model refuses).
    public static func collect(model: Model, dataset: DigitsDataset, options: ProbeOptions)
        throws(ProbeError) -> RoutingTable?
    {
        do {
            try dataset.checkImageShape(imageSize: model.config.imageSize, channels: model.config.channels)
        } catch { throw .dataset(error) }
        let plan = try WorkPlan(options: options, dataset: dataset)
        var passes: [RoutingTable] = []
        for w in 0..<plan.itemCount {
            do {
                let pass = try model.forward(plan.batch(w, dataset: dataset), noise: plan.noise(w))
                passes.append(table(pass.routingStatistics, of: model.config))
            } catch { throw .model(error) }
        }
        return pooled(passes, of: model.config, tasks: plan.tasks)
    }
}

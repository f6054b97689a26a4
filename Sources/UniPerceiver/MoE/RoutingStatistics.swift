import Foundation

/// How one routing decision spread one segment's tokens over the experts, for reporting.
///
/// One record per (MoE layer, decision, side, segment) of a forward pass; the task is the pass's.
/// Only valid (non-padded) positions count. For the data-independent routings every token of a
/// segment shares its unit's decision, so the shares are that decision's weights.
public struct RoutingStatistics: Sendable, Equatable {
    /// The two decisions of an MoE layer: the attention pair (QKV and output projection) and the
    /// FFN pair (`dense` and `dense2`).
    public enum Decision: String, Sendable, CaseIterable {
        case attention
        case ffn
    }

    public let layer: Int
    public let decision: Decision
    public let task: TaskKind
    public let side: SequenceSide
    public let segment: Int
    /// Valid positions of the segment in the batch.
    public let tokens: Int
    /// Mean renormalised gate weight each expert receives per token `[E]` (sums to 1).
    public let weightShare: [Double]
    /// Fraction of tokens whose top-1 expert is e `[E]`.
    public let tokenShare: [Double]
    /// Mean over tokens of the gate entropy `−Σ_e p_e·ln p_e` (nats; the full softmax, before top-k).
    public let meanEntropy: Double

    static func collect(
        _ d: RouteDecision, layer: Int, decision: Decision, _ seq: SequenceBatch
    ) -> [RoutingStatistics] {
        let E = d.experts
        let k = d.topK
        let S = seq.segmentCount
        var weight = [[Double]](repeating: [Double](repeating: 0, count: E), count: S)
        var top1 = weight
        var entropy = [Double](repeating: 0, count: S)
        var tokens = [Int](repeating: 0, count: S)
        var unitEntropy = [Double](repeating: 0, count: d.units)
        for u in 0..<d.units {
            for e in 0..<E {
                let p = Double(d.probs.base[u * E + e])
                if p > 0 { unitEntropy[u] -= p * log(p) }
            }
        }
        for r in 0..<seq.tokenCount where seq.valid[r] {
            let s = seq.segment[r]
            let u = d.unitOfRow[r]
            tokens[s] += 1
            for j in 0..<k { weight[s][d.chosen[u * k + j]] += Double(d.weights[u * k + j]) }
            top1[s][d.chosen[u * k]] += 1
            entropy[s] += unitEntropy[u]
        }
        return (0..<S).map { s in
            let n = Double(max(tokens[s], 1))
            return RoutingStatistics(
                layer: layer, decision: decision, task: seq.task, side: seq.side, segment: s,
                tokens: tokens[s], weightShare: weight[s].map { $0 / n }, tokenShare: top1[s].map { $0 / n },
                meanEntropy: entropy[s] / n)
        }
    }
}

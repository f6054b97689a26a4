import Foundation
import Storage

/// How an MoE model routed the probed mini-batches, as the probe measured it and both files keep
/// it for reports (`/routing` of the probe file and of the interference file; absent for a dense
/// model). One row per (MoE layer, routing decision, task, side, segment), pooled over the task's
/// mini-batches with each weighted by its valid tokens:
///
/// ```
/// /routing                  attrs: routing (e.g. "attribute"), experts E
/// /routing/layer            int64   [R]     0-based encoder layer
/// /routing/decision         strings [R]     "attention" (QKV and output projection) or "ffn"
/// /routing/task             strings [R]     one of the file's tasks
/// /routing/side             strings [R]     "input" or "target"
/// /routing/segment          int64   [R]     segment of that side (a caption input has two)
/// /routing/tokens           int64   [R]     valid tokens counted
/// /routing/weight_share     float64 [R, E]  mean renormalised gate weight per token (a row sums to 1,
///                                           or is all 0 for a segment with no valid token)
/// /routing/mean_entropy     float64 [R]     mean gate softmax entropy per token, in nats
/// ```
///
/// The Interference module knows nothing of the model: these are the model's words as data. The
/// metric does not use them; `analyze` carries them from the probe file to the interference file.
public struct RoutingTable: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var layer: Int
        public var decision: String
        public var task: String
        public var side: String
        public var segment: Int
        public var tokens: Int
        public var weightShare: [Double]
        public var meanEntropy: Double

        public init(
            layer: Int, decision: String, task: String, side: String, segment: Int, tokens: Int,
            weightShare: [Double], meanEntropy: Double
        ) {
            self.layer = layer
            self.decision = decision
            self.task = task
            self.side = side
            self.segment = segment
            self.tokens = tokens
            self.weightShare = weightShare
            self.meanEntropy = meanEntropy
        }
    }

    /// The routing level (`attribute`, `token`, `context`, `modality`, `task`).
    public var routing: String
    /// Experts per MoE-ised linear, E.
    public var experts: Int
    /// In (layer, decision, task in the file's order, side, segment) order.
    public var rows: [Row]

    public init(routing: String, experts: Int, rows: [Row]) {
        self.routing = routing
        self.experts = experts
        self.rows = rows
    }

    public static let path = "/routing"
    static let decisions: Set<String> = ["attention", "ffn"]
    static let sides: Set<String> = ["input", "target"]

    /// The table of several disjoint sets of mini-batches (a sharded probe's shards), as one
    /// probe of all of them: per row, the tokens add and the shares and entropy are token-weighted
    /// means. Equal to one run's table to rounding (its sums run in another order), not to the bit.
    /// Rows in a probe's order: layer, decision, task (in `tasks` order), side, segment. Nil without
    /// tables, or when they disagree on the routing level or expert count (tables of two models).
    public static func pooled(_ tables: [RoutingTable], tasks: [String]) -> RoutingTable? {
        guard let first = tables.first,
            tables.allSatisfy({ $0.routing == first.routing && $0.experts == first.experts }),
            tables.allSatisfy({ $0.rows.allSatisfy { $0.weightShare.count == first.experts } })
        else { return nil }
        struct Key: Hashable {
            var layer: Int, decision: String, task: String, side: String, segment: Int
        }
        func key(_ r: Row) -> Key { Key(layer: r.layer, decision: r.decision, task: r.task, side: r.side, segment: r.segment) }
        var order: [Key] = []
        var sums: [Key: (tokens: Int, weight: [Double], entropy: Double)] = [:]
        for table in tables {
            for r in table.rows {
                let k = key(r)
                let n = Double(r.tokens)
                if var s = sums[k] {
                    s.tokens += r.tokens
                    for e in s.weight.indices { s.weight[e] += n * r.weightShare[e] }
                    s.entropy += n * r.meanEntropy
                    sums[k] = s
                } else {
                    order.append(k)
                    sums[k] = (r.tokens, r.weightShare.map { n * $0 }, n * r.meanEntropy)
                }
            }
        }
        func rank(_ task: String) -> Int { tasks.firstIndex(of: task) ?? tasks.count }
        order.sort {
            ($0.layer, $0.decision, rank($0.task), $0.side, $0.segment) < ($1.layer, $1.decision, rank($1.task), $1.side, $1.segment)
        }
        return RoutingTable(
            routing: first.routing, experts: first.experts,
            rows: order.map { k in
                let s = sums[k]!
                let n = Double(max(s.tokens, 1))
                return Row(
                    layer: k.layer, decision: k.decision, task: k.task, side: k.side, segment: k.segment,
                    tokens: s.tokens, weightShare: s.weight.map { $0 / n }, meanEntropy: s.entropy / n)
            })
    }

    /// Writes the table under `/routing` (nothing for a table without rows).
    public func write(to file: HDF5File) throws(StorageError) {
        guard !rows.isEmpty else { return }
        let p = Self.path
        try file.createGroup(p)
        try file.setAttribute("routing", .string(routing), at: p)
        try file.setAttribute("experts", .int(experts), at: p)
        try file.write(rows.map(\.layer), shape: [rows.count], to: "\(p)/layer")
        try file.write(strings: rows.map(\.decision), to: "\(p)/decision")
        try file.write(strings: rows.map(\.task), to: "\(p)/task")
        try file.write(strings: rows.map(\.side), to: "\(p)/side")
        try file.write(rows.map(\.segment), shape: [rows.count], to: "\(p)/segment")
        try file.write(rows.map(\.tokens), shape: [rows.count], to: "\(p)/tokens")
        try file.write(rows.flatMap(\.weightShare), shape: [rows.count, experts], to: "\(p)/weight_share")
        try file.write(rows.map(\.meanEntropy), shape: [rows.count], to: "\(p)/mean_entropy")
    }

    /// The table under `/routing`, nil when the file has none (a dense model's, or a file written
    /// before the table was stored). Every value is checked: a damaged table is refused, not printed.
    /// - Throws: `.badFile` naming the dataset and what is wrong; `.storage` for HDF5 failures.
    public static func read(from file: HDF5File, tasks: [String]) throws(InterferenceError) -> RoutingTable? {
        let p = path
        guard file.exists(p) else { return nil }
        let name = file.url.path
        func bad(_ dataset: String, _ reason: String) -> InterferenceError {
            .badFile(file: name, reason: "'\(p)\(dataset.isEmpty ? "" : "/" + dataset)': \(reason)")
        }
        let (routing, experts) = try storage { () throws(StorageError) in
            (try file.stringAttribute("routing", at: p), try file.intAttribute("experts", at: p))
        }
        guard experts >= 1 else { throw bad("", "experts = \(experts), expected at least 1") }
        // Printed as is in reports: a level's name, never markup.
        guard !routing.isEmpty, routing.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw bad("", "routing '\(routing)' is not a routing level's name")
        }
        let (layer, segment, tokens, share, entropy) = try storage {
            () throws(StorageError) -> (HDF5Array<Int>, HDF5Array<Int>, HDF5Array<Int>, HDF5Array<Double>, HDF5Array<Double>) in
            (
                try file.read("\(p)/layer", as: Int.self), try file.read("\(p)/segment", as: Int.self),
                try file.read("\(p)/tokens", as: Int.self), try file.read("\(p)/weight_share", as: Double.self),
                try file.read("\(p)/mean_entropy", as: Double.self)
            )
        }
        let r = layer.values.count
        guard r > 0 else { throw bad("layer", "no rows (a probe writes no table rather than an empty one)") }
        let (decision, task, side) = try storage { () throws(StorageError) in
            (
                try file.readStrings("\(p)/decision"), try file.readStrings("\(p)/task"),
                try file.readStrings("\(p)/side")
            )
        }
        for (dataset, shape) in [
            ("layer", layer.shape), ("segment", segment.shape), ("tokens", tokens.shape),
            ("mean_entropy", entropy.shape), ("decision", [decision.count]), ("task", [task.count]),
            ("side", [side.count]),
        ] where shape != [r] {
            throw bad(dataset, "shape \(shape), expected [\(r)] like 'layer'")
        }
        guard share.shape == [r, experts] else {
            throw bad("weight_share", "shape \(share.shape), expected [\(r), \(experts)]")
        }
        let maxEntropy = log(Double(experts))
        var rows: [Row] = []
        for i in 0..<r {
            let w = Array(share.values[(i * experts)..<((i + 1) * experts)])
            guard layer.values[i] >= 0 else { throw bad("layer", "row \(i) is \(layer.values[i])") }
            guard segment.values[i] >= 0 else { throw bad("segment", "row \(i) is \(segment.values[i])") }
            guard tokens.values[i] >= 0 else { throw bad("tokens", "row \(i) is \(tokens.values[i])") }
            guard decisions.contains(decision[i]) else {
                throw bad("decision", "row \(i) is '\(decision[i])', expected attention or ffn")
            }
            guard sides.contains(side[i]) else { throw bad("side", "row \(i) is '\(side[i])', expected input or target") }
            guard tasks.contains(task[i]) else {
                throw bad("task", "row \(i) is '\(task[i])', not one of the file's tasks \(tasks)")
            }
            // A segment with no valid token has no shares (all 0); any other's sum to 1.
            let total = tokens.values[i] == 0 ? 0.0 : 1.0
            guard w.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 + 1e-9 }), abs(w.reduce(0, +) - total) <= 1e-6 else {
                throw bad("weight_share", "row \(i) is \(w), expected shares in [0, 1] summing to \(Int(total))")
            }
            let h = entropy.values[i]
            guard h.isFinite, h >= 0, h <= maxEntropy + 1e-9 else {
                throw bad("mean_entropy", "row \(i) is \(h), expected a value in [0, ln \(experts)]")
            }
            rows.append(
                Row(
                    layer: layer.values[i], decision: decision[i], task: task[i], side: side[i],
                    segment: segment.values[i], tokens: tokens.values[i], weightShare: w, meanEntropy: h))
        }
        // One row per (layer, decision, task, side, segment): a repeated key would be printed twice
        // and pooled twice by a merge.
        var seen = Set<String>()
        for (i, row) in rows.enumerated()
        where !seen.insert("\(row.layer) \(row.decision) \(row.task) \(row.side) \(row.segment)").inserted {
            throw bad("", "row \(i) repeats layer \(row.layer), \(row.decision), \(row.task), \(row.side) \(row.segment)")
        }
        return RoutingTable(routing: routing, experts: experts, rows: rows)
    }
}

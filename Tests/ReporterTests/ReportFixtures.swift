import Foundation
import Interference
import Reporter

/// A tiny deterministic generator for test data (SplitMix64), so this target needs no `Kernels` import.
struct TestRandom {
    var state: UInt64
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) * 0x1p-53
    }
    /// Approximately standard normal (Irwin–Hall with 12 uniforms).
    mutating func normal() -> Double { (0..<12).reduce(0) { s, _ in s + next() } - 6 }
}

enum ReportFixtures {
    static let tasks = ["cls", "mlm", "cap"]
    static let samples = 6

    /// Rows with a shared direction that `cap` carries with sign `capSign`; `noisyTask` is mostly noise.
    static func rows(seed: UInt64, capSign: Double, noisyTask: Int? = nil) -> [[Double]] {
        var rng = TestRandom(state: seed)
        let width = 24
        let shared = (0..<width).map { _ in rng.normal() }
        let own = (0..<3).map { _ in (0..<width).map { _ in rng.normal() } }
        var rows: [[Double]] = []
        for t in 0..<3 {
            let sign = t == 2 ? capSign : 0.8
            for _ in 0..<samples {
                let scale = 0.5 + 2 * rng.next()
                if t == noisyTask {
                    rows.append((0..<width).map { k in scale * (0.03 * own[t][k] + rng.normal()) })
                } else {
                    rows.append(
                        (0..<width).map { k in
                            scale * (sign * shared[k] + own[t][k] + 0.6 * rng.normal())
                        })
                }
            }
        }
        return rows
    }

    static func run(label: String, kind: String, seed: UInt64, capSign: Double, flagLast: Bool)
        throws -> InterferenceAnalysis
    {
        let layout = try TaskLayout(tasks: tasks, samplesPerTask: samples)
        var groups: [GroupAnalysis] = []
        for (k, layer) in [3, 11].enumerated() {
            let name = "encoder.layers.\(layer)"
            let group = ParameterGroup(
                name: name, parameters: ["\(name).ffn.dense2.weight"], layer: layer,
                role: "ffn.dense2")
            let gram = try GramMatrix(
                rows: rows(
                    seed: seed + UInt64(k), capSign: capSign - 0.3 * Double(k),
                    noisyTask: flagLast && k == 1 ? 1 : nil))
            groups.append(
                try GroupAnalysis(
                    group: group, gram: gram, layout: layout, bootstrapReplicates: 200, seed: 17))
        }
        return InterferenceAnalysis(
            layout: layout, probePath: "probes/\(kind).h5", kind: kind, label: label,
            bootstrapReplicates: 200,
            seed: 17, groups: groups)
    }

    static func dense() throws -> InterferenceAnalysis {
        try run(label: "dense", kind: "dense", seed: 100, capSign: -0.7, flagLast: true)
    }

    static func moe() throws -> InterferenceAnalysis {
        try run(label: "MoE", kind: "moe", seed: 200, capSign: -0.2, flagLast: false)
    }

    static let routing = RoutingStatistics(
        run: "MoE", routing: "attribute", experts: 4,
        entries: [
            .init(layer: 3, task: "cls", load: [0.5, 0.25, 0.125, 0.125]),
            .init(layer: 3, task: "mlm", load: [0.25, 0.25, 0.25, 0.25]),
            .init(layer: 11, task: "cap", load: [0.9, 0.1, 0, 0]),
        ])
}

import Kernels

/// A bootstrap percentile interval for every entry of an interference matrix.
///
/// **Resampling.** Each replicate draws, independently for every task t, `N` sample indices with
/// replacement (`SeededRNG(seed)`, one generator for the whole run; replicate by replicate, task by
/// task in row order, `nextInt(below: N)` per slot). The replicate's matrix is the first-order
/// procedure applied to that multiset of samples.
///
/// **Leave-one-out under resampling.** The notebook drops the pair whose two samples carry the same
/// index (`a == b`). A resampled set may hold copies of one sample, so the rule is applied to the
/// *original* indices: `s*[j,i](b)` is the mean over the resampled task-j members whose original index
/// is not `b`, every copy counted. On the diagonal block this removes every copy of `g_i(b)` (a copy
/// left in would bring back the self-term `‖g_i(b)‖` that leave-one-out exists to remove); on the cross
/// blocks it removes the same-index pairs, as the notebook does. The outer mean runs over the resampled
/// task-i members, copies counted, with the same guard against `s*[i,i](b) ≤ 0`. With every index drawn
/// once this is exactly the point estimate.
///
/// **Interval.** For each entry the finite replicate values are sorted and the `(1−c)/2` and `(1+c)/2`
/// quantiles taken with linear interpolation between order statistics (NumPy's default `"linear"`
/// method: position `q·(R'−1)`). Replicates in which an entry is undefined (a row whose every
/// denominator was flagged) are dropped for that entry and counted in `undefinedValues`.
/// Every group analysed with the same seed sees the same resampled indices (common random numbers).
public struct BootstrapInterval: Sendable, Equatable {
    /// Lower bounds, `T × T`.
    public var low: [[Double]]
    /// Upper bounds, `T × T`.
    public var high: [[Double]]
    /// Coverage, e.g. 0.95.
    public var confidence: Double
    /// Number of replicates drawn.
    public var replicates: Int
    /// Seed of the `SeededRNG`.
    public var seed: UInt64
    /// Sum over entries of the replicates in which the entry was NaN.
    public var undefinedValues: Int

    /// Memberwise.
    public init(
        low: [[Double]], high: [[Double]], confidence: Double, replicates: Int, seed: UInt64,
        undefinedValues: Int
    ) {
        self.low = low
        self.high = high
        self.confidence = confidence
        self.replicates = replicates
        self.seed = seed
        self.undefinedValues = undefinedValues
    }

    /// The default number of replicates.
    public static let defaultReplicates = 1000

    /// Percentile intervals of the first-order interference matrix of a Gram matrix.
    ///
    /// - Parameters:
    ///   - gram: `[T·N, T·N]`, task-major.
    ///   - layout: tasks and N.
    ///   - replicates: number of bootstrap replicates (≥ 1, default 1000).
    ///   - seed: seed of the generator.
    ///   - confidence: coverage in (0, 1), default 0.95.
    /// - Throws: `.invalidBootstrap`, `.shapeMismatch`, `.nonFinite`.
    /// More replicates than this cannot narrow a 95 % interval's Monte-Carlo error further in any
    /// way a report shows, and a mistyped count (1e12) would run for days.
    public static let maxReplicates = 100_000

    public init(
        gram: GramMatrix, layout: TaskLayout, replicates: Int = defaultReplicates, seed: UInt64,
        confidence: Double = 0.95, name: String = "gram"
    ) throws(InterferenceError) {
        // One replicate's interval would be a single resampled value: zero width.
        guard replicates >= 2, replicates <= Self.maxReplicates else {
            throw .invalidBootstrap(reason: "replicates must be in 2…\(Self.maxReplicates), got \(replicates)")
        }
        guard confidence > 0, confidence < 1 else {
            throw .invalidBootstrap(reason: "confidence must be in (0, 1), got \(confidence)")
        }
        let projections = try StepProjections(gram: gram, layout: layout, name: name)
        let taskCount = layout.taskCount
        let n = layout.samplesPerTask
        var samples = [[[Double]]](
            repeating: [[Double]](repeating: [], count: taskCount), count: taskCount)
        var undefined = 0
        var rng = SeededRNG(seed: seed)
        for _ in 0..<replicates {
            var counts = [[Int]](repeating: [Int](repeating: 0, count: n), count: taskCount)
            for t in 0..<taskCount {
                for _ in 0..<n { counts[t][rng.nextInt(below: n)] += 1 }
            }
            let delta = projections.delta(counts: counts)
            let values = meanOfRatios(delta: delta, counts: counts).values
            for i in 0..<taskCount {
                for j in 0..<taskCount {
                    if values[i][j].isFinite {
                        samples[i][j].append(values[i][j])
                    } else {
                        undefined += 1
                    }
                }
            }
        }
        let lowQ = (1 - confidence) / 2
        let highQ = (1 + confidence) / 2
        var low = [[Double]](
            repeating: [Double](repeating: .nan, count: taskCount), count: taskCount)
        var high = low
        for i in 0..<taskCount {
            for j in 0..<taskCount {
                let sorted = samples[i][j].sorted()
                low[i][j] = percentile(sorted: sorted, q: lowQ)
                high[i][j] = percentile(sorted: sorted, q: highQ)
            }
        }
        self.init(
            low: low, high: high, confidence: confidence, replicates: replicates, seed: seed,
            undefinedValues: undefined)
    }

    /// True when `low[i][j] ≤ value ≤ high[i][j]`.
    public func contains(_ value: Double, i: Int, j: Int) -> Bool {
        low[i][j] <= value && value <= high[i][j]
    }
}

/// NumPy's default (`method="linear"`) quantile of sorted values; NaN for an empty list.
public func percentile(sorted: [Double], q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let upper = min(lower + 1, sorted.count - 1)
    let fraction = position - Double(lower)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}

import Kernels

/// One measured loss change for the exact look-ahead variant.
///
/// `lossChange = L_i(x_i^b; θ) − L_i(x_i^b; θ − λ·g_j(a)/‖g_j(a)‖)`, with only the group's parameters
/// stepped ("before − after": positive = the step lowers task i's loss, the sign of §6.1).
public struct LookAheadMeasurement: Sendable, Equatable, Codable {
    /// Task i whose loss is measured, and its sample b.
    public var lossTask: Int
    public var lossSample: Int
    /// Task j that steps, and its sample a (must differ from b: the notebook's leave-one-out).
    public var stepTask: Int
    public var stepSample: Int
    /// The measured loss change (for first-order values: λ·⟨ĝ_j(a), g_i(b)⟩).
    public var lossChange: Double

    /// Memberwise.
    public init(lossTask: Int, lossSample: Int, stepTask: Int, stepSample: Int, lossChange: Double)
    {
        self.lossTask = lossTask
        self.lossSample = lossSample
        self.stepTask = stepTask
        self.stepSample = stepSample
        self.lossChange = lossChange
    }
}

/// Which (loss sample, step sample) pairs the look-ahead evaluates: a seeded subsample.
public enum LookAheadPlan {
    /// For every task i, `lossSamples` distinct samples b; for each of them and every task j,
    /// `stepSamples` distinct samples a ≠ b. Drawn with `SeededRNG(seed)` by partial Fisher–Yates
    /// shuffles in the order i, b, j. Returns measurements with `lossChange = 0` for the caller to fill.
    public static func pairs(layout: TaskLayout, lossSamples: Int, stepSamples: Int, seed: UInt64)
        -> [LookAheadMeasurement]
    {
        let n = layout.samplesPerTask
        let lossCount = min(max(lossSamples, 1), n)
        let stepCount = min(max(stepSamples, 1), n - 1)
        var rng = SeededRNG(seed: seed)
        var out: [LookAheadMeasurement] = []
        for i in 0..<layout.taskCount {
            var bs = Array(0..<n)
            rng.shuffle(&bs)
            for b in bs.prefix(lossCount).sorted() {
                for j in 0..<layout.taskCount {
                    var stepCandidates = (0..<n).filter { $0 != b }
                    rng.shuffle(&stepCandidates)
                    for a in stepCandidates.prefix(stepCount).sorted() {
                        out.append(
                            LookAheadMeasurement(
                                lossTask: i, lossSample: b, stepTask: j, stepSample: a,
                                lossChange: 0))
                    }
                }
            }
        }
        return out
    }

    /// The first-order predictions of the same pairs: `lossChange = λ·Gram[j_a, i_b]/‖g_j(a)‖`.
    /// Feed them to `InterferenceMatrix(lookAhead:…)` to get the first-order value on the same subsample.
    public static func firstOrder(
        _ pairs: [LookAheadMeasurement], gram: GramMatrix, layout: TaskLayout, stepSize: Double
    ) throws(InterferenceError) -> [LookAheadMeasurement] {
        let projections = try StepProjections(gram: gram, layout: layout, name: "gram")
        return try pairs.map {
            (m: LookAheadMeasurement) throws(InterferenceError) -> LookAheadMeasurement in
            try validate(m, layout: layout)
            var copy = m
            let r = layout.row(task: m.stepTask, sample: m.stepSample)
            let c = layout.row(task: m.lossTask, sample: m.lossSample)
            copy.lossChange = stepSize * projections.values[r * layout.rowCount + c]
            return copy
        }
    }

    static func validate(_ m: LookAheadMeasurement, layout: TaskLayout) throws(InterferenceError) {
        let t = layout.taskCount
        let n = layout.samplesPerTask
        guard (0..<t).contains(m.lossTask), (0..<t).contains(m.stepTask),
            (0..<n).contains(m.lossSample), (0..<n).contains(m.stepSample)
        else { throw .invalidMeasurement(reason: "index out of range in \(m)") }
        guard m.lossSample != m.stepSample else {
            throw .invalidMeasurement(
                reason:
                    "step sample equals loss sample \(m.lossSample) (leave-one-out excludes a == b)"
            )
        }
        guard m.lossChange.isFinite else {
            throw .invalidMeasurement(reason: "non-finite loss change in \(m)")
        }
    }
}

extension InterferenceMatrix {
    /// The exact look-ahead variant: measured loss changes, divided exactly as the first-order metric.
    ///
    /// `s[j,i][b] = mean over the measured a of lossChange / λ` (so it is on the first-order scale), then
    /// `I[i,j] = mean over b of s[j,i][b] / s[i,i][b]`, over the b where both are measured and
    /// `s[i,i][b] > 0`. Measured b with `s[i,i][b] ≤ 0` are counted in `nonPositiveDenominators` and
    /// listed in `flaggedSamples`; unmeasured entries of `delta` are NaN.
    ///
    /// - Parameters:
    ///   - measurements: loss changes; every pair must have `a ≠ b`.
    ///   - layout: tasks and N of the probe.
    ///   - stepSize: λ > 0.
    /// - Throws: `.invalidMeasurement` for an index out of range, `a == b`, a non-finite value or λ ≤ 0.
    public init(
        lookAhead measurements: [LookAheadMeasurement], layout: TaskLayout, stepSize: Double
    )
        throws(InterferenceError)
    {
        guard stepSize > 0, stepSize.isFinite else {
            throw .invalidMeasurement(reason: "step size must be positive, got \(stepSize)")
        }
        let t = layout.taskCount
        let n = layout.samplesPerTask
        var sums = [[[Double]]](
            repeating: [[Double]](repeating: [Double](repeating: 0, count: n), count: t), count: t)
        var counts = [[[Int]]](
            repeating: [[Int]](repeating: [Int](repeating: 0, count: n), count: t), count: t)
        for m in measurements {
            try LookAheadPlan.validate(m, layout: layout)
            sums[m.lossTask][m.stepTask][m.lossSample] += m.lossChange / stepSize
            counts[m.lossTask][m.stepTask][m.lossSample] += 1
        }
        var delta = sums
        for i in 0..<t {
            for j in 0..<t {
                for b in 0..<n {
                    delta[i][j][b] =
                        counts[i][j][b] > 0 ? sums[i][j][b] / Double(counts[i][j][b]) : .nan
                }
            }
        }
        var values = [[Double]](repeating: [Double](repeating: .nan, count: t), count: t)
        var nonPositive = [Int](repeating: 0, count: t)
        var flagged = [[Int]](repeating: [], count: t)
        for i in 0..<t {
            var ratioSums = [Double](repeating: 0, count: t)
            var ratioCounts = [Int](repeating: 0, count: t)
            for b in 0..<n where counts[i][i][b] > 0 {
                let own = delta[i][i][b]
                guard own > 0 else {
                    nonPositive[i] += 1
                    flagged[i].append(b)
                    continue
                }
                for j in 0..<t where counts[i][j][b] > 0 {
                    ratioSums[j] += delta[i][j][b] / own
                    ratioCounts[j] += 1
                }
            }
            for j in 0..<t where ratioCounts[j] > 0 {
                values[i][j] = i == j ? 1 : ratioSums[j] / Double(ratioCounts[j])
            }
        }
        self.init(
            layout: layout, values: values, delta: delta, nonPositiveDenominators: nonPositive,
            flaggedSamples: flagged)
    }

    /// `|self − reference| / |reference|` entry by entry (NaN where the reference is 0 or undefined):
    /// the relative difference between the look-ahead and the first-order value.
    public func relativeDifference(from reference: InterferenceMatrix) -> [[Double]] {
        values.indices.map { i in
            values[i].indices.map { j in
                let r = reference.values[i][j]
                return r != 0 && r.isFinite ? abs(values[i][j] - r) / abs(r) : .nan
            }
        }
    }
}

/// How the exact look-ahead computes the actual loss change `L(θ) − L(θ + s)` of a pair.
///
/// * `difference`: two Float32 forward passes, subtracted in Double. Exact up to the forward's
///   round-off, ~1e-7 of the loss itself, which swamps the change once λ is small.
/// * `integral`: `L(θ + s) − L(θ) = ∫₀¹ ⟨∇L(θ + t·s), s⟩ dt` (the fundamental theorem of calculus) by
///   2-node Gauss–Legendre quadrature, `s` the step actually taken (the rounded endpoint minus θ).
///   Its round-off is relative to the gradient, not to the loss, so a λ small enough for curvature
///   to vanish stays measurable. The rule is exact for a loss that is a cubic along the step, so the
///   step must be short; a routing decision that flips along the step (a jump) is not seen. Costs two
///   forward + backward passes per pair, against one forward.
public enum LookAheadMethod: String, Sendable, CaseIterable {
    case difference
    case integral

    /// Gauss–Legendre nodes on [0, 1] and their weights.
    public static let nodes: [(t: Double, weight: Double)] = [
        (0.5 - 0.5 / (3.0).squareRoot(), 0.5), (0.5 + 0.5 / (3.0).squareRoot(), 0.5),
    ]
}

/// The exact look-ahead check of one group (issue 5 item 4; uniperceiver-model.md §6.4 step 5): the
/// measured loss changes of a seeded subsample of pairs, beside the first-order predictions of the
/// same pairs, each divided the way the metric divides.
///
/// For every pair (task i's sample b, task j's sample a ≠ b):
///
///     exact       Δ = L_i(x_i^b; θ) − L_i(x_i^b; θ − λ·g_j(a)/‖g_j(a)‖)     (only the group's θ move)
///     first-order Δ = λ·⟨g_j(a)/‖g_j(a)‖, g_i(b)⟩                              (from the Gram)
///
/// and `exact`, `firstOrder` are `InterferenceMatrix(lookAhead:…)` of each list: `s[j,i][b]` = mean of
/// Δ/λ over the measured a, `I[i,j]` = mean over measured b of `s[j,i][b]/s[i,i][b]`. When the Taylor
/// approximation holds, the two agree; curvature (the `λ²/2·ĝᵀHĝ` term) and Float32 round-off in the
/// two loss evaluations are what make them differ.
///
/// Equality compares λ, the seed, the method and the measurements; the matrices are functions of them.
public struct LookAheadCheck: Sendable {
    /// λ > 0, the length of the step in parameter space.
    public let stepSize: Double
    /// Seed of `LookAheadPlan.pairs`.
    public let seed: UInt64
    /// How the exact changes were computed.
    public let method: LookAheadMethod
    /// Measured loss changes, one per pair, in plan order.
    public let exactChanges: [LookAheadMeasurement]
    /// The first-order predictions of the same pairs, same order.
    public let firstOrderChanges: [LookAheadMeasurement]
    /// `I` from the measured changes.
    public let exact: InterferenceMatrix
    /// `I` from the first-order predictions of the same pairs.
    public let firstOrder: InterferenceMatrix

    /// Divides both lists the way the metric does.
    /// - Throws: `.invalidMeasurement` when the lists are not the same pairs, λ ≤ 0 or non-finite,
    ///   or a measurement is invalid (see `InterferenceMatrix(lookAhead:layout:stepSize:)`).
    public init(
        stepSize: Double, seed: UInt64, method: LookAheadMethod = .difference, exactChanges: [LookAheadMeasurement],
        firstOrderChanges: [LookAheadMeasurement], layout: TaskLayout
    ) throws(InterferenceError) {
        guard exactChanges.count == firstOrderChanges.count,
            zip(exactChanges, firstOrderChanges).allSatisfy({ $0.samePair(as: $1) })
        else {
            throw .invalidMeasurement(reason: "exact and first-order lists are not the same pairs")
        }
        self.stepSize = stepSize
        self.seed = seed
        self.method = method
        self.exactChanges = exactChanges
        self.firstOrderChanges = firstOrderChanges
        exact = try InterferenceMatrix(lookAhead: exactChanges, layout: layout, stepSize: stepSize)
        firstOrder = try InterferenceMatrix(
            lookAhead: firstOrderChanges, layout: layout, stepSize: stepSize)
    }

    /// Number of measured pairs.
    public var pairCount: Int { exactChanges.count }

    /// `|I_exact − I_first-order| / |I_first-order|` entry by entry (NaN where undefined).
    public var relativeDifference: [[Double]] { exact.relativeDifference(from: firstOrder) }

    /// `‖I_exact − I_first-order‖ / ‖I_first-order‖` (Frobenius) over the off-diagonal entries
    /// finite in both (the diagonal is 1 in both by construction); NaN when there is none. One
    /// number for "do they agree": unlike the entrywise ratio it does not explode on one entry
    /// whose first-order value is near 0.
    public var offDiagonalRelativeDifference: Double {
        var difference = 0.0
        var reference = 0.0
        for i in exact.values.indices {
            for j in exact.values[i].indices where i != j {
                let a = exact.values[i][j]
                let b = firstOrder.values[i][j]
                guard a.isFinite, b.isFinite else { continue }
                difference += (a - b) * (a - b)
                reference += b * b
            }
        }
        return reference > 0 ? (difference / reference).squareRoot() : .nan
    }

    /// `‖Δ_exact − Δ_first-order‖ / ‖Δ_first-order‖` over all pairs: the Taylor check before any
    /// division (the per-sample ratios amplify differences whose denominators are near 0).
    public var lossChangeRelativeDifference: Double {
        var difference = 0.0
        var reference = 0.0
        for (e, f) in zip(exactChanges, firstOrderChanges) {
            difference += (e.lossChange - f.lossChange) * (e.lossChange - f.lossChange)
            reference += f.lossChange * f.lossChange
        }
        return reference > 0 ? (difference / reference).squareRoot() : .nan
    }
}

extension LookAheadCheck: Equatable {
    public static func == (lhs: LookAheadCheck, rhs: LookAheadCheck) -> Bool {
        lhs.stepSize == rhs.stepSize && lhs.seed == rhs.seed && lhs.method == rhs.method
            && lhs.exactChanges == rhs.exactChanges
            && lhs.firstOrderChanges == rhs.firstOrderChanges
    }
}

extension LookAheadMeasurement {
    /// Same (i, b, j, a), whatever the loss change.
    public func samePair(as other: LookAheadMeasurement) -> Bool {
        lossTask == other.lossTask && lossSample == other.lossSample
            && stepTask == other.stepTask && stepSample == other.stepSample
    }
}

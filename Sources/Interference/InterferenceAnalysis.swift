/// The analysis of one group of parameters: what `/groups/<name>` of `interference.h5` holds.
public struct GroupAnalysis: Sendable, Equatable {
    /// The group and its members.
    public var group: ParameterGroup
    /// `I`, per-sample `s` values, flagged denominators.
    public var interference: InterferenceMatrix
    /// Bootstrap percentile interval, when one was computed; NaN wherever `I` itself is NaN.
    public var interval: BootstrapInterval?
    /// Mean cosines, conflict fractions and consistency.
    public var agreement: GradientAgreement
    /// The exact look-ahead check (`analyze --lookahead λ`), when one was run.
    public var lookAhead: LookAheadCheck?

    /// Memberwise.
    public init(
        group: ParameterGroup, interference: InterferenceMatrix, interval: BootstrapInterval?,
        agreement: GradientAgreement, lookAhead: LookAheadCheck? = nil
    ) {
        self.group = group
        self.interference = interference
        self.interval = interval
        self.agreement = agreement
        self.lookAhead = lookAhead
    }

    /// The group's name.
    public var name: String { group.name }

    /// Analyses one group from its Gram (the sum of its members' Grams).
    /// - Parameter bootstrapReplicates: 0 for no interval.
    /// - Throws: the errors of `InterferenceMatrix(gram:…)` and `BootstrapInterval(gram:…)`.
    public init(
        group: ParameterGroup, gram: GramMatrix, layout: TaskLayout, bootstrapReplicates: Int,
        seed: UInt64, confidence: Double = 0.95
    ) throws(InterferenceError) {
        let interference = try InterferenceMatrix(gram: gram, layout: layout, name: group.name)
        let agreement = try GradientAgreement(gram: gram, layout: layout, name: group.name)
        var interval =
            bootstrapReplicates > 0
            ? try BootstrapInterval(
                gram: gram, layout: layout, replicates: bootstrapReplicates, seed: seed,
                confidence: confidence, name: group.name)
            : nil
        // No estimate, no interval: where I is undefined (a row whose every own-task denominator
        // was flagged), replicates that happen to avoid the flag would otherwise give a finite
        // interval, and on the diagonal [1, 1], around a value the report prints as n/a.
        for i in layout.tasks.indices {
            for j in layout.tasks.indices where interference.values[i][j].isNaN {
                interval?.low[i][j] = .nan
                interval?.high[i][j] = .nan
            }
        }
        self.init(
            group: group, interference: interference, interval: interval, agreement: agreement)
    }
}

/// Which estimate of the loss change `I` was computed from.
public enum InterferenceMetric: String, Sendable, Codable, CaseIterable {
    /// The notebook's first-order (Taylor) estimate from gradient inner products.
    case firstOrder = "first-order"
    /// Actually stepping the parameters and re-evaluating the loss.
    case lookAhead = "look-ahead"
}

/// Every group of one run analysed: the content of an `interference.h5` file.
public struct InterferenceAnalysis: Sendable, Equatable {
    /// `format` attribute of the file.
    public static let format = "task-interference/interference"
    /// `version` attribute of the file.
    public static let version = 1

    /// Tasks and samples per task.
    public var layout: TaskLayout
    /// The metric's estimate.
    public var metric: InterferenceMetric
    /// Path and SHA-256 of the probe file this came from ("" when unknown).
    public var probePath: String
    public var probeSHA256: String
    /// `"dense"`, `"moe"` or "" (copied from the probe's `kind`).
    public var kind: String
    /// A short name for reports (e.g. "dense", "MoE"); defaults to `kind`.
    public var label: String
    /// Bootstrap settings (0 replicates: no intervals).
    public var bootstrapReplicates: Int
    public var seed: UInt64
    public var confidence: Double
    /// The groups in file order.
    public var groups: [GroupAnalysis]
    /// Mini-batch indices of the probe dropped from every task (non-finite gradients); the layout's
    /// `samplesPerTask` counts the kept ones.
    public var excludedSamples: [Int]
    /// An MoE model's routing of the probed mini-batches, carried from the probe file for reports;
    /// nil for a dense model (the metric does not use it).
    public var routing: RoutingTable?

    /// Memberwise.
    public init(
        layout: TaskLayout, metric: InterferenceMetric = .firstOrder, probePath: String = "",
        probeSHA256: String = "", kind: String = "", label: String = "", bootstrapReplicates: Int,
        seed: UInt64, confidence: Double = 0.95, groups: [GroupAnalysis],
        excludedSamples: [Int] = []
    ) {
        self.excludedSamples = excludedSamples
        self.layout = layout
        self.metric = metric
        self.probePath = probePath
        self.probeSHA256 = probeSHA256
        self.kind = kind
        self.label = label.isEmpty ? kind : label
        self.bootstrapReplicates = bootstrapReplicates
        self.seed = seed
        self.confidence = confidence
        self.groups = groups
    }

    /// Task names.
    public var tasks: [String] { layout.tasks }

    /// The group with this name, if any.
    public func group(named name: String) -> GroupAnalysis? { groups.first { $0.name == name } }

    /// Analyses every group of `grouping` over per-parameter Gram matrices.
    ///
    /// - Parameters:
    ///   - parameters: parameter names in any order.
    ///   - gram: returns a parameter's Gram (called once per member per group, so it may read lazily).
    ///   - layout: tasks and N.
    ///   - grouping: how parameters are pooled.
    ///   - bootstrapReplicates: 0 for none; default 1000.
    ///   - seed: bootstrap seed (the same for every group).
    /// - Throws: `.nothingToGroup` if the grouping leaves nothing, and the errors of the metric;
    ///   whatever `gram` throws.
    public static func analyze(
        parameters: [String], gram: (String) throws(InterferenceError) -> GramMatrix,
        layout: TaskLayout,
        grouping: Grouping, bootstrapReplicates: Int = BootstrapInterval.defaultReplicates,
        seed: UInt64, confidence: Double = 0.95
    ) throws(InterferenceError) -> [GroupAnalysis] {
        let groups = grouping.groups(of: parameters)
        guard !groups.isEmpty else {
            throw .nothingToGroup(grouping: grouping.rawValue, parameters: parameters.sorted(by: naturalLess))
        }
        var out: [GroupAnalysis] = []
        for group in groups {
            var grams: [GramMatrix] = []
            for p in group.parameters { grams.append(try gram(p)) }
            let total = try GramMatrix.sum(grams, name: group.name)
            out.append(
                try GroupAnalysis(
                    group: group, gram: total, layout: layout,
                    bootstrapReplicates: bootstrapReplicates,
                    seed: seed, confidence: confidence))
        }
        return out
    }
}

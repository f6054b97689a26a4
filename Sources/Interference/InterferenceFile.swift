import Foundation
import Storage

/// Reads and writes `interference.h5` (architecture.md, "interference file").
///
/// ```
/// /   attrs: format = "task-interference/interference", version = 1, probe = [path, sha256],
///            tasks, samples_per_task, metric, bootstrap_replicates, seed, confidence, kind, label,
///            excluded_samples (probe mini-batch indices dropped from every task; may be empty)
/// /groups/<group>/interference            float64 [T, T]
/// /groups/<group>/ci_low, ci_high         float64 [T, T]   (only when bootstrap_replicates > 0)
/// /groups/<group>/cosine                  float64 [T, T]
/// /groups/<group>/conflict_fraction       float64 [T, T]
/// /groups/<group>/consistency             float64 [T]
/// /groups/<group>/delta                   float64 [T, T, N]  delta[i, j, b] = s[j,i][b]
/// /groups/<group>/nonpositive_denominators int64  [T]
/// /groups/<group>/zero_norm_rows          int64  [T]
/// /groups/<group>   attrs: parameters, layer, role, undefined_bootstrap_values
/// /groups/<group>/lookahead               only after `analyze --lookahead λ`; attrs: step_size (λ),
///                                         pairs (P), seed, offdiagonal_relative_difference,
///                                         loss_change_relative_difference
/// /groups/<group>/lookahead/exact          float64 [T, T]  I from measured loss changes
/// /groups/<group>/lookahead/first_order    float64 [T, T]  I from λ·⟨ĝ_j(a), g_i(b)⟩ on the same pairs
/// /groups/<group>/lookahead/relative_difference float64 [T, T]  |exact − first_order| / |first_order|
/// /groups/<group>/lookahead/pairs          int64  [P, 4]  (loss task i, loss sample b, step task j, step sample a)
/// /groups/<group>/lookahead/exact_loss_change, first_order_loss_change  float64 [P]
/// /routing/…                              only for an MoE model's probe: `RoutingTable`
/// ```
/// The look-ahead matrices are recomputed from the pairs on reading (they are stored for h5py users).
/// Flagged samples are not stored: they are the b with `!(delta[i, i, b] > 0)`.
/// The seed (UInt64) is stored as the int64 with the same bits.
public enum InterferenceFile {
    /// Writes atomically (the file appears only when complete).
    /// - Throws: `.storage` for any HDF5 failure.
    public static func write(_ analysis: InterferenceAnalysis, to url: URL)
        throws(InterferenceError)
    {
        try storage { () throws(StorageError) in
            try HDF5File.write(to: url) { (file: HDF5File) throws(StorageError) in
                let t = analysis.layout.taskCount
                let n = analysis.layout.samplesPerTask
                try file.setAttribute("format", .string(InterferenceAnalysis.format))
                try file.setAttribute("version", .int(InterferenceAnalysis.version))
                try file.setAttribute(
                    "probe", .strings([analysis.probePath, analysis.probeSHA256]))
                try file.setAttribute("tasks", .strings(analysis.tasks))
                try file.setAttribute("samples_per_task", .int(n))
                try file.setAttribute("metric", .string(analysis.metric.rawValue))
                try file.setAttribute("bootstrap_replicates", .int(analysis.bootstrapReplicates))
                try file.setAttribute("seed", .int(Int(Int64(bitPattern: analysis.seed))))
                try file.setAttribute("confidence", .double(analysis.confidence))
                try file.setAttribute("kind", .string(analysis.kind))
                try file.setAttribute("label", .string(analysis.label))
                try file.setAttribute("excluded_samples", .ints(analysis.excludedSamples))
                try file.createGroup("/groups")
                for g in analysis.groups {
                    let path = "/groups/\(g.name)"
                    try file.createGroup(path)
                    try file.write(
                        flatten(g.interference.values), shape: [t, t], to: "\(path)/interference")
                    if let ci = g.interval {
                        try file.write(flatten(ci.low), shape: [t, t], to: "\(path)/ci_low")
                        try file.write(flatten(ci.high), shape: [t, t], to: "\(path)/ci_high")
                        try file.setAttribute(
                            "undefined_bootstrap_values", .int(ci.undefinedValues), at: path)
                    }
                    try file.write(
                        flatten(g.agreement.cosine), shape: [t, t], to: "\(path)/cosine")
                    try file.write(
                        flatten(g.agreement.conflictFraction), shape: [t, t],
                        to: "\(path)/conflict_fraction")
                    try file.write(g.agreement.consistency, shape: [t], to: "\(path)/consistency")
                    try file.write(
                        flatten(g.interference.delta), shape: [t, t, n], to: "\(path)/delta")
                    try file.write(
                        g.interference.nonPositiveDenominators, shape: [t],
                        to: "\(path)/nonpositive_denominators")
                    try file.write(
                        g.agreement.zeroNormRows, shape: [t], to: "\(path)/zero_norm_rows")
                    try file.setAttribute("parameters", .strings(g.group.parameters), at: path)
                    try file.setAttribute("layer", .int(g.group.layer), at: path)
                    try file.setAttribute("role", .string(g.group.role), at: path)
                    if let check = g.lookAhead { try writeLookAhead(check, to: file, at: "\(path)/lookahead", tasks: t) }
                }
                try analysis.routing?.write(to: file)
            }
        }
    }

    /// Reads a whole file, checking format, version and every shape.
    /// - Throws: `.badFile` (another format or version, inconsistent shapes), `.storage` (missing
    ///   datasets, not HDF5, truncated).
    public static func read(_ url: URL) throws(InterferenceError) -> InterferenceAnalysis {
        let name = url.path
        let file = try storage { () throws(StorageError) in try HDF5File.open(url) }
        defer { file.discard() }
        let format = try storage { () throws(StorageError) in try file.stringAttribute("format") }
        guard format == InterferenceAnalysis.format else {
            throw .badFile(
                file: name,
                reason: "format is '\(format)', expected '\(InterferenceAnalysis.format)'")
        }
        let version = try storage { () throws(StorageError) in try file.intAttribute("version") }
        guard version == InterferenceAnalysis.version else {
            throw .badFile(
                file: name,
                reason:
                    "version \(version), this tool reads version \(InterferenceAnalysis.version)")
        }
        let tasks = try storage { () throws(StorageError) in try file.stringsAttribute("tasks") }
        let n = try storage { () throws(StorageError) in try file.intAttribute("samples_per_task") }
        let layout: TaskLayout
        do throws(InterferenceError) {
            layout = try TaskLayout(tasks: tasks, samplesPerTask: n)
        } catch {
            throw .badFile(file: name, reason: error.description)
        }
        let t = layout.taskCount
        let probe = try storage { () throws(StorageError) in try file.stringsAttribute("probe") }
        let metricName = try storage { () throws(StorageError) in try file.stringAttribute("metric")
        }
        guard let metric = InterferenceMetric(rawValue: metricName) else {
            throw .badFile(file: name, reason: "unknown metric '\(metricName)'")
        }
        let replicates = try storage { () throws(StorageError) in
            try file.intAttribute("bootstrap_replicates")
        }
        let seed = UInt64(
            bitPattern: Int64(
                try storage { () throws(StorageError) in try file.intAttribute("seed") }))
        let confidence = try storage { () throws(StorageError) in
            try file.doubleAttribute("confidence")
        }
        let kind = try storage { () throws(StorageError) in try file.stringAttribute("kind") }
        let label = try storage { () throws(StorageError) in try file.stringAttribute("label") }
        let excluded = try storage { () throws(StorageError) in
            try file.intsAttribute("excluded_samples")
        }

        func matrix(_ path: String, _ shape: [Int]) throws(InterferenceError) -> [Double] {
            let array = try storage { () throws(StorageError) in
                try file.read(path, as: Double.self)
            }
            guard array.shape == shape else {
                throw .badFile(
                    file: name, reason: "'\(path)' has shape \(array.shape), expected \(shape)")
            }
            return array.values
        }
        func ints(_ path: String) throws(InterferenceError) -> [Int] {
            let array = try storage { () throws(StorageError) in try file.read(path, as: Int.self) }
            guard array.shape == [t] else {
                throw .badFile(
                    file: name, reason: "'\(path)' has shape \(array.shape), expected [\(t)]")
            }
            return array.values
        }

        let names = try storage { () throws(StorageError) in try file.children(of: "/groups") }
        var groups: [GroupAnalysis] = []
        for groupName in names.sorted(by: naturalLess) {
            let path = "/groups/\(groupName)"
            let values = unflatten(try matrix("\(path)/interference", [t, t]), rows: t, columns: t)
            let deltaFlat = try matrix("\(path)/delta", [t, t, n])
            let delta = (0..<t).map { i in
                unflatten(Array(deltaFlat[(i * t * n)..<((i + 1) * t * n)]), rows: t, columns: n)
            }
            let nonPositive = try ints("\(path)/nonpositive_denominators")
            let flagged = (0..<t).map { i in (0..<n).filter { !(delta[i][i][$0] > 0) } }
            let interference = InterferenceMatrix(
                layout: layout, values: values, delta: delta, nonPositiveDenominators: nonPositive,
                flaggedSamples: flagged)
            var interval: BootstrapInterval?
            if replicates > 0 {
                let undefined = try storage { () throws(StorageError) in
                    try file.intAttribute("undefined_bootstrap_values", at: path)
                }
                interval = BootstrapInterval(
                    low: unflatten(try matrix("\(path)/ci_low", [t, t]), rows: t, columns: t),
                    high: unflatten(try matrix("\(path)/ci_high", [t, t]), rows: t, columns: t),
                    confidence: confidence, replicates: replicates, seed: seed,
                    undefinedValues: undefined)
            }
            let agreement = GradientAgreement(
                cosine: unflatten(try matrix("\(path)/cosine", [t, t]), rows: t, columns: t),
                conflictFraction: unflatten(
                    try matrix("\(path)/conflict_fraction", [t, t]), rows: t, columns: t),
                zeroNormRows: try ints("\(path)/zero_norm_rows"))
            let parameters = try storage { () throws(StorageError) in
                try file.stringsAttribute("parameters", at: path)
            }
            let layer = try storage { () throws(StorageError) in
                try file.intAttribute("layer", at: path)
            }
            let role = try storage { () throws(StorageError) in
                try file.stringAttribute("role", at: path)
            }
            let lookAhead =
                file.exists("\(path)/lookahead")
                ? try readLookAhead(file, at: "\(path)/lookahead", layout: layout) : nil
            groups.append(
                GroupAnalysis(
                    group: ParameterGroup(
                        name: groupName, parameters: parameters, layer: layer, role: role),
                    interference: interference, interval: interval, agreement: agreement,
                    lookAhead: lookAhead))
        }
        var analysis = InterferenceAnalysis(
            layout: layout, metric: metric, probePath: probe.first ?? "",
            probeSHA256: probe.dropFirst().first ?? "",
            kind: kind, label: label, bootstrapReplicates: replicates, seed: seed,
            confidence: confidence,
            groups: groups, excludedSamples: excluded)
        analysis.routing = try RoutingTable.read(from: file, tasks: tasks)
        return analysis
    }

    private static func writeLookAhead(
        _ check: LookAheadCheck, to file: HDF5File, at path: String, tasks t: Int
    ) throws(StorageError) {
        let p = check.pairCount
        try file.createGroup(path)
        try file.setAttribute("step_size", .double(check.stepSize), at: path)
        try file.setAttribute("pairs", .int(p), at: path)
        try file.setAttribute("seed", .int(Int(Int64(bitPattern: check.seed))), at: path)
        try file.setAttribute("method", .string(check.method.rawValue), at: path)
        try file.setAttribute(
            "offdiagonal_relative_difference", .double(check.offDiagonalRelativeDifference), at: path)
        try file.setAttribute(
            "loss_change_relative_difference", .double(check.lossChangeRelativeDifference), at: path)
        try file.write(flatten(check.exact.values), shape: [t, t], to: "\(path)/exact")
        try file.write(flatten(check.firstOrder.values), shape: [t, t], to: "\(path)/first_order")
        try file.write(
            flatten(check.relativeDifference), shape: [t, t], to: "\(path)/relative_difference")
        try file.write(
            check.exactChanges.flatMap { [$0.lossTask, $0.lossSample, $0.stepTask, $0.stepSample] },
            shape: [p, 4], to: "\(path)/pairs")
        try file.write(check.exactChanges.map(\.lossChange), shape: [p], to: "\(path)/exact_loss_change")
        try file.write(
            check.firstOrderChanges.map(\.lossChange), shape: [p], to: "\(path)/first_order_loss_change")
    }

    private static func readLookAhead(_ file: HDF5File, at path: String, layout: TaskLayout)
        throws(InterferenceError) -> LookAheadCheck
    {
        let name = file.url.path
        let (stepSize, seed, pairs, exact, firstOrder) = try storage {
            () throws(StorageError) -> (Double, UInt64, HDF5Array<Int>, HDF5Array<Double>, HDF5Array<Double>) in
            (
                try file.doubleAttribute("step_size", at: path),
                UInt64(bitPattern: Int64(try file.intAttribute("seed", at: path))),
                try file.read("\(path)/pairs", as: Int.self),
                try file.read("\(path)/exact_loss_change", as: Double.self),
                try file.read("\(path)/first_order_loss_change", as: Double.self)
            )
        }
        // Files written before the method was recorded used the direct difference.
        let methodName = try storage { () throws(StorageError) -> String in
            file.hasAttribute("method", at: path) ? try file.stringAttribute("method", at: path) : "difference"
        }
        guard let method = LookAheadMethod(rawValue: methodName) else {
            throw .badFile(file: name, reason: "'\(path)': unknown look-ahead method '\(methodName)'")
        }
        let p = exact.values.count
        guard pairs.shape == [p, 4], exact.shape == [p], firstOrder.shape == [p] else {
            throw .badFile(
                file: name,
                reason: "'\(path)': pairs \(pairs.shape), loss changes \(exact.shape) and \(firstOrder.shape) disagree")
        }
        func measurements(_ changes: [Double]) -> [LookAheadMeasurement] {
            (0..<p).map { k in
                LookAheadMeasurement(
                    lossTask: pairs.values[4 * k], lossSample: pairs.values[4 * k + 1],
                    stepTask: pairs.values[4 * k + 2], stepSample: pairs.values[4 * k + 3],
                    lossChange: changes[k])
            }
        }
        do throws(InterferenceError) {
            return try LookAheadCheck(
                stepSize: stepSize, seed: seed, method: method, exactChanges: measurements(exact.values),
                firstOrderChanges: measurements(firstOrder.values), layout: layout)
        } catch {
            throw .badFile(file: name, reason: "'\(path)': \(error.description)")
        }
    }
}

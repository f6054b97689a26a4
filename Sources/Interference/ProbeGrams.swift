import Foundation
import Storage

/// Read access to a probe file (`probe.h5`, architecture.md "probe file"): the task layout, the
/// parameter names and each parameter's Gram matrix, read on demand.
///
/// Only what the metric needs is read: root attributes `format` (= "task-interference/probe"),
/// `version` (= 1), `tasks`, `samples_per_task`, optional `kind`; `/parameters/<name>/gram` float64
/// `[T·N, T·N]`; optional `/tasks/<task>/nonfinite` uint8 `[N]` (1 = mini-batch excluded by
/// `--skip-nonfinite`, its rows zero); optional `/routing` (`RoutingTable`, carried to the analysis). The probe module (`GradientProbe.ProbeFile`) writes the file;
/// this reader never changes it, and refuses a shard (root attribute `shard`: no Gram yet).
///
/// **Excluded mini-batches.** The notebook pairs sample `b` of every task, so a mini-batch index
/// excluded in any task is dropped from all tasks: `layout` then has `N − |excluded|` samples per task,
/// `gram(of:)` returns the Gram of the kept rows (in their original order), and `delta`'s sample axis
/// counts kept samples. `excludedSamples` lists the dropped original indices.
public final class ProbeGrams: Sendable {
    /// `format` attribute of a probe file.
    public static let format = "task-interference/probe"
    /// The version this reader understands.
    public static let version = 1

    /// The file.
    public let url: URL
    /// Tasks and samples per task.
    public let layout: TaskLayout
    /// `kind` attribute ("dense", "moe"), "" when absent.
    public let kind: String
    /// Parameter names under `/parameters`, natural order.
    public let parameters: [String]
    /// Mini-batch indices dropped from every task (non-finite in some task), ascending.
    public let excludedSamples: [Int]
    /// An MoE probe's routing table (`/routing`), nil when the file has none.
    public let routing: RoutingTable?
    /// The layout of the file's Gram rows, before exclusion.
    public let storedLayout: TaskLayout
    private let file: HDF5File

    /// Opens and checks a probe file.
    /// - Throws: `.badFile` for another format or version or a bad layout; `.storage` when HDF5
    ///   cannot open it (missing, not HDF5, truncated) or an attribute is missing.
    public init(url: URL) throws(InterferenceError) {
        let name = url.path
        let file = try storage { () throws(StorageError) in try HDF5File.open(url) }
        let format = try storage { () throws(StorageError) in try file.stringAttribute("format") }
        guard format == Self.format else {
            throw .badFile(file: name, reason: "format is '\(format)', expected '\(Self.format)'")
        }
        let version = try storage { () throws(StorageError) in try file.intAttribute("version") }
        guard version == Self.version else {
            throw .badFile(
                file: name,
                reason: "probe version \(version), this tool reads version \(Self.version)")
        }
        let tasks = try storage { () throws(StorageError) in try file.stringsAttribute("tasks") }
        let n = try storage { () throws(StorageError) in try file.intAttribute("samples_per_task") }
        guard !file.hasAttribute("shard") else {
            throw .badFile(
                file: name,
                reason: "is a probe shard (no Gram matrices); run 'interference merge' first")
        }
        var excluded = Set<Int>()
        for task in tasks where file.exists("/tasks/\(task)/nonfinite") {
            let mask = try storage { () throws(StorageError) in
                try file.read("/tasks/\(task)/nonfinite", as: UInt8.self)
            }
            guard mask.shape == [n] else {
                throw .badFile(
                    file: name,
                    reason: "'/tasks/\(task)/nonfinite' has shape \(mask.shape), expected [\(n)]")
            }
            for (b, flag) in mask.values.enumerated() where flag != 0 { excluded.insert(b) }
        }
        excludedSamples = excluded.sorted()
        do throws(InterferenceError) {
            storedLayout = try TaskLayout(tasks: tasks, samplesPerTask: n)
            layout = try TaskLayout(tasks: tasks, samplesPerTask: n - excluded.count)
        } catch {
            throw .badFile(file: name, reason: error.description)
        }
        kind =
            file.hasAttribute("kind")
            ? (try storage { () throws(StorageError) in try file.stringAttribute("kind") }) : ""
        parameters = try storage { () throws(StorageError) in try file.children(of: "/parameters") }
            .sorted(by: naturalLess)
        routing = try RoutingTable.read(from: file, tasks: tasks)
        self.url = url
        self.file = file
    }

    deinit { file.discard() }

    /// The Gram matrix of one parameter (of the kept samples, see `excludedSamples`).
    /// - Throws: `.missing` for an unknown parameter, `.badFile` for a wrong shape, `.storage`.
    public func gram(of parameter: String) throws(InterferenceError) -> GramMatrix {
        guard parameters.contains(parameter) else {
            throw .missing(file: url.path, what: "parameter '\(parameter)'")
        }
        let path = "/parameters/\(parameter)/gram"
        let array = try storage { () throws(StorageError) in try file.read(path, as: Double.self) }
        let r = storedLayout.rowCount
        guard array.shape == [r, r] else {
            throw .badFile(
                file: url.path, reason: "'\(path)' has shape \(array.shape), expected [\(r), \(r)]")
        }
        let gram: GramMatrix
        do {
            gram = try GramMatrix(size: r, values: array.values)
            try gram.validateFinite(name: "gram")
        } catch {
            throw .badFile(file: url.path, reason: "'\(path)': \(error.description)")
        }
        try checkGramShape(gram, path: path)
        guard !excludedSamples.isEmpty else { return gram }
        let kept = (0..<storedLayout.samplesPerTask).filter { !excludedSamples.contains($0) }
        return gram.keepingSamples(kept, of: storedLayout)
    }

    /// A Gram is a matrix of dot products: its diagonal holds squared norms (never negative) and it
    /// is symmetric (the probe writes the lower triangle as the mirror of the upper, exactly). A
    /// file breaking either is damaged, and would turn into NaN or silently wrong ratios.
    private func checkGramShape(_ gram: GramMatrix, path: String) throws(InterferenceError) {
        let n = gram.size
        let g = gram.values
        for i in 0..<n where g[i * n + i] < 0 {
            throw .badFile(file: url.path, reason: "'\(path)': diagonal entry [\(i), \(i)] = \(g[i * n + i]) is a negative squared norm")
        }
        for i in 0..<n {
            for j in (i + 1)..<max(n, i + 1) {
                // Within round-off of the larger entry, for Grams summed or written by other tools.
                let tolerance = 1e-12 * (g[i * n + i] * g[j * n + j]).squareRoot()
                guard abs(g[i * n + j] - g[j * n + i]) <= tolerance else {
                    throw .badFile(
                        file: url.path,
                        reason: "'\(path)': not symmetric: [\(i), \(j)] = \(g[i * n + j]) but [\(j), \(i)] = \(g[j * n + i])")
                }
            }
        }
    }

    /// Analyses every group of a grouping (see `InterferenceAnalysis.analyze`) over the parameters
    /// `including` keeps (default all).
    /// - Parameter probeSHA256: recorded in the result; the caller computes it (Storage has no hash).
    public func analyze(
        grouping: Grouping, bootstrapReplicates: Int = BootstrapInterval.defaultReplicates,
        seed: UInt64,
        confidence: Double = 0.95, probeSHA256: String = "", label: String = "",
        including: (String) -> Bool = { _ in true }
    ) throws(InterferenceError) -> InterferenceAnalysis {
        let groups: [GroupAnalysis]
        do {
            groups = try InterferenceAnalysis.analyze(
                parameters: parameters.filter(including),
                gram: { (p: String) throws(InterferenceError) -> GramMatrix in try gram(of: p) },
                layout: layout, grouping: grouping, bootstrapReplicates: bootstrapReplicates,
                seed: seed,
                confidence: confidence)
        } catch {
            // Errors about this file's content that do not say which file they are about yet.
            switch error {
            case .badFile, .missing, .storage, .invalidBootstrap: throw error
            default: throw .badFile(file: url.path, reason: error.description)
            }
        }
        var analysis = InterferenceAnalysis(
            layout: layout, metric: .firstOrder, probePath: url.path, probeSHA256: probeSHA256,
            kind: kind,
            label: label, bootstrapReplicates: bootstrapReplicates, seed: seed,
            confidence: confidence,
            groups: groups, excludedSamples: excludedSamples)
        analysis.routing = routing
        return analysis
    }
}

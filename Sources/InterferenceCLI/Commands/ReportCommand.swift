import ArgumentParser
import Foundation
import Interference
import Reporter

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a markdown report (and one SVG heatmap per run and group beside it) of one or more interference files.",
        discussion: """
            The runs are side by side, and every later run is also shown minus the first (e.g. dense \
            then MoE: MoE − dense); an MoE run's routing table follows. Every file appears under its \
            final name only when complete.
            """)

    @Argument(help: "Interference files written by `interference analyze`; the first is the baseline of the differences.")
    var files: [String]

    @Option(help: "Groups to show, comma-separated (default: all).")
    var groups: String?

    @Option(help: "Report title.")
    var title = "Task interference"

    @Option(help: "Output markdown file; heatmaps are written in the same folder, named after it (OUT-RUN-GROUP.svg).")
    var out: String

    @Option(help: "How a cell shows its bootstrap interval: plus-minus (value ± half-width) or bracket (value [low, high]).")
    var intervals: IntervalOption = .plusMinus

    func run() throws {
        let inputs = try FileChecks.inputs(files.map { ("FILE", $0) })
        let url = try FileChecks.output(out, inputs: inputs)
        let report = try makeReport(runs: try read(inputs))
        let heatmaps = try StagedOutputs.run(protecting: inputs) { outputs in
            try Report.stage(report, at: url, in: outputs)
        }
        print("wrote \(out) and \(heatmaps) heatmaps")
    }

    /// The runs, each refused (naming its file) when it has nothing to show or a value the analysis
    /// never writes.
    func read(_ inputs: [InputFile]) throws(InputError) -> [InterferenceAnalysis] {
        var runs: [InterferenceAnalysis] = []
        for input in inputs {
            do {
                let run = try InterferenceFile.read(input.url)
                guard !run.groups.isEmpty else { throw InputError("\(input.path): holds no groups, nothing to report") }
                try checkValues(of: run, file: input.path)
                runs.append(run)
            } catch let error as InputError {
                throw error
            } catch {
                throw InputError("\(error)")
            }
        }
        return runs
    }

    /// The report of `runs`; a refusal names the files it is about.
    func makeReport(runs: [InterferenceAnalysis]) throws(InputError) -> MarkdownReport {
        let selected = try groups.map { text throws(InputError) in try OptionValues.names(text, option: "--groups") }
        do {
            return try MarkdownReport(
                runs: runs, groups: selected, intervalStyle: intervals.style, heatmapDirectory: ".", title: title)
        } catch {
            let both = files.count <= 2 ? files.joined(separator: " and ") : files.dropLast().joined(separator: ", ") + " and " + files.last!
            switch error {
            case .sameLabel(let label):
                throw InputError(
                    "\(both): two runs are labelled '\(label)', so their heatmaps would overwrite each other "
                        + "(give one another label: interference analyze --label)")
            case .incompatible(let reason): throw InputError("\(both): cannot be reported side by side: \(reason)")
            case .clashingHeatmaps: throw InputError("\(both): \(error.description)")
            case .unknownGroup(let group): throw InputError("--groups: no group '\(group)' in \(both)")
            default: throw InputError(error.description)
            }
        }
    }
}

/// A markdown report and its heatmaps, staged beside each other (`StagedOutputs`: all of them
/// appear, or none).
enum Report {
    /// Stages the heatmaps, then the report at `url` (with `appendix` after it); returns how many
    /// heatmaps.
    @discardableResult
    static func stage(_ report: MarkdownReport, appendix: String = "", at url: URL, in outputs: StagedOutputs)
        throws(InputError) -> Int
    {
        let folder = url.deletingLastPathComponent()
        // `a.md` and `b.md` in one folder, with runs of the same label, would share heatmaps.
        var report = report
        report.heatmapPrefix = url.deletingPathExtension().lastPathComponent
        let maps = report.heatmaps()
        for map in maps {
            try outputs.write(Data(map.svg.utf8), to: folder.appendingPathComponent(map.fileName))
        }
        try outputs.write(Data((report.render() + appendix).utf8), to: url)
        return maps.count
    }

    /// The report of `runs` as `report`, `diagnose` and `demo` write it, with the routing table of
    /// every MoE run that carries one.
    static func make(
        runs: [InterferenceAnalysis], title: String = "Task interference",
        intervals: MarkdownReport.IntervalStyle = .plusMinus
    ) throws(InputError) -> MarkdownReport {
        do {
            return try MarkdownReport(runs: runs, intervalStyle: intervals, heatmapDirectory: ".", title: title)
        } catch {
            throw InputError(error.description)
        }
    }
}

/// `--intervals` of `report` and `diagnose`: the report's `MarkdownReport.IntervalStyle`, spelled as
/// on the command line.
enum IntervalOption: String, ExpressibleByArgument, CaseIterable {
    case plusMinus = "plus-minus"
    case bracket

    var style: MarkdownReport.IntervalStyle { self == .bracket ? .bracket : .plusMinus }
}

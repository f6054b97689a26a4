import ArgumentParser
import Foundation
import Interference
import Reporter

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a markdown report (and one SVG heatmap per run and group beside it) of one or two interference files.",
        discussion: """
            With two files (e.g. dense then MoE) the runs are side by side with the second minus the \
            first. Every file appears under its final name only when complete.
            """)

    @Argument(help: "One or two interference files written by `interference analyze`.")
    var files: [String]

    @Option(help: "Groups to show, comma-separated (default: all).")
    var groups: String?

    @Option(help: "Report title.")
    var title = "Task interference"

    @Option(help: "Output markdown file; heatmaps are written in the same folder.")
    var out: String

    func run() throws {
        do {
            let inputs = try FileChecks.inputs(files.map { ("FILE", $0) })
            try FileChecks.refuseOverwriting(inputs, by: URL(fileURLWithPath: out), option: "--out")
            let runs = try inputs.map { file throws(InterferenceError) in try InterferenceFile.read(file.url) }
            let selected = groups.map {
                $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            }
            let report = try MarkdownReport(
                runs: runs, groups: selected, heatmapDirectory: ".", title: title)
            let url = URL(fileURLWithPath: out)
            let directory = url.deletingLastPathComponent()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let maps = report.heatmaps()
            for map in maps {
                try Data(map.svg.utf8).write(
                    to: directory.appendingPathComponent(map.fileName), options: .atomic)
            }
            try Data(report.render().utf8).write(to: url, options: .atomic)
            print("wrote \(out) and \(maps.count) heatmaps")
        } catch let error as InterferenceError {
            throw InputError(error.description)
        } catch let error as ReportError {
            throw InputError(error.description)
        } catch let error as CocoaError {
            throw InputError("cannot write \(out): \(error.localizedDescription)")
        }
    }
}

import ArgumentParser
import Foundation
import GradientProbe

/// The `interference` executable: parse, call one library function, print (architecture.md,
/// "Command line"). Subcommands live in `Commands/`, one file each; add yours to `subcommands`.
@main
struct InterferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interference",
        abstract: "Train a small Uni-Perceiver on four tasks and measure how the tasks interfere.",
        discussion: ExitCodes.helpText,
        // The version every probe file records (`tool_version`), so a report can be matched to it.
        version: Probe.toolVersion,
        subcommands: [
            TrainCommand.self,
            EvaluateCommand.self,
            ProbeCommand.self, MergeCommand.self,
            AnalyzeCommand.self, ReportCommand.self, CheckCommand.self,
            DiagnoseCommand.self, DemoCommand.self,
            ReadMetadataCommand.self,
        ])

    /// Argument-parser's own `main()` exits 64 on usage errors under Linux; this one maps every
    /// failure through `ExitCodes.report` (usage and bad input → 2).
    static func main() {
        StandardStreams.reopenClosed()
        TerminationCleanup.install()
        let arguments = Array(CommandLine.arguments.dropFirst())
        Foundation.exit(StandardStreams.flushedStatus(run(arguments), subcommand: arguments.first))
    }

    static func run(_ arguments: [String]) -> Int32 {
        // Argument-parser prints the overview and exits 0 for no arguments at all: a script that
        // lost its subcommand would pass. That is bad usage (exit 2), in one line.
        let names = configuration.subcommands.filter { $0.configuration.shouldDisplay }
            .compactMap { $0.configuration.commandName }
        guard !arguments.isEmpty else {
            ExitCodes.printError("no subcommand given: one of \(names.joined(separator: ", ")) (see 'interference --help')")
            return ExitCodes.badInput
        }
        // `help NAME` with a NAME that is no subcommand would print the overview and exit 0 too.
        if arguments.first == "help", arguments.count > 1, !arguments[1].hasPrefix("-"),
            !(names + ["help"]).contains(arguments[1])
        {
            ExitCodes.printError("help: no subcommand '\(arguments[1])': one of \(names.joined(separator: ", "))")
            return ExitCodes.badInput
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return ExitCodes.success
        } catch {
            // A usage error points to the help of the subcommand it is about, which documents the
            // option; the root's help does not.
            let subcommand = arguments.first.flatMap { first in
                configuration.subcommands.compactMap { command in command.configuration.commandName }.first { $0 == first }
            }
            return ExitCodes.report(
                error, command: self, help: ["interference", subcommand].compactMap { $0 }.joined(separator: " "))
        }
    }
}

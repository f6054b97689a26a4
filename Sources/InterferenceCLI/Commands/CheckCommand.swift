import ArgumentParser
import Foundation
import Reporter

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Regression check: exit 1 when an interference entry of the candidate moved away from the baseline.",
        discussion: """
            An entry moved when |candidate − baseline| > --tolerance, or with --use-intervals when it \
            leaves the baseline's bootstrap interval (stretched to hold the baseline's own value, \
            which a percentile interval can miss) widened by --tolerance. Prints a markdown table \
            of what moved. Exit 0: nothing moved; 1: something moved; 2: the files cannot be read or \
            compared (different tasks, groups, metric or format version).
            """)

    @Option(help: "Baseline interference file.")
    var baseline: String

    @Option(help: "Candidate interference file.")
    var candidate: String

    @Option(parsing: .unconditional, help: "Largest change allowed (or the widening of the baseline interval).")
    var tolerance = 0.05

    @Flag(help: "Compare against the baseline's bootstrap intervals instead of its values.")
    var useIntervals = false

    func validate() throws {
        guard tolerance.isFinite, tolerance >= 0 else {
            throw ValidationError("--tolerance must be a non-negative number, got \(tolerance)")
        }
    }

    func run() throws {
        let inputs = try FileChecks.inputs([("--baseline", baseline), ("--candidate", candidate)])
        let result: CheckResult
        do {
            result = try compare(
                baselineFile: inputs[0].url, candidateFile: inputs[1].url, tolerance: tolerance,
                useIntervals: useIntervals)
        } catch {
            throw InputError(error.description)
        }
        print(result.markdown, terminator: "")
        guard result.passed else {
            throw CheckFailure(
                message: "\(result.moved.count) of \(result.checked) entries of \(candidate) moved away from \(baseline)")
        }
    }
}

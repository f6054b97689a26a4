import Foundation
import Interference
import Reporter
import Testing

@Suite struct RegressionCheckTests {
    @Test func identicalRunsPass() throws {
        let dense = try ReportFixtures.dense()
        let result = try compare(baseline: dense, candidate: dense, tolerance: 0)
        #expect(result.passed)
        #expect(result.checked == 2 * 9)
        #expect(
            result.markdown == "All 18 entries within tolerance: none moved by more than 0.\n")
    }

    @Test("the table shows a move of the tolerance's size: 4e-4 at tolerance 1e-4 is not 0.000")
    func digitsFollowTheTolerance() throws {
        let baseline = try ReportFixtures.dense()
        var candidate = baseline
        candidate.groups[0].interference.values[0][1] += 4e-4
        let result = try compare(baseline: baseline, candidate: candidate, tolerance: 1e-4)
        #expect(result.digits == 5)
        #expect(result.markdown.hasPrefix("1 of 18 entries moved by more than 0.0001:"))
        #expect(result.markdown.contains("| +0.00040 |"), "\(result.markdown)")
        #expect(try compare(baseline: baseline, candidate: candidate, tolerance: 0.01).digits == 3)
        #expect(try compare(baseline: baseline, candidate: candidate, tolerance: 0.001).digits == 4)
        #expect(try compare(baseline: baseline, candidate: candidate, tolerance: 0).digits == 6)
        // Below what 12 decimals show, the change is written in scientific notation, not as 0.
        var tiny = baseline
        tiny.groups[0].interference.values[0][1] += 4e-15
        let smallest = try compare(baseline: baseline, candidate: tiny, tolerance: 1e-15)
        #expect(smallest.markdown.contains("e-15 |"), "\(smallest.markdown)")
    }

    @Test func flagsAMovedEntryAndPassesWithinTolerance() throws {
        let baseline = try ReportFixtures.dense()
        var candidate = baseline
        candidate.groups[1].interference.values[2][0] += 0.05
        candidate.groups[0].interference.values[0][1] -= 0.004
        let strict = try compare(baseline: baseline, candidate: candidate, tolerance: 0.01)
        #expect(!strict.passed)
        #expect(strict.moved.count == 1)
        #expect(strict.moved[0].group == "encoder.layers.11")
        #expect(strict.moved[0].lossTask == "cap" && strict.moved[0].stepTask == "cls")
        expectSnapshot(strict.markdown, named: "check-moved.md")
        #expect(try compare(baseline: baseline, candidate: candidate, tolerance: 0.1).passed)
    }

    @Test func intervalsFlagLeavingTheBaselineInterval() throws {
        let baseline = try ReportFixtures.dense()
        var candidate = baseline
        let ci = try #require(baseline.groups[0].interval)
        candidate.groups[0].interference.values[1][2] = ci.high[1][2] + 0.001
        let result = try compare(
            baseline: baseline, candidate: candidate, tolerance: 0, useIntervals: true)
        #expect(result.moved.map { [$0.lossTask, $0.stepTask] } == [["mlm", "cap"]])
        #expect(result.moved[0].baselineHigh == ci.high[1][2])
        #expect(
            try compare(
                baseline: baseline, candidate: candidate, tolerance: 0.01, useIntervals: true
            ).passed)
    }

    /// A baseline value outside its own interval (the committed demo's dense run has two): the same
    /// file checked against itself passes, and the accepted range runs from the interval to the value.
    @Test func intervalsHoldTheBaselineValueOutsideItsInterval() throws {
        var baseline = try ReportFixtures.dense()
        let ci = try #require(baseline.groups[0].interval)
        let outside = ci.low[1][0] - 2
        baseline.groups[0].interference.values[1][0] = outside
        let same = try compare(baseline: baseline, candidate: baseline, tolerance: 0, useIntervals: true)
        #expect(same.passed, "\(same.markdown)")
        var candidate = baseline
        candidate.groups[0].interference.values[1][0] = (outside + ci.low[1][0]) / 2  // between value and interval
        #expect(try compare(baseline: baseline, candidate: candidate, tolerance: 0, useIntervals: true).passed)
        candidate.groups[0].interference.values[1][0] = outside - 0.01
        let below = try compare(baseline: baseline, candidate: candidate, tolerance: 0, useIntervals: true)
        #expect(below.moved.map { [$0.lossTask, $0.stepTask] } == [["mlm", "cls"]])
        #expect(below.moved.first?.baselineLow == outside && below.moved.first?.baselineHigh == ci.high[1][0])
        #expect(below.markdown.contains("| accepted range |"), "\(below.markdown)")
        // Undefined bounds (no replicate defined the entry): the range is the value itself.
        var undefined = try ReportFixtures.dense()
        undefined.groups[0].interval!.low[0][2] = .nan
        undefined.groups[0].interval!.high[0][2] = .nan
        #expect(try compare(baseline: undefined, candidate: undefined, tolerance: 0, useIntervals: true).passed)
        var nudged = undefined
        nudged.groups[0].interference.values[0][2] += 0.02
        #expect(try compare(baseline: undefined, candidate: nudged, tolerance: 0.03, useIntervals: true).passed)
        let away = try compare(baseline: undefined, candidate: nudged, tolerance: 0.01, useIntervals: true)
        #expect(away.moved.map { [$0.lossTask, $0.stepTask] } == [["cls", "cap"]])
    }

    /// Without `--use-intervals` the table still shows the baseline's interval for context, and a
    /// baseline without intervals shows a dash.
    @Test func tableShowsTheBaselineIntervalWithoutUsingIt() throws {
        let baseline = try ReportFixtures.dense()
        let ci = try #require(baseline.groups[1].interval)
        var candidate = baseline
        candidate.groups[1].interference.values[2][0] += 0.05
        let result = try compare(baseline: baseline, candidate: candidate, tolerance: 0.01)
        #expect(result.moved.first?.baselineLow == ci.low[2][0] && result.moved.first?.baselineHigh == ci.high[2][0])
        #expect(result.markdown.contains("| [\(String(format: "%.3f", ci.low[2][0])), \(String(format: "%.3f", ci.high[2][0]))] |"), "\(result.markdown)")
        var bare = baseline
        bare.groups[1].interval = nil
        #expect(try compare(baseline: bare, candidate: candidate, tolerance: 0.01).markdown.contains("| — |"))
    }

    /// An entry undefined in both runs (a row whose every own-task denominator was flagged) never
    /// moves, but the summary says how many there are instead of calling them within tolerance;
    /// undefined on one side only, it moved.
    @Test func undefinedEntriesAreCountedApart() throws {
        var baseline = try ReportFixtures.dense()
        for j in 0..<3 { baseline.groups[0].interference.values[1][j] = .nan }
        let same = try compare(baseline: baseline, candidate: baseline, tolerance: 0)
        #expect(same.passed && same.undefinedInBoth == 3)
        #expect(same.markdown.hasPrefix("All 15 entries defined in both runs within tolerance"), "\(same.markdown)")
        #expect(same.markdown.contains("3 undefined (n/a) in both runs"))
        var candidate = baseline
        candidate.groups[0].interference.values[1][2] = 0.5
        let oneSided = try compare(baseline: baseline, candidate: candidate, tolerance: 1)
        #expect(oneSided.moved.map { [$0.lossTask, $0.stepTask] } == [["mlm", "cap"]] && oneSided.undefinedInBoth == 2)
        #expect(oneSided.markdown.hasSuffix("2 undefined (n/a) in both runs: rows whose every own-task denominator is ≤ 0.\n"))
    }

    @Test func refusesIncompatibleInputs() throws {
        let dense = try ReportFixtures.dense()
        var otherTasks = dense
        otherTasks.layout = try TaskLayout(
            tasks: ["cls", "mlm", "vqa"], samplesPerTask: ReportFixtures.samples)
        #expect(
            throws: ReportError.incompatible(
                reason:
                    "baseline tasks [\"cls\", \"mlm\", \"cap\"], candidate tasks [\"cls\", \"mlm\", \"vqa\"]"
            )
        ) {
            try compare(baseline: dense, candidate: otherTasks, tolerance: 0.01)
        }
        var fewerGroups = dense
        fewerGroups.groups.removeLast()
        do {
            _ = try compare(baseline: dense, candidate: fewerGroups, tolerance: 0.01)
            Issue.record("compared different group sets")
        } catch {
            guard case .incompatible(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("encoder.layers.11"))
        }
        var noIntervals = dense
        noIntervals.groups[0].interval = nil
        #expect(throws: ReportError.self) {
            try compare(baseline: noIntervals, candidate: dense, tolerance: 0, useIntervals: true)
        }
        #expect(throws: ReportError.self) {
            try compare(baseline: dense, candidate: dense, tolerance: -1)
        }
    }

    @Test func filesRoundTripAndUnreadableFilesAreInputErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "reporter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.h5")
        try InterferenceFile.write(ReportFixtures.dense(), to: a)
        #expect(try compare(baselineFile: a, candidateFile: a, tolerance: 0).passed)
        let bogus = dir.appendingPathComponent("b.h5")
        try Data("not hdf5".utf8).write(to: bogus)
        do {
            _ = try compare(baselineFile: a, candidateFile: bogus, tolerance: 0)
            Issue.record("compared a non-HDF5 file")
        } catch {
            guard case .input = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(error.description.hasPrefix(bogus.path))
        }
    }
}

extension RegressionCheckTests {
    @Test func unusableValuesAreRefusedAndUndefinedRowsAreNot() throws {
        let dense = try ReportFixtures.dense()
        #expect(throws: Never.self) { try checkValues(of: dense, file: "d.h5") }
        var infinite = dense
        infinite.groups[1].interference.values[0][2] = -.infinity
        #expect(
            throws: ReportError.unusableValue(
                file: "d.h5", group: "encoder.layers.11", entry: "I[cls, cap]",
                reason: "is -inf, and the analysis never writes an infinity")
        ) { try checkValues(of: infinite, file: "d.h5") }
        var stray = dense
        stray.groups[0].interference.values[1][0] = .nan
        #expect(throws: ReportError.self) { try checkValues(of: stray, file: "d.h5") }
        var undefined = dense
        undefined.groups[0].interference.values[1] = [.nan, .nan, .nan]
        #expect(throws: Never.self) { try checkValues(of: undefined, file: "d.h5") }
        var badInterval = dense
        badInterval.groups[0].interval?.high[0][1] = .infinity
        #expect(throws: ReportError.self) { try checkValues(of: badInterval, file: "d.h5") }
        // A defined row's diagonal is exactly 1; zeros there are damage (an older file has no checksum).
        var zeroDiagonal = dense
        zeroDiagonal.groups[0].interference.values[1][1] = 0
        #expect(
            throws: ReportError.unusableValue(
                file: "d.h5", group: "encoder.layers.3", entry: "I[mlm, mlm]",
                reason: "is 0.0, and the analysis writes exactly 1 on the diagonal of a defined row")
        ) { try checkValues(of: zeroDiagonal, file: "d.h5") }
    }
}

import Foundation
import Interference
import TestSupport
import Testing

extension Tolerance {
    /// The metric against the NumPy float64 transcription of the notebook (issue 5: "to 1e-6").
    /// Both sides are float64 and differ only in summation order (Gram entries vs U·Gᵀ), so the
    /// observed error is ~1e-14; the bound is the issue's.
    static let notebookMetric = Tolerance(rtol: 1e-6, atol: 1e-6)
    /// The probe's Float64 Gram against NumPy's float64 products of the same stored rows: only the
    /// summation order differs (entries up to 0.08, error ~1e-15). Far tighter than the metric's
    /// bound, which a Float32 Gram (errors ~1e-7 of an entry's scale) would also meet.
    static let float64Gram = Tolerance(rtol: 1e-10, atol: 1e-12)
}

/// `Fixtures/notebook_reference.json`, written by `Fixtures/notebook_reference.py`.
struct NotebookFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let parameters: [String]
        let rows: [String: [[Double]]]?
        let gram: [[Double]]
        let interference: [[Double]]
        let interferenceGuarded: [[Double]]
        let nonPositiveDenominators: [Int]
        let delta: [[[Double]]]
        let cosine: [[Double]]
        let conflictFraction: [[Double]]

        enum CodingKeys: String, CodingKey {
            case name, parameters, rows, gram, interference, delta, cosine
            case interferenceGuarded = "interference_guarded"
            case nonPositiveDenominators = "nonpositive_denominators"
            case conflictFraction = "conflict_fraction"
        }
    }
    let format: String
    let version: Int
    let tasks: [String]
    let samplesPerTask: Int

    enum CodingKeys: String, CodingKey {
        case format, version, tasks, cases
        case samplesPerTask = "N"
    }
    let cases: [Case]

    static let regenerate =
        "/opt/refvenv/bin/python Tests/InterferenceTests/Fixtures/notebook_reference.py"

    static func load() throws -> NotebookFixture {
        let url = fixtureURL("notebook_reference.json")
        let fixture = try JSONDecoder().decode(NotebookFixture.self, from: Data(contentsOf: url))
        guard fixture.format == "task-interference/notebook-reference", fixture.version == 1 else {
            throw FixtureMismatch(
                reason: "fixture format \(fixture.format) v\(fixture.version); run \(regenerate)")
        }
        return fixture
    }

    func layout() throws -> TaskLayout {
        try TaskLayout(tasks: tasks, samplesPerTask: samplesPerTask)
    }

    func `case`(_ name: String) throws -> Case {
        guard let found = cases.first(where: { $0.name == name }) else {
            throw FixtureMismatch(reason: "no case \(name); run \(Self.regenerate)")
        }
        return found
    }
}

struct FixtureMismatch: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

extension NotebookFixture.Case {
    func gramMatrix() throws -> GramMatrix {
        try GramMatrix(size: gram.count, values: gram.flatMap { $0 })
    }

    /// The case's raw rows, its parameters concatenated along P (task-major rows).
    func concatenatedRows() throws -> [[Double]] {
        guard let rows else { throw FixtureMismatch(reason: "case \(name) has no rows") }
        let parts = try parameters.map { p in
            guard let r = rows[p] else {
                throw FixtureMismatch(reason: "case \(name) lacks rows of \(p)")
            }
            return r
        }
        return (0..<parts[0].count).map { r in parts.flatMap { $0[r] } }
    }
}

extension Array where Element == [Double] {
    var flat: [Double] { flatMap { $0 } }
}

extension Array where Element == [[Double]] {
    var flat: [Double] { flatMap { $0.flatMap { $0 } } }
}

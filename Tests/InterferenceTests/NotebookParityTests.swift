import Interference
import TestSupport
import Testing

/// The Swift metric against the NumPy transcription of the official notebook.
@Suite struct NotebookParityTests {
    static let unflaggedCases = [
        "encoder.layers.0.ffn.dense2.weight", "encoder.layers.0.ffn.dense2.bias",
        "encoder.layers.0",
    ]

    @Test(arguments: unflaggedCases)
    func matchesNotebookFromGram(caseName: String) throws {
        let fixture = try NotebookFixture.load()
        let reference = try fixture.case(caseName)
        let matrix = try InterferenceMatrix(gram: reference.gramMatrix(), layout: fixture.layout())
        let t = fixture.tasks.count
        expectClose(
            matrix.values.flat, reference.interference.flat, shape: [t * t],
            tolerance: .notebookMetric, "I")
        expectClose(matrix.delta.flat, reference.delta.flat, tolerance: .notebookMetric, "delta")
        #expect(matrix.nonPositiveDenominators == reference.nonPositiveDenominators)
        #expect(!matrix.isFlagged)
    }

    @Test(arguments: unflaggedCases)
    func matchesNotebookFromRawRows(caseName: String) throws {
        let fixture = try NotebookFixture.load()
        let reference = try fixture.case(caseName)
        let matrix = try InterferenceMatrix(
            rows: reference.concatenatedRows(), layout: fixture.layout())
        expectClose(
            matrix.values.flat, reference.interference.flat, tolerance: .notebookMetric, "I")
        expectClose(matrix.delta.flat, reference.delta.flat, tolerance: .notebookMetric, "delta")
        // Our own Gram of the rows against NumPy's.
        expectClose(
            try GramMatrix(rows: reference.concatenatedRows()).values, reference.gram.flat,
            tolerance: .notebookMetric, "gram")
    }

    @Test(arguments: unflaggedCases + ["flagged"])
    func cosineStatisticsMatchNumPy(caseName: String) throws {
        let fixture = try NotebookFixture.load()
        let reference = try fixture.case(caseName)
        let agreement = try GradientAgreement(
            gram: reference.gramMatrix(), layout: fixture.layout())
        expectClose(
            agreement.cosine.flat, reference.cosine.flat, tolerance: .notebookMetric, "cosine")
        expectClose(
            agreement.conflictFraction.flat, reference.conflictFraction.flat,
            tolerance: .notebookMetric, "conflict")
        #expect(agreement.consistency == agreement.cosine.indices.map { agreement.cosine[$0][$0] })
        #expect(agreement.zeroNormRows == [0, 0, 0])
    }

    /// A group's I from the sum of its parameters' Grams equals the NumPy I of the concatenated rows.
    @Test func groupFromSummedGramsEqualsConcatenatedRows() throws {
        let fixture = try NotebookFixture.load()
        let group = try fixture.case("encoder.layers.0")
        let grams = try group.parameters.map { try fixture.case($0).gramMatrix() }
        let summed = try GramMatrix.sum(grams)
        let matrix = try InterferenceMatrix(gram: summed, layout: fixture.layout())
        expectClose(
            matrix.values.flat, group.interference.flat, tolerance: .notebookMetric, "group I")
        expectClose(summed.values, group.gram.flat, tolerance: .notebookMetric, "summed gram")
    }

    /// The notebook has no guard; ours leaves non-positive denominators out and counts them, which
    /// the script reproduces as `interference_guarded`.
    @Test func nonPositiveDenominatorsAreCountedAndFlagged() throws {
        let fixture = try NotebookFixture.load()
        let reference = try fixture.case("flagged")
        let matrix = try InterferenceMatrix(gram: reference.gramMatrix(), layout: fixture.layout())
        #expect(matrix.nonPositiveDenominators == reference.nonPositiveDenominators)
        #expect(matrix.isFlagged)
        let mlm = 1
        #expect(matrix.flaggedSamples[mlm].count == reference.nonPositiveDenominators[mlm])
        for b in matrix.flaggedSamples[mlm] { #expect(matrix.delta[mlm][mlm][b] <= 0) }
        expectClose(
            matrix.values.flat, reference.interferenceGuarded.flat, tolerance: .notebookMetric,
            "guarded I")
        // Rows without a flagged sample equal the notebook's unguarded value.
        for i in [0, 2] {
            expectClose(
                matrix.values[i], reference.interference[i], tolerance: .notebookMetric, "row \(i)")
        }
        expectClose(matrix.delta.flat, reference.delta.flat, tolerance: .notebookMetric, "delta")
    }
}

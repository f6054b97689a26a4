import Foundation
import Interference
import TestSupport
import Testing

/// The proof on real gradients: the NumPy transcription of the official notebook, run once on
/// gradient rows our probe stored (`Fixtures/probe_dense_demo.h5`: the demo's dense checkpoint,
/// `encoder.layers.1.ffn.dense2.weight`, 3 tasks × 8 mini-batches of 16, seed 3), gave
/// `Fixtures/notebook_reference_probe.json`; the Swift metric on the probe file's own Gram must match
/// it to 1e-6. Regenerate both with the commands in `Fixtures/README-probe.md`.
@Suite struct ProbeNotebookParityTests {
    @Test func metricOnProbeGramMatchesNumPyOnProbeRows() throws {
        let url = fixtureURL("notebook_reference_probe.json")
        let fixture = try JSONDecoder().decode(NotebookFixture.self, from: Data(contentsOf: url))
        let reference = try fixture.case("encoder.layers.1.ffn.dense2.weight")
        let probe = try ProbeGrams(url: fixtureURL("probe_dense_demo.h5"))
        #expect(probe.layout.tasks == fixture.tasks)
        let gram = try probe.gram(of: "encoder.layers.1.ffn.dense2.weight")
        // The probe's Float64 Gram against NumPy's Gram of the stored rows.
        expectClose(gram.values, reference.gram.flat, tolerance: .float64Gram, "gram")
        let matrix = try InterferenceMatrix(gram: gram, layout: try fixture.layout())
        let t = fixture.tasks.count
        // Real gradients have samples whose own loss change is non-positive: the notebook would
        // divide by them; we leave them out and count them, as the script's guarded variant does.
        #expect(matrix.nonPositiveDenominators == reference.nonPositiveDenominators)
        expectClose(
            matrix.values.flat, reference.interferenceGuarded.flat, shape: [t * t],
            tolerance: .notebookMetric, "I (guarded)")
        expectClose(matrix.delta.flat, reference.delta.flat, tolerance: .notebookMetric, "delta")
        let agreement = try GradientAgreement(gram: gram, layout: try fixture.layout())
        expectClose(agreement.cosine.flat, reference.cosine.flat, tolerance: .notebookMetric, "cosine")
    }
}

import Foundation
import Kernels
import Storage
import TestSupport
import Testing
@testable import UniPerceiver

/// Golden values from the independent PyTorch float64 reference (Fixtures/make_fixtures.py):
/// the Swift model loads the same weights and inputs and must match each task's loss to 1e-5
/// relative and every parameter gradient to ‖g − g_ref‖ / ‖g_ref‖ ≤ 1e-4.
@Suite struct ReferenceFixtureTests {
    @Test("loss and every gradient match the PyTorch reference", arguments: TaskKind.allCases)
    func matchesReference(task: TaskKind) throws {
        let model = try loadFixtureModel("dense_tiny.safetensors")
        let comparison = try compareWithReference(model, fixture: "dense_\(task.rawValue).safetensors", task: task)
        print("\(task.rawValue): \(comparison)")
    }
}

/// What one fixture comparison found (for the log; failures are recorded as they are found).
struct ReferenceComparison: CustomStringConvertible {
    var lossError = 0.0
    var worst = (name: "", error: 0.0)
    var gatesCompared = 0
    var description: String {
        "loss rel error \(lossError), worst gradient rel error \(worst.error) (\(worst.name))"
    }
}

/// Runs `task`'s batch from `fixture` through `model` and checks the loss (1e-5 relative) and every
/// parameter gradient (‖g − g_ref‖ / ‖g_ref‖ ≤ 1e-4; an exactly-zero reference — an unused row, a
/// clamped logit scale, an expert nobody chose — must be exactly zero here too).
func compareWithReference(
    _ model: Model, fixture: String, task: TaskKind, sourceLocation: SourceLocation = #_sourceLocation
) throws -> ReferenceComparison {
    let file = try SafeTensors.read(fixtureURL(fixture))
    let (loss, gradient) = try model.lossAndGradient(try fixtureBatch(task, file))
    let expectedLoss = try file.doubles("loss").values[0]
    var result = ReferenceComparison()
    result.lossError = abs(loss - expectedLoss) / abs(expectedLoss)
    #expect(
        result.lossError <= Tolerance.modelLossRelative,
        "\(fixture): loss \(loss) vs reference \(expectedLoss)", sourceLocation: sourceLocation)
    for entry in model.table.entries {
        let reference = try file.doubles("grad." + entry.name)
        #expect(reference.shape == entry.shape, "\(entry.name): fixture shape \(reference.shape)", sourceLocation: sourceLocation)
        let ours = Array(gradient[entry.range])
        if reference.values.allSatisfy({ $0 == 0 }) {
            #expect(ours.allSatisfy { $0 == 0 }, "\(fixture) \(entry.name): reference is 0", sourceLocation: sourceLocation)
            continue
        }
        let error = expectRelativeError(
            ours, DoubleTensor(shape: reference.shape, data: reference.values),
            atMost: Tolerance.modelGradientRelative, name: "\(fixture) \(entry.name)",
            sourceLocation: sourceLocation)
        if entry.name.contains(".gate.") { result.gatesCompared += 1 }
        if error > result.worst.error { result.worst = (entry.name, error) }
    }
    return result
}

/// The fixture checkpoint as a model (the test maps names itself: `UniPerceiver` knows no files).
func loadFixtureModel(_ name: String) throws -> Model {
    let weights = try SafeTensors.read(fixtureURL(name))
    let config = try ModelConfig.fromJSON(try #require(weights.metadata["config"]))
    let table = Model.parameterTable(for: config)
    try weights.validate(expected: table.entries.map { ($0.name, $0.shape) })
    var values: [Float] = []
    for entry in table.entries { values += try weights.tensor(entry.name).data }
    return try Model(config: config, parameters: values)
}

/// The task batch stored in a fixture file (padded token arrays cut to their lengths).
func fixtureBatch(_ task: TaskKind, _ file: SafeTensorsFile) throws -> Batch {
    func rows(_ tokens: String, _ lengths: String) throws -> [[Int]] {
        let t = try file.ints(tokens)
        let n = try file.ints(lengths).values
        let width = t.shape[1]
        return n.enumerated().map { b, count in Array(t.values[(b * width)..<(b * width + count)]) }
    }
    switch task {
    case .imageClassification:
        return .imageClassification(
            images: try file.tensor("images"), labels: try file.ints("labels").values,
            classNames: try rows("class_tokens", "class_lengths"))
    case .mlm:
        let tokens = try rows("text_tokens", "text_lengths")
        let all = try file.ints("mlm_labels")
        let width = all.shape[1]
        let labels = tokens.enumerated().map { b, row in Array(all.values[(b * width)..<(b * width + row.count)]) }
        return .mlm(tokens: tokens, labels: labels)
    case .captioning:
        return .captioning(images: try file.tensor("images"), captions: try rows("text_tokens", "text_lengths"))
    case .retrieval:
        return .retrieval(images: try file.tensor("images"), captions: try rows("text_tokens", "text_lengths"))
    }
}

import Foundation
import Kernels
import Storage
import TestSupport
import Testing
@testable import UniPerceiver

/// Golden values of every routing level from the PyTorch float64 reference
/// (Fixtures/make_fixtures.py, `moe_<routing>_*.safetensors`: 4 experts, top-2, every layer MoE,
/// noise off, every decision with a top-k logit margin ≥ 1e-3): each task's loss (balance loss
/// included for token and context routing) to 1e-5 relative and every gradient, experts and gates
/// included, to ‖g − g_ref‖ / ‖g_ref‖ ≤ 1e-4.
@Suite struct MoEFixtureTests {
    static let routings: [Routing] = [.attribute, .token, .context, .modality, .task]

    @Test("loss and every gradient match the PyTorch reference", arguments: routings, TaskKind.allCases)
    func matchesReference(routing: Routing, task: TaskKind) throws {
        let model = try loadMoEFixtureModel(routing)
        #expect(model.config.routing == routing && model.config.numExperts == 4 && model.config.topK == 2)
        let file = try SafeTensors.read(fixtureURL("moe_\(routing.rawValue)_\(task.rawValue).safetensors"))
        let batch = try fixtureBatch(task, file)
        let (loss, gradient) = try model.lossAndGradient(batch)
        let expectedLoss = try file.doubles("loss").values[0]
        let lossError = abs(loss - expectedLoss) / abs(expectedLoss)
        #expect(lossError <= ReferenceFixtureTests.lossRelative, "\(routing) \(task): loss \(loss) vs \(expectedLoss)")
        var worst = (name: "", error: 0.0)
        var gateChecked = 0
        for entry in model.table.entries {
            let reference = try file.doubles("grad." + entry.name)
            #expect(reference.shape == entry.shape, "\(entry.name): fixture shape \(reference.shape)")
            let ours = Array(gradient[entry.range])
            let norm = reference.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 {
                // Experts no unit chose get exactly nothing, here as in the reference.
                #expect(ours.allSatisfy { $0 == 0 }, "\(routing) \(task) \(entry.name): reference is 0")
                continue
            }
            let error = expectRelativeError(
                ours, DoubleTensor(shape: reference.shape, data: reference.values),
                atMost: Tolerance.modelGradientRelative, name: "\(routing) \(task) \(entry.name)")
            if entry.name.contains(".gate.") { gateChecked += 1 }
            if error > worst.error { worst = (entry.name, error) }
        }
        #expect(gateChecked > 0, "no gate gradient was compared")
        print("moe \(routing.rawValue) \(task.rawValue): loss rel error \(lossError), worst gradient rel error \(worst.error) (\(worst.name))")
    }
}

/// The routing level's fixture checkpoint as a model.
func loadMoEFixtureModel(_ routing: Routing) throws -> Model {
    let weights = try SafeTensors.read(fixtureURL("moe_\(routing.rawValue)_tiny.safetensors"))
    let config = try ModelConfig.fromJSON(try #require(weights.metadata["config"]))
    let table = Model.parameterTable(for: config)
    try weights.validate(expected: table.entries.map { ($0.name, $0.shape) })
    var values: [Float] = []
    for entry in table.entries { values += try weights.tensor(entry.name).data }
    return try Model(config: config, parameters: values)
}

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
        let model = try loadFixtureModel("moe_\(routing.rawValue)_tiny.safetensors")
        #expect(model.config.routing == routing && model.config.numExperts == 4 && model.config.topK == 2)
        let comparison = try compareWithReference(
            model, fixture: "moe_\(routing.rawValue)_\(task.rawValue).safetensors", task: task)
        #expect(comparison.gatesCompared > 0, "no gate gradient was compared")
        print("moe \(routing.rawValue) \(task.rawValue): \(comparison)")
    }
}

/// The routing level's fixture checkpoint as a model.
func loadMoEFixtureModel(_ routing: Routing) throws -> Model {
    try loadFixtureModel("moe_\(routing.rawValue)_tiny.safetensors")
}

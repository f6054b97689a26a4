import Interference
import Testing

@Suite struct GroupingTests {
    static let names = [
        "encoder.layers.10.ffn.dense2.weight", "encoder.layers.2.ffn.dense2.weight",
        "encoder.layers.2.ffn.dense2.bias", "encoder.layers.2.attention.self.qkv_proj.weight",
        "encoder.layers.10.ffn.dense2.experts.3.weight", "token_embed.embeddings",
    ]

    @Test func parsesNames() {
        let p = ParameterName("encoder.layers.7.ffn.dense2.experts.3.weight")
        #expect(p.layer == 7 && p.role == "ffn.dense2" && p.expert == 3)
        let q = ParameterName("encoder.layers.0.attention.self.qkv_proj.bias")
        #expect(q.layer == 0 && q.role == "attention.self.qkv_proj" && q.expert == nil)
        let e = ParameterName("token_embed.embeddings")
        #expect(e.layer == nil && e.role == "token_embed.embeddings")
    }

    @Test func groupsByLayerRoleModelAndParameter() {
        let layers = Grouping.layer.groups(of: Self.names)
        #expect(layers.map(\.name) == ["encoder.layers.2", "encoder.layers.10"])
        #expect(layers[0].parameters.count == 3 && layers[0].layer == 2 && layers[0].role == "")
        #expect(layers[1].parameters.count == 2 && layers[1].role == "ffn.dense2")

        let roles = Grouping.role.groups(of: Self.names)
        #expect(
            roles.map(\.name) == [
                "attention.self.qkv_proj", "ffn.dense2", "token_embed.embeddings",
            ])
        #expect(
            roles[1].parameters == [
                "encoder.layers.2.ffn.dense2.bias", "encoder.layers.2.ffn.dense2.weight",
                "encoder.layers.10.ffn.dense2.experts.3.weight",
                "encoder.layers.10.ffn.dense2.weight",
            ])
        #expect(roles[1].layer == -1)

        // One role within one layer, experts and biases pooled; names outside the layers left out.
        let layerRoles = Grouping.layerRole.groups(of: Self.names)
        #expect(
            layerRoles.map(\.name) == [
                "encoder.layers.2.attention.self.qkv_proj", "encoder.layers.2.ffn.dense2", "encoder.layers.10.ffn.dense2",
            ])
        #expect(layerRoles[2].parameters == ["encoder.layers.10.ffn.dense2.experts.3.weight", "encoder.layers.10.ffn.dense2.weight"])
        #expect(layerRoles[1].layer == 2 && layerRoles[1].role == "ffn.dense2")

        #expect(Grouping.model.groups(of: Self.names).map(\.parameters.count) == [6])
        #expect(Grouping.parameter.groups(of: Self.names).count == 6)
    }

    /// A grouping nothing falls into (layers, when only embeddings were probed) names the grouping,
    /// the probed parameters and the groupings that would work, not a group called "grouping by layer".
    @Test func nothingToGroupIsNamed() throws {
        let layout = try TaskLayout(tasks: ["a", "b"], samplesPerTask: 2)
        let gram = try GramMatrix(rows: [[1, 0], [0, 1], [1, 1], [2, 1]])
        #expect(
            throws: InterferenceError.nothingToGroup(grouping: "layer", parameters: ["token_embed.embeddings"])
        ) {
            try InterferenceAnalysis.analyze(
                parameters: ["token_embed.embeddings"], gram: { _ in gram }, layout: layout, grouping: .layer, seed: 0)
        }
        let message = InterferenceError.nothingToGroup(grouping: "layer", parameters: ["token_embed.embeddings"]).description
        #expect(message.hasPrefix("--group-by layer: none of the 1 probed parameters (e.g. 'token_embed.embeddings')"))
        #expect(message.hasSuffix("use --group-by parameter or model"))
    }

    @Test func naturalOrder() {
        #expect(naturalLess("encoder.layers.2", "encoder.layers.10"))
        #expect(!naturalLess("encoder.layers.10", "encoder.layers.2"))
        #expect(naturalLess("a", "b") && naturalLess("a", "a.b"))
        // Equal numbers written differently still get one strict order (shorter first), so sorting
        // is deterministic; numbers longer than any Int compare by their digits.
        #expect(naturalLess("x.1", "x.01") && !naturalLess("x.01", "x.1"))
        #expect(naturalLess("x.007", "x.10") && !naturalLess("x.10", "x.007"))
        #expect(naturalLess("x.99999999999999999999", "x.100000000000000000000"))
    }
}

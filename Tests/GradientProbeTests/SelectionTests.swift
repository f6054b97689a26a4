import Storage
import Testing
import UniPerceiver

@testable import GradientProbe

@Suite struct SelectionTests {
    let table = Model.parameterTable(for: ProbeFixture.config)

    @Test func defaultSelectsEveryEncoderLayerParameterInTableOrder() throws {
        let selected = try ParameterSelection().select(from: table)
        let expected = table.entries.filter { $0.name.hasPrefix("encoder.layers.") }.map(\.name)
        #expect(selected.map(\.name) == expected)
        #expect(selected.count == 2 * 14)
        for p in selected {
            let entry = try #require(table.entry(named: p.name))
            #expect(p.range == entry.range)
            #expect(p.shape == entry.shape)
        }
    }

    @Test func starCrossesDotsAndPatternsUnite() throws {
        let dense2 = try ParameterSelection(patterns: ["*.ffn.dense2.weight"]).select(from: table)
        #expect(dense2.map(\.name) == ["encoder.layers.0.ffn.dense2.weight", "encoder.layers.1.ffn.dense2.weight"])
        let two = try ParameterSelection(patterns: ["encoder.layers.1.*", "*.ffn.dense2.weight"]).select(from: table)
        #expect(two.first?.name == "encoder.layers.0.ffn.dense2.weight")
        #expect(two.count == 1 + 14)
        #expect(ParameterSelection.matches("encoder.layers.?.ffn.dense.bias", "encoder.layers.3.ffn.dense.bias"))
        #expect(!ParameterSelection.matches("encoder.layers.?.ffn.dense.bias", "encoder.layers.12.ffn.dense.bias"))
        #expect(!ParameterSelection.matches("*.dense2", "encoder.layers.0.ffn.dense2.weight"))
        #expect(ParameterSelection.matches("*", "anything"))
    }

    @Test func aPatternThatMatchesNothingIsAnError() {
        #expect(throws: ProbeError.noParameterMatches(pattern: "*.ffn.dense3.weight")) {
            try ParameterSelection(patterns: ["encoder.layers.*", "*.ffn.dense3.weight"]).select(from: table)
        }
    }

    @Test(arguments: [
        ("encoder.layers.7.ffn.dense2.weight", 7, "ffn.dense2", -1),
        ("encoder.layers.0.attention.self.qkv_proj.bias", 0, "attention.self.qkv_proj", -1),
        ("encoder.layers.3.ffn.dense2.experts.5.weight", 3, "ffn.dense2", 5),
        ("encoder.layers.2.attention_output.residual_scale", 2, "attention_output.residual_scale", -1),
        ("encoder.layers.1.LayerNormModules.0.weight", 1, "LayerNormModules.0", -1),
        ("token_embed.embeddings.weight", -1, "token_embed.embeddings", -1),
        ("predictor.logit_scale_caption", -1, "predictor.logit_scale_caption", -1),
    ])
    func namesSplitIntoLayerRoleExpert(name: String, layer: Int, role: String, expert: Int) {
        let parsed = SelectedParameter(name: name, shape: [1], offset: 0)
        #expect(parsed.layer == layer)
        #expect(parsed.role == role)
        #expect(parsed.expert == expert)
    }

    @Test func shardSlicesTileTheWorkListInOrder() throws {
        for count in 1...7 {
            var next = 0
            for k in 1...count {
                let slice = try ShardSpec(index: k, count: count).slice(of: 12)
                #expect(slice.lowerBound == next)
                next = slice.upperBound
            }
            #expect(next == 12)
        }
        #expect(try ShardSpec(parsing: "3/8") == ShardSpec(index: 3, count: 8))
        for bad in ["0/4", "5/4", "1", "a/b", "1/0", "2/3/4"] {
            #expect(throws: ProbeError.self) { try ShardSpec(parsing: bad) }
        }
    }

    @Test func byteCountsParse() throws {
        #expect(try ProbeOptions.parseBytes("4GiB") == 4 << 30)
        #expect(try ProbeOptions.parseBytes("512MiB") == 512 << 20)
        #expect(try ProbeOptions.parseBytes("100MB") == 100_000_000)
        #expect(try ProbeOptions.parseBytes("65536") == 65536)
        #expect(try ProbeOptions.parseBytes("0") == 0)
        #expect(throws: ProbeError.self) { try ProbeOptions.parseBytes("lots") }
        #expect(throws: ProbeError.self) { try ProbeOptions.parseBytes("-1GiB") }
        #expect(try ProbeOptions.parseBytes("0.5GiB") == 1 << 29)
        #expect(try ProbeOptions.parseBytes("1e6") == 1_000_000)
        for fraction in ["0.001", "1.5", "0.5B"] {
            #expect(throws: ProbeError.self) { try ProbeOptions.parseBytes(fraction) }
        }
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(of: [UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(of: long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var chunked = SHA256()
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        for start in stride(from: 0, to: million.count, by: 999) {
            chunked.update(million[start..<min(start + 999, million.count)])
        }
        #expect(chunked.finish() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

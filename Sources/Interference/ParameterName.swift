/// What a paper-era parameter name says about where the tensor sits.
///
/// `encoder.layers.7.ffn.dense2.experts.3.weight` → layer 7, role `ffn.dense2`, expert 3, leaf `weight`.
/// Names follow architecture.md: layers under `encoder.layers.N.` (N 0-based), experts as `.experts.K`
/// before the leaf, leaves `.weight` / `.bias`. A name outside `encoder.layers` has no layer; its role is
/// the name without expert and leaf (`token_embed.embeddings`).
public struct ParameterName: Sendable, Equatable, Hashable {
    /// The full dotted name.
    public let name: String
    /// 0-based encoder layer, or nil.
    public let layer: Int?
    /// The name inside its layer without `.experts.K` and `.weight`/`.bias` (e.g. `attention.self.qkv_proj`).
    public let role: String
    /// The expert index K of `.experts.K`, or nil.
    public let expert: Int?

    /// Parses a dotted name; never fails (unknown shapes just have no layer / expert).
    public init(_ name: String) {
        self.name = name
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var layer: Int?
        if parts.count > 3, parts[0] == "encoder", parts[1] == "layers", let n = Int(parts[2]),
            n >= 0
        {
            layer = n
            parts.removeFirst(3)
        }
        if parts.count > 1, let last = parts.last, last == "weight" || last == "bias" {
            parts.removeLast()
        }
        var expert: Int?
        if let k = parts.firstIndex(of: "experts"), k + 1 < parts.count, let e = Int(parts[k + 1]) {
            expert = e
            parts.removeSubrange(k...(k + 1))
        }
        self.layer = layer
        self.expert = expert
        self.role = parts.joined(separator: ".")
    }
}

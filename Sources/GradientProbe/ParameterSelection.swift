import UniPerceiver

/// One parameter tensor the probe records: where its gradient sits in the model's gradient buffer
/// and what its paper-era name says about it (the `layer`, `role`, `expert` attributes of the probe
/// file).
public struct SelectedParameter: Sendable, Equatable {
    /// The full dotted name (`encoder.layers.3.ffn.dense2.weight`).
    public let name: String
    /// PyTorch `[out, in]` shape.
    public let shape: [Int]
    /// Where the tensor starts in the contiguous parameter (and gradient) buffer.
    public let offset: Int
    /// 0-based encoder layer, −1 for none.
    public let layer: Int
    /// The name inside its layer without `.experts.K` and `.weight`/`.bias` (`ffn.dense2`).
    public let role: String
    /// Expert index K of `.experts.K`, −1 for none.
    public let expert: Int

    /// Number of values P (the gradient row length).
    public var count: Int { shape.reduce(1, *) }
    /// The tensor's range of the gradient buffer (house-style §4: a gradient row is a slice).
    public var range: Range<Int> { offset..<(offset + count) }

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
        let parsed = Self.parse(name)
        self.layer = parsed.layer
        self.role = parsed.role
        self.expert = parsed.expert
    }

    /// Splits a paper-era name into layer, role and expert, by the rules of `Interference.ParameterName`
    /// (kept identical on purpose; the probe does not import the metric's module):
    /// `encoder.layers.N.` gives the layer and is removed, a final `.weight`/`.bias` is removed,
    /// `.experts.K` gives the expert and is removed; what remains is the role. A name outside
    /// `encoder.layers` has layer −1 and its role is the name without expert and leaf.
    public static func parse(_ name: String) -> (layer: Int, role: String, expert: Int) {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var layer = -1
        if parts.count > 3, parts[0] == "encoder", parts[1] == "layers", let n = Int(parts[2]), n >= 0 {
            layer = n
            parts.removeFirst(3)
        }
        if parts.count > 1, let last = parts.last, last == "weight" || last == "bias" {
            parts.removeLast()
        }
        var expert = -1
        if let k = parts.firstIndex(of: "experts"), k + 1 < parts.count, let e = Int(parts[k + 1]) {
            expert = e
            parts.removeSubrange(k...(k + 1))
        }
        return (layer, parts.joined(separator: "."), expert)
    }
}

/// Which parameter tensors to probe: shell-style globs over the dotted names.
///
/// `*` matches any run of characters, dots included (`*.ffn.dense2.weight` matches every layer's
/// FFN output weight), `?` matches one character; everything else matches itself. A name is
/// selected when any pattern matches it; the selection keeps the model's table order.
public struct ParameterSelection: Sendable, Equatable {
    /// Every encoder layer's parameters (the default of `interference probe`).
    public static let defaultPatterns = ["encoder.layers.*"]

    public let patterns: [String]

    public init(patterns: [String] = ParameterSelection.defaultPatterns) {
        self.patterns = patterns.isEmpty ? Self.defaultPatterns : patterns
    }

    /// The selected entries of `table`, in table order.
    /// - Throws: `ProbeError.noParameterMatches` naming the first pattern that selects nothing
    ///   (a typo should not silently shrink the probe).
    public func select(from table: ParameterTable) throws(ProbeError) -> [SelectedParameter] {
        for pattern in patterns where !table.entries.contains(where: { Self.matches(pattern, $0.name) }) {
            throw .noParameterMatches(pattern: pattern)
        }
        return table.entries
            .filter { entry in patterns.contains { Self.matches($0, entry.name) } }
            .map { SelectedParameter(name: $0.name, shape: $0.shape, offset: $0.offset) }
    }

    /// Whether `name` matches the glob `pattern` (whole-string match).
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.unicodeScalars)
        let s = Array(name.unicodeScalars)
        // Iterative wildcard matching with backtracking to the last `*` (linear in practice).
        var i = 0
        var j = 0
        var star = -1
        var mark = 0
        while j < s.count {
            if i < p.count, p[i] == "?" || (p[i] != "*" && p[i] == s[j]) {
                i += 1
                j += 1
            } else if i < p.count, p[i] == "*" {
                star = i
                mark = j
                i += 1
            } else if star >= 0 {
                i = star + 1
                mark += 1
                j = mark
            } else {
                return false
            }
        }
        while i < p.count, p[i] == "*" { i += 1 }
        return i == p.count
    }
}

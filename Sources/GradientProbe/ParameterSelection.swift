import Interference
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
        // The metric's own reading of the name, so the probe file's attributes and the analysis
        // can never disagree about a tensor's layer, role or expert.
        let parsed = ParameterName(name)
        self.layer = parsed.layer ?? -1
        self.role = parsed.role
        self.expert = parsed.expert ?? -1
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

/// How parameters are pooled into groups before the metric is computed.
///
/// A group's Gram matrix is the sum of its parameters' Grams (= the Gram of their concatenated
/// gradients), so the metric treats the group as one big parameter.
/// - `parameter`: every tensor alone (group name = parameter name).
/// - `layer`: everything under `encoder.layers.N.` (group `encoder.layers.N`); other parameters are left out.
/// - `role`: one role across all layers and experts, `.weight` and `.bias` together
///   (group = role, e.g. `ffn.dense2`, `attention.self.qkv_proj`).
/// - `model`: everything (group `model`).
/// - `layer-role`: one role within one layer, experts, `.weight` and `.bias` together (group
///   `encoder.layers.N.<role>`, e.g. `encoder.layers.3.ffn.dense2`); other parameters are left out.
///   With only the `.weight` tensors selected, `ffn.dense2` is the paper's Table 1 tensor W2.
public enum Grouping: String, Sendable, CaseIterable, Codable {
    case parameter, layer, role, model
    case layerRole = "layer-role"

    /// The group a parameter belongs to, or nil when this grouping leaves it out.
    public func groupName(of parameter: String) -> String? {
        let parsed = ParameterName(parameter)
        switch self {
        case .parameter: return parameter
        case .layer: return parsed.layer.map { "encoder.layers.\($0)" }
        case .role: return parsed.role
        case .model: return "model"
        case .layerRole: return parsed.layer.map { "encoder.layers.\($0).\(parsed.role)" }
        }
    }

    /// The groups of a list of parameters, in natural order (`layers.2` before `layers.10`), members in
    /// natural order too. Groups that would be empty do not appear.
    public func groups(of parameters: [String]) -> [ParameterGroup] {
        var members: [String: [String]] = [:]
        for p in parameters {
            if let g = groupName(of: p) { members[g, default: []].append(p) }
        }
        return members.keys.sorted(by: naturalLess).map { name in
            let list = members[name]!.sorted(by: naturalLess)
            let parsed = list.map(ParameterName.init)
            let layers = Set(parsed.map { $0.layer ?? -1 })
            let roles = Set(parsed.map(\.role))
            return ParameterGroup(
                name: name, parameters: list,
                layer: layers.count == 1 ? layers.first! : -1,
                role: roles.count == 1 ? roles.first! : "")
        }
    }
}

/// A named set of parameters analysed as one (`/groups/<name>` in the interference file).
public struct ParameterGroup: Sendable, Equatable, Codable {
    /// Group name (also its HDF5 group name).
    public var name: String
    /// Member parameter names.
    public var parameters: [String]
    /// The members' common layer, or −1 when there is none or they differ.
    public var layer: Int
    /// The members' common role, or "" when they differ.
    public var role: String

    /// Memberwise.
    public init(name: String, parameters: [String], layer: Int, role: String) {
        self.name = name
        self.parameters = parameters
        self.layer = layer
        self.role = role
    }
}

/// Natural order: runs of digits compare as numbers (`encoder.layers.2` < `encoder.layers.10`).
public func naturalLess(_ lhs: String, _ rhs: String) -> Bool {
    func chunks(_ s: String) -> [(isNumber: Bool, text: String)] {
        var out: [(Bool, String)] = []
        for ch in s {
            let digit = ch.isASCII && ch.isNumber
            if let last = out.last, last.0 == digit {
                out[out.count - 1].1.append(ch)
            } else {
                out.append((digit, String(ch)))
            }
        }
        return out
    }
    let a = chunks(lhs)
    let b = chunks(rhs)
    for (x, y) in zip(a, b) where x.text != y.text {
        if x.isNumber, y.isNumber {
            let nx = x.text.drop { $0 == "0" }
            let ny = y.text.drop { $0 == "0" }
            if nx.count != ny.count { return nx.count < ny.count }
            if nx != ny { return nx < ny }
            return x.text.count < y.text.count
        }
        return x.text < y.text
    }
    return a.count < b.count
}

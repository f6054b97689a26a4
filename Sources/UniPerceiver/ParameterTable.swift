/// One named parameter tensor: a range of the model's contiguous parameter buffer.
public struct ParameterEntry: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The ordered list of a model's parameters with their offsets in one contiguous `[Float]`.
///
/// Parameters and gradients share this layout (llm.c's twin buffers), so a parameter's gradient is
/// the same range of the gradient buffer and the probe reads a per-task gradient row as a slice.
/// Names are the paper-era dotted names (README.md, "Parameters"), built by pushing prefixes
/// (candle's `vb.pp`), never pasted together inside layers.
public struct ParameterTable: Sendable, Equatable {
    public private(set) var entries: [ParameterEntry] = []
    private var indexByName: [String: Int] = [:]

    public var totalCount: Int { entries.last.map { $0.offset + $0.count } ?? 0 }

    public func entry(named name: String) -> ParameterEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// The parameter holding flat index `index` of the buffer (nil outside it): what names the
    /// tensor of a non-finite value found by a scan of the whole buffer.
    public func entry(containing index: Int) -> ParameterEntry? {
        // Entries tile the buffer in offset order.
        var (low, high) = (0, entries.count)
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].offset + entries[middle].count <= index { low = middle + 1 } else { high = middle }
        }
        return low < entries.count && entries[low].range.contains(index) ? entries[low] : nil
    }

    /// The offset of a parameter the table is known to hold (a missing name is a wiring bug).
    func offset(_ name: String) -> Int {
        guard let index = indexByName[name] else {
            preconditionFailure("ParameterTable: no parameter named \(name)")
        }
        return entries[index].offset
    }

    mutating func add(_ name: String, _ shape: [Int]) {
        precondition(indexByName[name] == nil, "ParameterTable: duplicate parameter \(name)")
        indexByName[name] = entries.count
        entries.append(ParameterEntry(name: name, shape: shape, offset: totalCount))
    }
}

/// Prefix-pushing name builder (candle `VarBuilder::pp`).
struct NamePrefix {
    let parts: [String]
    init(_ parts: [String] = []) { self.parts = parts }
    func push(_ part: String) -> NamePrefix { NamePrefix(parts + [part]) }
    func name(_ leaf: String) -> String { (parts + [leaf]).joined(separator: ".") }
}

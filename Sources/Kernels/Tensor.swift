/// A Float32 tensor in row-major order: `data[i0·s0 + i1·s1 + …]` with the last index fastest.
///
/// A plain value type: the model keeps its parameters and gradients in one contiguous buffer each
/// (see `UniPerceiver.ParameterTable`), and `Tensor` is how a slice of them, an input or a fixture
/// travels between modules.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor over existing values; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(
            shape.reduce(1, *) == data.count,
            "Tensor: shape \(shape) holds \(shape.reduce(1, *)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// Number of elements (product of the shape; 1 for a scalar `[]`).
    public var count: Int { data.count }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// Element at a multi-index (bounds-checked; for tests and glue, not for hot loops).
    public subscript(_ index: Int...) -> Float {
        get { data[flatIndex(index)] }
        set { data[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) for shape \(shape)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "Tensor: index \(index) out of shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }
}

/// A zero-initialised Float allocation with a stable address, for activations, caches and
/// temporary gradients (arrays would force nested `withUnsafe…` closures through every layer).
final class Buffer {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// An allocation left uninitialised, for buffers the next call overwrites whole (merged expert
    /// weights, gathered rows, GEMM outputs with beta = 0): zero-filling them first is a wasted pass
    /// over memory, which for the 8×-sized MoE experts showed up as memset in the profile.
    init(uninitialized count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
    }

    deinit { base.deallocate() }

    var pointer: UnsafeMutablePointer<Float> { base }
    var array: [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func zero() { base.update(repeating: 0, count: count) }
}

/// Read-only parameters and writable gradients, both laid out by the `ParameterTable`.
struct ParameterPointers {
    let values: UnsafePointer<Float>
    func callAsFunction(_ offset: Int) -> UnsafePointer<Float> { values + offset }
}

struct GradientPointers {
    let values: UnsafeMutablePointer<Float>
    func callAsFunction(_ offset: Int) -> UnsafeMutablePointer<Float> { values + offset }
}

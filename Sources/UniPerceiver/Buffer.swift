import Synchronization

/// A zero-initialised Float allocation with a stable address, for activations, caches and
/// temporary gradients (arrays would force nested `withUnsafe…` closures through every layer).
///
/// Large buffers come from `BufferPool`: a gradient sample allocates the same shapes every time, and
/// fresh pages cost a page fault each (3–7 % of a sample before the pool).
final class Buffer {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        base = BufferPool.shared.take(max(count, 1))
        base.update(repeating: 0, count: max(count, 1))
    }

    /// A buffer whose every value the caller writes before reading (forward outputs, merged expert
    /// weights, gathered rows, GEMM outputs with beta = 0); skips the zeroing pass, which showed up as
    /// memset in the dense and MoE profiles. Contents are arbitrary until written.
    init(uninitialized count: Int) {
        self.count = count
        base = BufferPool.shared.take(max(count, 1))
    }

    deinit { BufferPool.shared.give(base, count: max(count, 1)) }

    var pointer: UnsafeMutablePointer<Float> { base }
    var array: [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func zero() { base.update(repeating: 0, count: count) }
}

/// Freed large buffers kept by exact size for reuse, up to `capacityBytes` in all; smaller ones go
/// straight to `malloc`, whose own free lists serve them well.
final class BufferPool: Sendable {
    static let shared = BufferPool(capacityBytes: 256 << 20, minimumCount: 16_384)

    let capacityBytes: Int
    let minimumCount: Int
    /// Free addresses (as integers, to be Sendable) by element count, and the bytes they hold.
    private let free = Mutex<(byCount: [Int: [Int]], bytes: Int)>(([:], 0))

    init(capacityBytes: Int, minimumCount: Int) {
        self.capacityBytes = capacityBytes
        self.minimumCount = minimumCount
    }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count >= minimumCount,
            let address = free.withLock({ state -> Int? in
                guard let address = state.byCount[count]?.popLast() else { return nil }
                state.bytes -= count * MemoryLayout<Float>.stride
                return address
            }),
            let pointer = UnsafeMutablePointer<Float>(bitPattern: address)
        {
            return pointer
        }
        return .allocate(capacity: count)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        let kept =
            count >= minimumCount
            && free.withLock { state in
                guard state.bytes + bytes <= capacityBytes else { return false }
                state.byCount[count, default: []].append(Int(bitPattern: pointer))
                state.bytes += bytes
                return true
            }
        if !kept { pointer.deallocate() }
    }
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

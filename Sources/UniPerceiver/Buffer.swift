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

/// Freed large buffers kept for reuse by exact size, newest last, up to `capacityBytes` in all; when a
/// freed buffer does not fit, the oldest are released first (a probe's mini-batches vary in length,
/// and sizes that do not come back must not pin memory). Smaller buffers go straight to `malloc`,
/// whose own free lists serve them well.
final class BufferPool: Sendable {
    static let shared = BufferPool(capacityBytes: 64 << 20, minimumCount: 16_384)

    let capacityBytes: Int
    let minimumCount: Int
    /// Free blocks (addresses as integers, to be Sendable), oldest first, and the bytes they hold.
    private let free = Mutex<(blocks: [(count: Int, address: Int)], bytes: Int)>(([], 0))

    init(capacityBytes: Int, minimumCount: Int) {
        self.capacityBytes = capacityBytes
        self.minimumCount = minimumCount
    }

    /// Bytes of freed buffers held for reuse.
    var cachedBytes: Int { free.withLock { $0.bytes } }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count >= minimumCount,
            let address = free.withLock({ state -> Int? in
                guard let i = state.blocks.lastIndex(where: { $0.count == count }) else { return nil }
                state.bytes -= count * MemoryLayout<Float>.stride
                return state.blocks.remove(at: i).address
            }),
            let pointer = UnsafeMutablePointer<Float>(bitPattern: address)
        {
            return pointer
        }
        return .allocate(capacity: count)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        guard count >= minimumCount, bytes <= capacityBytes else { return pointer.deallocate() }
        let released = free.withLock { state -> [Int] in
            state.blocks.append((count, Int(bitPattern: pointer)))
            state.bytes += bytes
            var released: [Int] = []
            while state.bytes > capacityBytes {
                let oldest = state.blocks.removeFirst()
                state.bytes -= oldest.count * MemoryLayout<Float>.stride
                released.append(oldest.address)
            }
            return released
        }
        for address in released { UnsafeMutablePointer<Float>(bitPattern: address)?.deallocate() }
    }
}

/// Read-only parameters and writable gradients, both laid out by the `ParameterTable`.
struct ParameterPointers {
    let values: UnsafePointer<Float>
    func callAsFunction(_ offset: Int) -> UnsafePointer<Float> { values + offset }
}

struct GradientPointers {
    let values: UnsafeMutablePointer<Float>
    /// Set by `Model.gradient(_:into:)`: weights not yet written (their ranges hold stale values).
    var firstWrites: FirstWrites? = nil
    func callAsFunction(_ offset: Int) -> UnsafeMutablePointer<Float> { values + offset }

    /// Whether the weight starting at `weightOffset` (a merged expert's, or a dense linear's in a laned
    /// pass) is written here for the first time (then overwrite, not accumulate, its gradient and,
    /// for an expert, its bias's); claims it.
    func claimFirstWrite(_ weightOffset: Int) -> Bool { firstWrites?.claim(weightOffset) ?? false }
}

/// The weights whose gradients `Model.gradient(_:into:)` leaves unzeroed for their first write to
/// overwrite whole, zero-filling afterwards only those nothing wrote: merged experts (attribute,
/// modality, task routing; an expert no unit chose is never written) and, in a laned pass, the dense
/// layers' linear weights (`Encoder.backwardWeights`). Claims are made from one thread: the backward
/// of a one-lane pass, or serially before a laned pass's post-join jobs start.
final class FirstWrites {
    private(set) var pending: Set<Int>
    init(pending: Set<Int>) { self.pending = pending }
    func claim(_ weightOffset: Int) -> Bool { pending.remove(weightOffset) != nil }
}

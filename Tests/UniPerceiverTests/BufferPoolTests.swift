import Testing

@testable import UniPerceiver

/// The pool behind `Buffer` (Buffer.swift): large buffers are reused, a reused `Buffer(count)` is
/// zeroed again, and the pool never holds more than its capacity, releasing its oldest blocks first.
@Suite struct BufferPoolTests {
    @Test("a freed large buffer is reused, and Buffer(count) zeroes it again")
    func reuseIsZeroed() {
        let count = BufferPool.shared.minimumCount + 123  // a size no other test allocates
        var address: UnsafeMutablePointer<Float>? = nil
        do {
            let dirty = Buffer(uninitialized: count)
            dirty.base.update(repeating: 7, count: count)
            address = dirty.base
        }
        let fresh = Buffer(count)
        #expect(fresh.base == address, "the pool should hand back the freed block")
        #expect(UnsafeBufferPointer(start: fresh.base, count: count).allSatisfy { $0 == 0 })
    }

    @Test("small buffers bypass the pool; over capacity the oldest blocks are released")
    func capacityAndMinimum() {
        let pool = BufferPool(capacityBytes: 3 * 4096 * 4, minimumCount: 4096)
        pool.give(pool.take(100), count: 100)
        #expect(pool.cachedBytes == 0, "below minimumCount: freed, not kept")
        let blocks = (0..<4).map { _ in pool.take(4096) }
        for block in blocks { pool.give(block, count: 4096) }
        #expect(pool.cachedBytes == 3 * 4096 * 4, "one block over capacity is released")
        let again = (0..<3).map { _ in pool.take(4096) }
        #expect(Set(again) == Set(blocks.suffix(3)), "the three newest are kept and handed out again")
        #expect(pool.cachedBytes == 0)
        for block in again { block.deallocate() }
    }
}

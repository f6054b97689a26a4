import Foundation

// Memory for the probe's gradient rows: fresh pages faulted in many at a time, not one page fault at
// a time as the copies reach them (each function gives what it saved where measured).

/// `count` zeros whose pages are faulted in by one `madvise(MADV_POPULATE_WRITE)` (``prefault(_:)``)
/// before they are zeroed, rather than one page fault at a time: the dense demo model's 120 MB of
/// row buffers took 0.054 s instead of 0.075 s on the Emerald Rapids host (28 buffers, C, four runs
/// each), and with huge pages (``adviseHugePages(_:)``) 0.024–0.032 s instead of 0.042–0.046 s
/// (`Benchmarks/row_memory_hugepages.c`, which also copies the rows in).
func zeroedRows(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        adviseHugePages(UnsafeMutableRawBufferPointer(buffer))
        prefault(UnsafeMutableRawBufferPointer(buffer))
        buffer.initialize(repeating: 0)
        initialized = count
    }
}

/// Before `needed` more Floats are appended to `values` (whose reserved capacity holds them), faults
/// in the whole pages of its reserved room from where the last call stopped (`populated`, in
/// Floats from the start) to where they end, and at least 4 MB past that stop, by one
/// ``prefault(_:)``, instead of one page fault per 4 KB page as the appends reach them. On the
/// Emerald Rapids host, 250 MB appended in 196 KB rows: 0.087 s against 0.125 s (C, three runs each).
func prefaultAhead(_ values: inout [Float], needed: Int, populated: inout Int) {
    let end = values.count + needed
    // Unique storage first: a shared array is copied on mutation into room for its count only, and
    // the capacity read before that copy would point past the new buffer.
    values.reserveCapacity(values.count)
    guard end > populated, end <= values.capacity else { return }
    let chunk = max(needed, (4 << 20) / MemoryLayout<Float>.size)
    let capacity = values.capacity
    let upTo = min(capacity, max(end, populated + chunk))
    // The room past `count` is allocated but not initialised: only its pages are touched here, by
    // the kernel, and no Float is read or written.
    values.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        // The whole room at once, not each step: advice over a step's range alone splits the
        // mapping there, and a huge page that straddles two steps is never huge.
        if populated == 0 {
            adviseHugePages(UnsafeMutableRawBufferPointer(start: base, count: capacity * MemoryLayout<Float>.size))
        }
        prefault(UnsafeMutableRawBufferPointer(start: base + populated, count: (upTo - populated) * MemoryLayout<Float>.size))
    }
    populated = upTo
}

/// Asks Linux to back the whole pages inside `buffer` with transparent huge pages (2 MB) where it
/// can (`MADV_HUGEPAGE`): one fault and one zeroing per 2 MB instead of 512. Nothing is faulted in
/// here. On the Emerald Rapids host the demo MoE's 336 MB of expert rows, faulted in 4 MB ahead,
/// took 0.097–0.104 s instead of 0.136–0.145 s (medians, `Benchmarks/row_memory_hugepages.c`). Returns the bytes advised and
/// `madvise`'s result (−1 on a kernel built without huge pages, which then keeps small pages);
/// elsewhere `(0, 0)`.
@discardableResult
func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) -> (bytes: Int, result: Int32) {
    wholePages(buffer, advice: 14)  // MADV_HUGEPAGE
}

/// Asks Linux to fault in the whole pages inside `buffer` now, writable; returns the bytes asked
/// for and `madvise`'s result (0 when done; −1 before Linux 5.14, which does not know the advice, and
/// the pages then fault in one at a time as before). Elsewhere it does nothing: `(0, 0)`.
@discardableResult
func prefault(_ buffer: UnsafeMutableRawBufferPointer) -> (bytes: Int, result: Int32) {
    // MADV_POPULATE_WRITE by number: glibc names it only from 2.35 (Debian 12).
    wholePages(buffer, advice: 23)
}

/// `madvise(advice)` over the whole pages inside `buffer`: the bytes asked for and its result.
private func wholePages(_ buffer: UnsafeMutableRawBufferPointer, advice: Int32) -> (bytes: Int, result: Int32) {
    #if os(Linux)
        guard let base = buffer.baseAddress else { return (0, 0) }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let start = (UInt(bitPattern: base) + page - 1) / page * page
        let end = (UInt(bitPattern: base) + UInt(buffer.count)) / page * page
        guard end > start else { return (0, 0) }
        return (Int(end - start), madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), advice))
    #else
        return (0, 0)
    #endif
}

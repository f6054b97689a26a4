import Foundation

// Memory for the probe's gradient rows: fresh pages faulted in many at a time, not one page fault at
// a time as the copies reach them (each function gives what it saved where measured).

/// `count` zeros whose pages are faulted in by one `madvise(MADV_POPULATE_WRITE)` (``prefault(_:)``)
/// before they are zeroed, rather than one page fault at a time: the dense demo model's 120 MB of
/// row buffers took 0.054 s instead of 0.075 s on the Emerald Rapids host (28 buffers, C, four runs
/// each). The pages are small ones (``adviseSmallPages(_:)``).
func zeroedRows(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        adviseSmallPages(UnsafeMutableRawBufferPointer(buffer))
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
        // mapping there.
        if populated == 0 {
            adviseSmallPages(UnsafeMutableRawBufferPointer(start: base, count: capacity * MemoryLayout<Float>.size))
        }
        prefault(UnsafeMutableRawBufferPointer(start: base + populated, count: (upTo - populated) * MemoryLayout<Float>.size))
    }
    populated = upTo
}

/// Asks Linux to keep the whole pages inside `buffer` on 4 KB pages (`MADV_NOHUGEPAGE`), whatever
/// the system's transparent-huge-page mode. Nothing is faulted in here. A probe runs once, in a fresh
/// process, and on a VM whose balloon driver hands freed memory back to the host (free page
/// reporting, in blocks of 2 MB), every fresh huge page is such a block and the host must fault it
/// in again: on the Zen 4 VM of stops 35–44, the demo's row buffers faulted in by a fresh process
/// took 0.27 s (dense, 120 MB) and 0.58 s (MoE, 336 MB) on huge pages against 0.060 s and 0.20 s on
/// small ones (medians of 5, `Benchmarks/row_memory_hugepages.c`'s second table), and the MoE probe
/// at its defaults spent 0.78–1.17 s on its rows against 0.19–0.30 s (eight alternated pairs). Huge
/// pages win only when the memory was freed a moment before (0.022 s and 0.084 s there; on the
/// Emerald Rapids host 0.024–0.032 s against 0.042–0.046 s and 0.10 s against 0.14 s, the advice of
/// stops 29–43), which saves a probe at most 0.02–0.04 s. Returns the bytes advised and `madvise`'s
/// result (−1 on a kernel built without huge pages, whose pages are small anyway); elsewhere `(0, 0)`.
@discardableResult
func adviseSmallPages(_ buffer: UnsafeMutableRawBufferPointer) -> (bytes: Int, result: Int32) {
    wholePages(buffer, advice: 15)  // MADV_NOHUGEPAGE
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

import CBLAS
import Foundation
import Synchronization

// A mini-batch's sequences are independent until the loss, so the model can split them into lanes,
// one per core, each running the whole layer stack with single-threaded BLAS. On the small GEMMs of
// these models (tens to hundreds of rows) that beats OpenBLAS's own two-thread split, which leaves
// every elementwise pass single-threaded and spends ~20 % of its time waking and parking its worker.

/// Runs `body(lane)` for `lane` in `0..<count` concurrently (lane 0 on the calling thread) and
/// returns when all are done. `count == 1` runs inline.
public func forEachLane(_ count: Int, _ body: (Int) -> Void) {
    if count <= 1 {
        body(0)
        return
    }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
    }
}

/// Jobs dealt to `lanes` lanes for `forEachLane`: largest cost first, each to the lane with the
/// least cost so far (the lower lane on ties); each lane's job indices ascending. A fixed deal,
/// computed from the costs alone, so which lane runs a job never depends on timing.
public func dealLargestFirst(costs: [Int], lanes: Int) -> [[Int]] {
    let count = max(lanes, 1)
    var load = [Int](repeating: 0, count: count)
    var deal = [[Int]](repeating: [], count: count)
    for j in costs.indices.sorted(by: { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }) {
        let lane = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
        load[lane] += costs[j]
        deal[lane].append(j)
    }
    return deal.map { $0.sorted() }
}

/// Carries a value into `concurrentPerform`'s closure. Lanes write disjoint memory by construction
/// (their own rows, their own gradient buffer), which the type system cannot see through pointers.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// Process-wide OpenBLAS thread count while lanes run.
///
/// OpenBLAS (pthreads build) has one global thread count, so `singleThreaded` is reference counted:
/// the first caller saves the count and sets 1, the last one restores it. A concurrent caller outside
/// any lane meanwhile computes single-threaded — slower, never wrong.
public enum BLASThreads {
    private static let state = Mutex<(depth: Int, saved: Int32)>((0, 1))

    /// OpenBLAS's thread count now: 1 inside a lane (or on one core), the machine's otherwise.
    public static var count: Int { Int(openblas_get_num_threads()) }

    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        state.withLock { s in
            if s.depth == 0 {
                s.saved = openblas_get_num_threads()
                openblas_set_num_threads(1)
            }
            s.depth += 1
        }
        defer {
            state.withLock { s in
                s.depth -= 1
                if s.depth == 0 { openblas_set_num_threads(s.saved) }
            }
        }
        return try body()
    }
}

/// `y += x` over `count` values, split across `lanes` lanes (the lanes' gradient reduction).
public func addInLanes(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, lanes: Int) {
    let lanes = count >= 1 << 14 ? max(lanes, 1) : 1  // a short add is not worth waking a core
    let chunk = (count + lanes - 1) / lanes
    forEachLane(lanes) { lane in
        let start = lane * chunk
        let n = min(chunk, count - start)
        guard n > 0 else { return }
        simd8Map(count: n, input: x + start, into: y + start, with: x + start) { x, _, y in y + x }
    }
}

/// Zeroes `ranges` of `values`, the total cut into `lanes` contiguous shares (memset is bound by
/// memory bandwidth, which two cores draw about 1.4× as fast as one).
public func zeroInLanes(_ values: UnsafeMutablePointer<Float>, ranges: [Range<Int>], lanes: Int) {
    let total = ranges.reduce(0) { $0 + $1.count }
    let L = total >= 1 << 16 ? max(lanes, 1) : 1
    forEachLane(L) { lane in
        // This lane's share [from, to) of the ranges laid end to end.
        let from = total * lane / L
        let to = total * (lane + 1) / L
        var seen = 0
        for r in ranges {
            let lo = max(from, seen)
            let hi = min(to, seen + r.count)
            if lo < hi { (values + r.lowerBound + (lo - seen)).update(repeating: 0, count: hi - lo) }
            seen += r.count
            if seen >= to { break }
        }
    }
}

/// The parts of `whole` not covered by `ranges` (which must not overlap), in order.
public func complement(of ranges: [Range<Int>], in whole: Range<Int>) -> [Range<Int>] {
    var gaps: [Range<Int>] = []
    var next = whole.lowerBound
    for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
        if r.lowerBound > next { gaps.append(next..<r.lowerBound) }
        next = max(next, r.upperBound)
    }
    if next < whole.upperBound { gaps.append(next..<whole.upperBound) }
    return gaps
}

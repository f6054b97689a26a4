import Kernels
import Testing

/// `dealLargestFirst` decides which lane runs which job (the merges and merge-backwards of a laned
/// MoE pass). Every job must be dealt exactly once, the deal must not depend on anything but the
/// costs, and it must balance the lanes: the old deal in turn gave one lane 7 parts in 12 of a
/// layer's expert weights (3D², D², DF, FD with F = 4D).
@Suite struct LaneDealTests {
    @Test("every job dealt once, each lane's jobs ascending, lanes balanced on an MoE layer's linears")
    func dealsEveryJobOnceAndBalances() {
        let D = 128
        let layer = [3 * D * D, D * D, 4 * D * D, 4 * D * D]  // qkv, out, fc1, fc2
        let costs = Array([[Int]](repeating: layer, count: 6).joined())
        let deal = dealLargestFirst(costs: costs, lanes: 2)
        #expect(deal.count == 2)
        #expect(deal.flatMap { $0 }.sorted() == Array(costs.indices))
        #expect(deal.allSatisfy { $0 == $0.sorted() })
        let loads = deal.map { $0.reduce(0) { $0 + costs[$1] } }
        #expect(loads[0] == loads[1], "loads \(loads)")
        #expect(dealLargestFirst(costs: costs, lanes: 2) == deal)  // a fixed deal
    }

    @Test("one lane takes every job; no jobs give empty lanes; ties go to the lower lane")
    func edgeCases() {
        #expect(dealLargestFirst(costs: [5, 1, 3], lanes: 1) == [[0, 1, 2]])
        #expect(dealLargestFirst(costs: [], lanes: 2) == [[], []])
        #expect(dealLargestFirst(costs: [2, 2], lanes: 2) == [[0], [1]])
        #expect(dealLargestFirst(costs: [4], lanes: 0) == [[0]])
    }

    /// `complement` gives the gaps the ranges leave (the gradient ranges no first write reached),
    /// in order and never an empty one, whether or not the ranges reach either end.
    @Test("complement: the non-empty gaps between, before and after the ranges, in order")
    func complementGivesTheNonEmptyGaps() {
        #expect(complement(of: [5..<7, 0..<2], in: 0..<10) == [2..<5, 7..<10])
        #expect(complement(of: [0..<3, 3..<6, 8..<10], in: 0..<10) == [6..<8])
        #expect(complement(of: [0..<10], in: 0..<10) == [])
        #expect(complement(of: [], in: 4..<6) == [4..<6])
    }
}

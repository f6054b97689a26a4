import CGramKernel
import Foundation
import Kernels
import Testing

@testable import GradientProbe

/// `GramAccumulator.gram` of in-memory rows, `superRows` of them handed over per load, in tiles of
/// `tileRows` rows (64 gives the tests' 150 rows three tiles, the last partial).
func accumulatedGram(
    _ rows: [Float], count: Int, width: Int, superRows: Int, tileRows: Int = GramAccumulator.rowTile
) -> [Double] {
    var multiplyAdds = 0
    return GramAccumulator.gram(
        rowCount: count, width: width, superRows: superRows, tileRows: tileRows, multiplyAdds: &multiplyAdds
    ) { range in
        Array(rows[(range.lowerBound * width)..<(range.upperBound * width)])
    }
}

@Suite struct GramAccumulatorTests {
    /// 150 rows (three 64-row tiles, the last partial; two default tiles) of 5000 values (two column
    /// blocks, each split between the lanes).
    static let count = 150
    static let width = 5000
    static let rows: [Float] = {
        var rng = SeededRNG(seed: 3)
        return (0..<(count * width)).map { _ in Float(rng.nextGaussian()) * (1 + Float(rng.nextInt(below: 3))) }
    }()

    func gram(superRows: Int, tileRows: Int = 64) -> [Double] {
        accumulatedGram(Self.rows, count: Self.count, width: Self.width, superRows: superRows, tileRows: tileRows)
    }

    @Test(arguments: [64, GramAccumulator.rowTile])
    func equalsExplicitDotProductsInDouble(tileRows: Int) {
        let fast = gram(superRows: Self.count, tileRows: tileRows)
        let naive = naiveGram(Self.rows, count: Self.count, width: Self.width)
        // Relative to the entry's scale √(G_aa G_bb): cross entries of random rows nearly cancel.
        var worst = 0.0
        for a in 0..<Self.count {
            for b in 0..<Self.count {
                let scale = (naive[a * Self.count + a] * naive[b * Self.count + b]).squareRoot()
                worst = max(worst, abs(fast[a * Self.count + b] - naive[a * Self.count + b]) / scale)
            }
        }
        #expect(worst < 1e-13)
    }

    @Test func exactlySymmetric() {
        let g = gram(superRows: 64)
        for a in 0..<Self.count {
            for b in 0..<a { #expect(g[a * Self.count + b] == g[b * Self.count + a]) }
        }
    }

    @Test func rowsLoadedPerCallDoNotChangeABit() {
        let whole = gram(superRows: Self.count)
        #expect(gram(superRows: 64) == whole)
        #expect(gram(superRows: 128) == whole)
        #expect(gram(superRows: 1) == whole)  // rounded up to one tile
        #expect(gram(superRows: 10_000) == whole)
        let wholeDefault = gram(superRows: Self.count, tileRows: GramAccumulator.rowTile)
        #expect(gram(superRows: 1, tileRows: GramAccumulator.rowTile) == wholeDefault)  // one tile per load
    }

    /// A workspace left by earlier Grams (larger and smaller, other widths) changes no bit.
    @Test func reusedWorkspaceChangesNothing() {
        let workspace = GramAccumulator.Workspace()
        func gram(count: Int, width: Int, workspace: GramAccumulator.Workspace) -> [Double] {
            var multiplyAdds = 0
            return GramAccumulator.gram(
                rowCount: count, width: width, superRows: count, tileRows: 64, multiplyAdds: &multiplyAdds,
                workspace: workspace
            ) { range in
                (range.lowerBound..<range.upperBound).flatMap { r in Self.rows[(r * Self.width)..<(r * Self.width + width)] }
            }
        }
        for (count, width) in [(150, 5000), (90, 300), (150, 4100), (150, 5000)] {
            #expect(
                gram(count: count, width: width, workspace: workspace)
                    == gram(count: count, width: width, workspace: GramAccumulator.Workspace()),
                "\(count) rows × \(width)")
        }
    }

    /// A workspace on a chosen instruction set (what `GramBenchmark` times the AVX2 kernels with on an
    /// AVX-512 CPU) keeps it and gives the default workspace's Gram bit for bit, with rows known to be
    /// zero left out as the probe's MoE experts hand them over.
    @Test func workspaceOnAnyPathGivesTheSameBits() {
        #expect(GramAccumulator.Workspace().path == GramAccumulator.kernelPath)
        let (count, width) = (90, 300)
        // Every third row known to be zero (place −1), the rest present in order.
        let places = (0..<count).map { $0 % 3 == 0 ? -1 : $0 - $0 / 3 - 1 }
        let present = (0..<count).filter { $0 % 3 != 0 }.flatMap { r in Self.rows[(r * Self.width)..<(r * Self.width + width)] }
        let block = GramAccumulator.RowBlock(values: present, places: places)
        var multiplyAdds = 0
        let reference = GramAccumulator.gram(rowCount: count, width: width, rows: block, multiplyAdds: &multiplyAdds)
        for path in [TIGramPathScalar, TIGramPathAVX2, TIGramPathAVX512] where ti_gram_path_supported(path) {
            let workspace = GramAccumulator.Workspace(path: path)
            #expect(workspace.path == path)
            let g = GramAccumulator.gram(
                rowCount: count, width: width, rows: block, multiplyAdds: &multiplyAdds, workspace: workspace)
            #expect(g.map(\.bitPattern) == reference.map(\.bitPattern), "path \(path.rawValue)")
        }
        #expect(reference[0] == 0 && reference[1 * count + 1] > 0)
    }

    /// Every column block is split into the lanes' equal, disjoint ranges, so the lanes share the work.
    @Test func lanesShareEveryBlockEqually() {
        #expect(GramAccumulator.lanes == 2)
        for block in [0..<4096, 8192..<9000, 3..<4, 7..<7] {
            let ranges = (0..<GramAccumulator.lanes).map { GramAccumulator.laneColumns(of: block, lane: $0) }
            #expect(ranges.first?.lowerBound == block.lowerBound && ranges.last?.upperBound == block.upperBound)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            let sizes = ranges.map(\.count)
            #expect(sizes.max()! - sizes.min()! <= 1, "\(block): \(sizes)")
        }
    }

    /// A diagonal tile pair is a symmetric rank-k update: only its upper triangle is computed and
    /// added (the Gram mirrors it at the end), at half a GEMM's multiply-adds.
    @Test func diagonalTilesAddOnlyTheirUpperTriangle() {
        let n = Self.count
        let k = GramAccumulator.columnBlock
        var packed = GramAccumulator.PackedBlock()
        packed.pack(Self.rows, rows: 0..<n, width: Self.width, columns: 0..<k, tileRows: 64)
        var gram = [Double](repeating: 0, count: n * n)
        let multiplyAdds = gram.withUnsafeMutableBufferPointer {
            GramAccumulator.multiplyTiles(packed, packed, k: k, gram: $0.baseAddress!, n: n)
        }
        var below = 0
        var wrong = 0
        for a in 0..<n {
            for b in 0..<a where gram[a * n + b] != 0 { below += 1 }
            // Every entry of the upper triangle is written; a sample of them is checked.
            for b in stride(from: a, to: n, by: 5) {
                var dot = 0.0
                for c in 0..<k { dot += Double(Self.rows[a * Self.width + c]) * Double(Self.rows[b * Self.width + c]) }
                if abs(gram[a * n + b] - dot) > 1e-9 * abs(dot) + 1e-9 { wrong += 1 }
            }
        }
        #expect(below == 0, "entries below the diagonal are left for the mirror")
        #expect(wrong == 0)
        // Tiles of 64, 64 and 22 rows: three triangles and three rectangles.
        let expected = (64 * 65 / 2 + 64 * 65 / 2 + 22 * 23 / 2 + 64 * 64 + 64 * 22 + 64 * 22) * k
        #expect(multiplyAdds == expected)
    }

    /// What the probe reports as the Gram's work: the upper triangle over every column block.
    @Test func multiplyAddsCountTheUpperTriangleOfEveryBlock() {
        var multiplyAdds = 0
        _ = GramAccumulator.gram(
            rowCount: Self.count, width: Self.width, superRows: 64, tileRows: 64, multiplyAdds: &multiplyAdds
        ) {
            range in Array(Self.rows[(range.lowerBound * Self.width)..<(range.upperBound * Self.width)])
        }
        let tiles = [64, 64, 22]
        var perColumn = 0
        for i in tiles.indices {
            for j in i..<tiles.count { perColumn += i == j ? tiles[i] * (tiles[i] + 1) / 2 : tiles[i] * tiles[j] }
        }
        #expect(multiplyAdds == perColumn * Self.width)
    }

    /// The packing: exact conversion, 8-row panels column by column, zeros padding the last panel;
    /// and its zero check (`ti_gram_pack_row`'s answer, what decides whether a row is kept): ±0
    /// count as zero, anything else (the tiniest subnormal) does not.
    @Test func packingIsExactAndFindsAnyNonZeroValue() {
        for count in [0, 5, 8, 21] {
            for position in [-1] + Array(0..<count) {
                // Zeros (some negative), one tiny non-zero value at `position` (none for -1).
                var values = (0..<count).map { $0 % 2 == 0 ? Float(0) : -Float(0) }
                if position >= 0 { values[position] = .leastNonzeroMagnitude }
                var panel = [Double](repeating: .nan, count: max(count, 1) * 8)
                let nonZero = ti_gram_pack_row(values, Int32(count), &panel, 3)
                #expect(nonZero == (position >= 0), "count \(count), non-zero at \(position)")
                #expect((0..<count).allSatisfy { panel[$0 * 8 + 3].bitPattern == Double(values[$0]).bitPattern })
            }
        }
        var rng = SeededRNG(seed: 9)
        let (rows, k) = (11, 37)
        let values = (0..<(rows * k)).map { _ in Float(rng.nextGaussian()) * 1e-30 }
        let panels = packedPanels(values, rows: rows, k: k)
        #expect(panels.count == 16 * k)
        for panel in 0..<2 {
            for c in 0..<k {
                for r in 0..<8 {
                    let row = panel * 8 + r
                    let expected = row < rows ? Double(values[row * k + c]) : 0
                    #expect(panels[(panel * k + c) * 8 + r].bitPattern == expected.bitPattern, "row \(row), column \(c)")
                }
            }
        }
    }

    /// `ti_gram_pack_rows` on every path this CPU runs gives exactly what packing row by row gives
    /// (`ti_gram_pack_row` for each candidate, a zero row overwritten by the next, then
    /// `ti_gram_pad`): the same kept rows, values, layout and zero padding. Rows lie at strided,
    /// unordered places; some are +0 or −0 throughout, and one is zero but for a subnormal in its
    /// last column, which the AVX-512 path reads through its tail mask.
    @Test func packingManyRowsAtOnceEqualsPackingRowByRow() {
        let paths = [TIGramPathScalar, TIGramPathAVX2, TIGramPathAVX512].filter { ti_gram_path_supported($0) }
        var rng = SeededRNG(seed: 31)
        // `zeros` false: no row is zero (a dense model's rows), the AVX-512 path's one-pass packing;
        // true: zero rows among them, which send it back to testing each row before packing.
        for k in [1, 7, 8, 9, 16, 17, 37, 384] {
            for (count, zeros) in [0, 1, 7, 8, 9, 21].flatMap({ c in [(c, true), (c, false)] }) {
                let stride = k + 5
                let sourceRows = count + 3
                var source = (0..<(sourceRows * stride)).map { _ in Float(rng.nextGaussian()) }
                // Candidates at places in a shuffled order; every third one zero, one a lone subnormal.
                var places = Array(0..<sourceRows).shuffled(using: &rng).prefix(count).map { $0 }
                for (i, place) in places.enumerated() where zeros && i % 3 == 1 {
                    for c in 0..<k { source[place * stride + c] = c % 2 == 0 ? 0 : -0.0 }
                }
                if count > 4 {
                    for c in 0..<k { source[places[4] * stride + c] = 0 }
                    source[places[4] * stride + k - 1] = -.leastNonzeroMagnitude
                }
                // Row by row.
                let capacity = max((count + 7) / 8, 1) * 8 * k
                var expected = [Double](repeating: .nan, count: capacity)
                var expectedKept: [Int32] = []
                for (i, place) in places.enumerated() {
                    let row = Array(source[(place * stride)..<(place * stride + k)])
                    if ti_gram_pack_row(row, Int32(k), &expected, Int32(expectedKept.count)) {
                        expectedKept.append(Int32(i))
                    }
                }
                ti_gram_pad(&expected, Int32(expectedKept.count), Int32(k))
                let used = (expectedKept.count + 7) / 8 * 8 * k
                for path in paths {
                    var panels = [Double](repeating: .nan, count: capacity)
                    var kept = [Int32](repeating: -1, count: count)
                    let n = ti_gram_pack_rows(
                        path, source, stride, &places, Int32(count), Int32(k), &panels, &kept)
                    #expect(
                        Array(kept.prefix(Int(n))) == expectedKept, "path \(path.rawValue), k \(k), count \(count), zeros \(zeros)")
                    #expect(
                        (0..<used).allSatisfy { panels[$0].bitPattern == expected[$0].bitPattern },
                        "path \(path.rawValue), k \(k), count \(count), zeros \(zeros)")
                }
            }
        }
    }

    /// The masked loads never touch memory past a row's k values: the only row ends right at a
    /// PROT_NONE page, for every k (tail widths 1…15 and whole blocks of 8 and 16).
    @Test func packingRowsNeverReadsPastARowsEnd() throws {
        try withGuardPage { end, paths in
            for k in 1...40 {
                let row = end.assumingMemoryBound(to: Float.self) - k
                for c in 0..<k { row[c] = c == k - 1 ? 1.5 : 0 }
                for path in paths {
                    var places = [0]
                    var panels = [Double](repeating: .nan, count: 8 * k)
                    var kept: [Int32] = [-1]
                    let n = ti_gram_pack_rows(path, row, 0, &places, 1, Int32(k), &panels, &kept)
                    #expect(n == 1 && kept == [0] && panels[(k - 1) * 8] == 1.5, "path \(path.rawValue), k \(k)")
                }
            }
        }
    }

    /// The kernels never read past the last packed panel: the panels end right at a PROT_NONE page
    /// (a stray read faults), for every row count from 1 to 48 — whole and partial panels, and a
    /// last block of one, two or three panels on every path — and the results are the rule's.
    @Test func kernelsNeverReadPastTheLastPanel() throws {
        try withGuardPage { end, paths in
            let k = 5
            var rng = SeededRNG(seed: 13)
            for n in 1...48 {
                let rows = (0..<(n * k)).map { _ in Float(rng.nextGaussian()) }
                let packed = packedPanels(rows, rows: n, k: k)
                let panels = end.assumingMemoryBound(to: Double.self) - packed.count
                panels.update(from: packed, count: packed.count)
                let a = [Float](repeating: 1, count: 3 * k)
                let packedA = packedPanels(a, rows: 3, k: k)
                for path in paths {
                    var rect = [Double](repeating: 0, count: 3 * n)
                    ti_gram_gemm(path, 3, Int32(n), Int32(k), packedA, panels, &rect, n)
                    var square = [Double](repeating: 0, count: n * n)
                    ti_gram_syrk(path, Int32(n), Int32(k), panels, &square, n)
                    var wrong = 0
                    for j in 0..<n {
                        var s = 0.0
                        for c in 0..<k { s = s.addingProduct(1, Double(rows[j * k + c])) }
                        for i in 0..<3 where rect[i * n + j].bitPattern != s.bitPattern { wrong += 1 }
                        var d = 0.0
                        for c in 0..<k { d = d.addingProduct(Double(rows[j * k + c]), Double(rows[j * k + c])) }
                        if square[j * n + j].bitPattern != d.bitPattern { wrong += 1 }
                    }
                    #expect(wrong == 0, "path \(path.rawValue), n \(n)")
                }
            }
        }
    }

    /// The run-time choice finds what the CPU has: a detection bug would silently drop to a slower
    /// path (every path gives the same bits, so no other test would notice). Linux lists the
    /// instruction sets the kernel enabled in `/proc/cpuinfo`.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/cpuinfo")))
    func bestPathMatchesTheCPUFlags() throws {
        #if arch(x86_64)
            let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            let flagsLine = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
            let flags = Set(flagsLine.split(separator: " ").map(String.init))
            let expected =
                flags.contains("avx512f") && flags.contains("avx2") && flags.contains("fma")
                ? TIGramPathAVX512 : flags.contains("avx2") && flags.contains("fma") ? TIGramPathAVX2 : TIGramPathScalar
            #expect(ti_gram_best_path() == expected, "flags: avx512f \(flags.contains("avx512f")), avx2 \(flags.contains("avx2")), fma \(flags.contains("fma"))")
        #else
            #expect(ti_gram_best_path() == TIGramPathScalar)
        #endif
    }

    /// Every kernel path this CPU runs gives exactly the bits of the rule they all follow: each
    /// entry summed from 0 with one fused multiply-add per column, in column order, then added to
    /// the target (the rule written out here in Swift, `addingProduct` being IEEE fusedMultiplyAdd).
    /// Shapes cover partial panels, an odd `k`, the diagonal's upper triangle, and blocks of one, two
    /// and three B panels after the diagonal (the AVX-512 path takes three at a time).
    @Test func everyKernelPathAddsTheSameBits() {
        let paths = [TIGramPathScalar, TIGramPathAVX2, TIGramPathAVX512].filter { ti_gram_path_supported($0) }
        #expect(paths.contains(TIGramPathScalar))
        var rng = SeededRNG(seed: 12)
        for (m, n, k) in [(1, 1, 1), (7, 9, 3), (16, 8, 384), (21, 30, 77), (40, 17, 200), (52, 45, 33)] {
            let a = (0..<(m * k)).map { _ in Float(rng.nextGaussian()) }
            let b = (0..<(n * k)).map { _ in Float(rng.nextGaussian()) }
            let start = (0..<(m * n)).map { _ in rng.nextGaussian() }
            let startSquare = (0..<(m * m)).map { _ in rng.nextGaussian() }
            func rule(_ x: [Float], _ y: [Float], _ i: Int, _ j: Int) -> Double {
                var s = 0.0
                for c in 0..<k { s = s.addingProduct(Double(x[i * k + c]), Double(y[j * k + c])) }
                return s
            }
            let packedA = packedPanels(a, rows: m, k: k)
            let packedB = packedPanels(b, rows: n, k: k)
            // The targets have rows 3 entries longer than the block, and 8 more entries after the
            // last row: those, sentinels, must come back untouched (the kernels add into the
            // target straight from registers, through masks). The sentinel is −0: adding even a
            // padding row's sum (+0) to it would leave +0.
            let (ldr, lds) = (n + 3, m + 3)
            let sentinel = -0.0
            func widened(_ values: [Double], rows: Int, columns: Int, stride: Int) -> [Double] {
                var out = [Double](repeating: sentinel, count: rows * stride + 8)
                for i in 0..<rows { for j in 0..<columns { out[i * stride + j] = values[i * columns + j] } }
                return out
            }
            for path in paths {
                var rect = widened(start, rows: m, columns: n, stride: ldr)
                ti_gram_gemm(path, Int32(m), Int32(n), Int32(k), packedA, packedB, &rect, ldr)
                var square = widened(startSquare, rows: m, columns: m, stride: lds)
                ti_gram_syrk(path, Int32(m), Int32(k), packedA, &square, lds)
                var wrong = 0
                for i in 0..<m {
                    for j in 0..<n where rect[i * ldr + j].bitPattern != (start[i * n + j] + rule(a, b, i, j)).bitPattern {
                        wrong += 1
                    }
                    for j in 0..<m {
                        let expected = j >= i ? startSquare[i * m + j] + rule(a, a, i, j) : startSquare[i * m + j]
                        if square[i * lds + j].bitPattern != expected.bitPattern { wrong += 1 }
                    }
                }
                let untouched = { (values: [Double], stride: Int, columns: Int) in
                    values.indices.allSatisfy { p in
                        (p < values.count - 8 && p % stride < columns) || values[p].bitPattern == sentinel.bitPattern
                    }
                }
                #expect(wrong == 0, "path \(path.rawValue), m \(m), n \(n), k \(k)")
                #expect(
                    untouched(rect, ldr, n) && untouched(square, lds, m),
                    "path \(path.rawValue), m \(m), n \(n), k \(k): an entry outside the block was written")
            }
        }
    }

    @Test func budgetGivesWholeTilesAndAtLeastOne() {
        let tile = GramAccumulator.rowTile
        #expect(GramAccumulator.superRows(width: 1000, budget: 0) == tile)
        let rows = GramAccumulator.superRows(width: 1000, budget: 100 << 20)
        #expect(rows % tile == 0 && rows > tile)
        #expect(rows * 2 * (4 * 1000 + 8 * min(1000, GramAccumulator.columnBlock)) <= 100 << 20)
    }
}

/// Rows that are zero in a column block (an MoE expert no mini-batch routed to) are skipped: the
/// Gram must still equal the explicit dot products, zero rows give exact zeros, and the result must
/// not depend on how rows are loaded.
@Suite struct GramAccumulatorZeroRowTests {
    /// 150 rows × 5000 (two column blocks), in 64-row tiles. Zero: every third row entirely; rows 64..<128 (one
    /// whole tile) in the first block; row 5 in the second block only.
    static let count = 150
    static let width = 5000
    static let rows: [Float] = {
        var rng = SeededRNG(seed: 4)
        var values = (0..<(count * width)).map { _ in Float(rng.nextGaussian()) }
        for r in 0..<count {
            let zeroColumns: Range<Int>? =
                r % 3 == 0 ? 0..<width
                : (64..<128).contains(r) ? 0..<GramAccumulator.columnBlock
                : r == 5 ? GramAccumulator.columnBlock..<width : nil
            if let zeroColumns { for c in zeroColumns { values[r * width + c] = 0 } }
        }
        return values
    }()

    func gram(superRows: Int, tileRows: Int = 64) -> [Double] {
        accumulatedGram(Self.rows, count: Self.count, width: Self.width, superRows: superRows, tileRows: tileRows)
    }

    @Test(arguments: [64, GramAccumulator.rowTile])
    func equalsExplicitDotProductsAndZeroRowsGiveZeros(tileRows: Int) {
        let n = Self.count
        let fast = gram(superRows: n, tileRows: tileRows)
        let naive = naiveGram(Self.rows, count: n, width: Self.width)
        var worst = 0.0
        for a in 0..<n where a % 3 != 0 {
            for b in 0..<n where b % 3 != 0 {
                let scale = (naive[a * n + a] * naive[b * n + b]).squareRoot()
                worst = max(worst, abs(fast[a * n + b] - naive[a * n + b]) / scale)
            }
        }
        #expect(worst < 1e-13)
        var nonZero = 0
        for a in stride(from: 0, to: n, by: 3) {
            for b in 0..<n where fast[a * n + b] != 0 || fast[b * n + a] != 0 { nonZero += 1 }
        }
        #expect(nonZero == 0, "entries of all-zero rows are exactly 0")
        #expect(fast[5 * n + 5] > 0 && fast[70 * n + 70] > 0, "rows zero in one block only still count their other block")
    }

    @Test func rowsLoadedPerCallDoNotChangeABit() {
        let whole = gram(superRows: Self.count)
        #expect(gram(superRows: 64) == whole)
        #expect(gram(superRows: 128) == whole)
    }

    /// The probe keeps in memory only the rows that are not all zero (`RowBlock.places`, −1 for the
    /// others); the Gram of those must be the Gram of all the rows, bit for bit, in any tiling.
    @Test(arguments: [64, GramAccumulator.rowTile])
    func rowsKnownZeroGiveTheSameGramUnread(tileRows: Int) {
        let n = Self.count
        let width = Self.width
        var places = [Int](repeating: -1, count: n)
        var kept: [Float] = []
        for r in 0..<n where r % 3 != 0 {  // the rows that are zero everywhere are left out
            places[r] = kept.count / width
            kept += Self.rows[(r * width)..<((r + 1) * width)]
        }
        var multiplyAdds = 0
        let sparse = GramAccumulator.gram(
            rowCount: n, width: width, superRows: n, tileRows: tileRows, multiplyAdds: &multiplyAdds
        ) { (range: Range<Int>) -> GramAccumulator.RowBlock in
            GramAccumulator.RowBlock(values: kept, places: Array(places[range]))
        }
        #expect(sparse == gram(superRows: n, tileRows: tileRows))
        #expect(sparse == gram(superRows: 64, tileRows: tileRows))
        if tileRows == GramAccumulator.rowTile {
            let inMemory = GramAccumulator.gram(
                rowCount: n, width: width, rows: GramAccumulator.RowBlock(values: kept, places: places),
                multiplyAdds: &multiplyAdds)
            #expect(inMemory == sparse)
        }
    }

    /// The skipping itself: a packed column block holds only the rows that are not zero in it.
    @Test func packedTilesLeaveOutTheRowsThatAreZeroInTheirBlock() {
        let n = Self.count
        let width = Self.width
        let block = GramAccumulator.columnBlock
        var packed = GramAccumulator.PackedBlock()
        packed.pack(Self.rows, rows: 0..<n, width: width, columns: 0..<block, tileRows: 64)
        let kept = packed.tiles.map(\.rows)
        #expect(packed.tiles.map(\.index) == [0, 1, 2])
        #expect(kept[0] == (0..<64).filter { $0 % 3 != 0 })
        #expect(kept[1].isEmpty, "rows 64..<128 are zero in the first block")
        #expect(kept[2] == (128..<n).filter { $0 % 3 != 0 })
        let second = packed.tiles[2]
        #expect(packed.values[second.offset * block] == Double(Self.rows[second.rows[0] * width]))
        packed.pack(Self.rows, rows: 0..<n, width: width, columns: block..<width, tileRows: 64)
        #expect(packed.tiles[0].rows == (0..<64).filter { $0 % 3 != 0 && $0 != 5 }, "row 5 is zero in the second block")
        #expect(packed.tiles[1].rows == (64..<128).filter { $0 % 3 != 0 })
    }
}

/// `rows` rows of `k` values packed in the kernels' 8-row panels (NaN before packing, so a place
/// the packing leaves unwritten shows).
func packedPanels(_ values: [Float], rows: Int, k: Int) -> [Double] {
    var panels = [Double](repeating: .nan, count: (rows + 7) / 8 * 8 * k)
    ti_gram_pack(values, Int32(rows), Int32(k), &panels)
    return panels
}

/// Runs `body` with the end of a readable page that a `PROT_NONE` page follows (data placed right
/// before it shows any read past its end as a fault) and the kernel paths this CPU runs.
func withGuardPage(_ body: (UnsafeMutableRawPointer, [TIGramPath]) throws -> Void) throws {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let map = try #require(
        mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), "mmap")
    defer { munmap(map, 2 * page) }
    #expect(mprotect(map + page, page, PROT_NONE) == 0)
    try body(map + page, [TIGramPathScalar, TIGramPathAVX2, TIGramPathAVX512].filter { ti_gram_path_supported($0) })
}

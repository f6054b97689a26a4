import CGramKernel
import Kernels

/// `G = R·Rᵀ` of `R` gradient rows of width `P`, in Float64, with a fixed tiling so that the result
/// is bit for bit the same whether the rows come from memory or from disk, and however many rows
/// are loaded at a time.
///
/// **Precision (why Float64).** Rows are Float32 (what backward produces). Each block of
/// ``columnBlock`` columns is converted to Double (exactly) and multiplied by our kernels
/// (`CGramKernel`), and the blocks are accumulated in Double: every product is exact and the sums
/// carry ~1e-16 relative error, far inside the 1e-6 the metric needs. A Float32 `sgemm` would lose
/// ~√P·6e-8 ≈ 2e-5 on P = 147k and more on cancelling cross-task entries. The price is Double's
/// half-speed multiply, which computing only the upper triangle gives back (`make bench-gram`).
///
/// **Why our own kernels, not BLAS.** OpenBLAS chooses its kernels by CPU model; on one it does
/// not know it falls back to SSE3 kernels (Intel Emerald Rapids with OpenBLAS 0.3.21: `dsyrk` at
/// 7–16 GFLOP/s per core, against 31–62 for ours; `reports/benchmarks.md`). Ours choose AVX-512, AVX2 or scalar code by what
/// the CPU supports, and every path sums each entry in the same order with fused multiply-adds,
/// so the same rows give the same Gram bit for bit on every machine (the rows themselves come from
/// the model's `sgemm` calls, whose rounding depends on OpenBLAS's kernels).
///
/// **Zero rows are skipped.** An MoE expert's gradient is exactly zero for every mini-batch that
/// routed nothing to it, and on the demo's attribute-routed model three quarters of the experts'
/// Gram work was such rows. Each tile's rows are packed per column block without the rows that are
/// zero there; a tile pair multiplies only what is left (nothing when either side is empty) and
/// adds the product into its Gram entries. A skipped row's entries are exactly 0 — what multiplying
/// it would add, since rows are finite (the probe refuses or zeroes non-finite ones).
///
/// **Lanes.** Every column block is split into ``lanes`` equal column ranges; lane `l` takes range
/// `l` of every block and accumulates its own partial Gram, and `G` is their sum in lane order.
/// The lanes' work is equal whatever the width. The lane count is a constant, not the machine's
/// core count: it is part of the arithmetic.
///
/// **In place when it can.** When neither tile of a pair left a row out in a block (a dense model's
/// tiles always), the pair's entries are one block of the partial Gram and the kernel adds into it
/// directly; otherwise the product goes to scratch and is added entry by entry. A pair with rows
/// known to be zero (an MoE expert's) adds into a compact block of its own over the rows present,
/// kept across column blocks — directly when no present row was left out of the block — and added
/// into the Gram once (``TileSums``): on the demo MoE probe that took the Gram's work outside the
/// kernels from 43–50 % of the kernels' CPU samples to 33–45 % (perf, stop 29).
///
/// **Determinism.** Entry `(a, b)` with `a ≤ b` is produced, in each lane, by the calls of the tile
/// pair `(⌊a/tileRows⌋, ⌊b/tileRows⌋)` over that lane's column range of every block, in column
/// order; each call sums the entry over its columns in order, from 0, and adds the sum to the
/// entry. Nothing depends on how rows were loaded: loading more or fewer rows at once
/// (`superRows`) only changes which tile pairs are visited together. The lower triangle is the
/// mirror of the upper, so `G` is exactly symmetric. This is what makes merged shards equal an
/// unsharded run bit for bit (same rows, same arithmetic).
public enum GramAccumulator {
    /// Rows per tile (the largest `m`, `n` of a kernel call): the probe's default T·N = 300 rows are
    /// one tile, one `ti_gram_syrk` per lane and column block. Also the fewest rows a spilled Gram
    /// loads at once. Measured with BLAS's `dsyrk` on the probe's default shapes (`make bench-gram`,
    /// interleaved), 28 tensors: on an
    /// AVX2 host (OpenBLAS `Zen` kernels) 192 rows 0.317–0.324 s, 128 rows 0.326–0.335 s, 320 and
    /// 512 rows 0.321–0.329 s; on an AVX-512 host (`Cooperlake` kernels) 320 rows 0.116–0.126 s,
    /// 192 rows 0.131–0.162 s, 96 rows 0.137–0.141 s. 320 costs the first 1 % and saves the second
    /// 15–25 %.
    public static let rowTile = 320
    /// Columns per block; each lane's calls have `k = columnBlock / lanes`. A lane's converted block
    /// (300 rows × 384 Doubles, 0.9 MB) then stays in its core's 1 MB L2 (measured with OpenBLAS). On the
    /// AVX-512 host (`make bench-gram`, interleaved, best of 10), 28 tensors: 768 columns
    /// 0.111–0.115 s against 0.115–0.123 s for 4096; one D = 192 `ffn.dense2.weight`: 0.160–0.163
    /// against 0.168–0.171 s; 512 and 1024 columns in between. (2048 and 8192 were no better than
    /// 4096 on the AVX2 host; 768 was not measured there.)
    public static let columnBlock = 768
    /// Column ranges per block, computed concurrently.
    public static let lanes = 2

    /// Rows that can be loaded at once within `budget` bytes: two blocks of `rows × width` Float32
    /// plus every lane's Double conversions, a multiple of ``rowTile``, at least one tile.
    public static func superRows(width: Int, budget: Int) -> Int {
        let perRow = 2 * (4 * width + 8 * min(width, columnBlock))
        let rows = budget / max(perRow, 1)
        return max(rowTile, rows / rowTile * rowTile)
    }

    /// The Gram of `rowCount` rows of `width` values, row-major `[rowCount · rowCount]`.
    ///
    /// - Parameters:
    ///   - superRows: rows loaded per call of `load` (rounded up to a multiple of ``rowTile``).
    ///   - load: returns the rows `range` as `range.count · width` Float32 values.
    public static func gram<E: Error>(
        rowCount: Int, width: Int, superRows: Int,
        load: (Range<Int>) throws(E) -> [Float]
    ) throws(E) -> [Double] {
        var multiplyAdds = 0
        return try gram(rowCount: rowCount, width: width, superRows: superRows, multiplyAdds: &multiplyAdds, load: load)
    }

    /// Buffers a Gram leaves for the next one: every lane's partial Gram and packed blocks. A probe
    /// computes one Gram per tensor; reusing these spares each tensor fresh pages to fault in and
    /// zero (≈ 10 % of the Gram's time over the demo model's 28 tensors). One per thread of callers.
    public final class Workspace {
        var partials: [Double] = []
        var packs: [(PackedBlock, PackedBlock)] = []
        /// The kernels' instruction set for the Grams made with this workspace.
        let path: TIGramPath
        /// The fastest instruction set this CPU runs (``kernelPath``).
        public init() { path = GramAccumulator.kernelPath }
        /// A given instruction set, which must run here (`ti_gram_path_supported`): every path gives
        /// the same bits, so this only changes the speed (`GramBenchmark` times the AVX2 path on an
        /// AVX-512 CPU to stand in for an AVX2 one).
        public init(path: TIGramPath) {
            precondition(ti_gram_path_supported(path), "GramAccumulator.Workspace: instruction set \(path.rawValue) does not run on this CPU")
            self.path = path
        }
    }

    /// Rows of a range as `load` hands them over: every row in order, or only the rows not known to
    /// be zero. A row known to be zero is never read and counts as the zero row it is — exactly what
    /// the packing would have found by reading it, so the Gram is the same bit for bit.
    public struct RowBlock: Sendable {
        /// The rows present, `width` values each, in row order.
        public var values: [Float]
        /// Per row of the range, its place among the rows present, or −1 for a row known to be zero;
        /// nil when every row is present (place = offset in the range).
        public var places: [Int]?

        public init(values: [Float], places: [Int]? = nil) {
            self.values = values
            self.places = places
        }
    }

    /// ``gram(rowCount:width:superRows:load:)``, also adding to `multiplyAdds` the multiply-adds its
    /// Gram needs — the upper triangle, without the kernels' padding to whole blocks (what a
    /// GFLOP/s figure for the Gram should count: `2 ×` this).
    /// `tileRows` replaces ``rowTile`` (tests use small tiles to cover many tile pairs cheaply).
    public static func gram<E: Error>(
        rowCount: Int, width: Int, superRows: Int, tileRows: Int = rowTile, multiplyAdds: inout Int,
        workspace: Workspace = Workspace(), load: (Range<Int>) throws(E) -> [Float]
    ) throws(E) -> [Double] {
        try gram(
            rowCount: rowCount, width: width, superRows: superRows, tileRows: tileRows, multiplyAdds: &multiplyAdds,
            workspace: workspace
        ) { (range) throws(E) -> RowBlock in RowBlock(values: try load(range)) }
    }

    /// The Gram of all `rowCount` rows held in memory (every row, or, with `places`, the rows that
    /// are not zero: what the probe keeps of an MoE expert's rows). Loaded as one block, so `load`
    /// is only ever asked for the whole range.
    public static func gram(
        rowCount: Int, width: Int, rows: RowBlock, multiplyAdds: inout Int, workspace: Workspace = Workspace()
    ) -> [Double] {
        gram(rowCount: rowCount, width: width, superRows: rowCount, multiplyAdds: &multiplyAdds, workspace: workspace) {
            (_: Range<Int>) -> RowBlock in rows
        }
    }

    /// The Gram of rows handed over as ``RowBlock``s.
    public static func gram<E: Error>(
        rowCount: Int, width: Int, superRows: Int, tileRows: Int = rowTile, multiplyAdds: inout Int,
        workspace: Workspace = Workspace(), load: (Range<Int>) throws(E) -> RowBlock
    ) throws(E) -> [Double] {
        let n = rowCount
        guard n > 0, width > 0 else { return [Double](repeating: 0, count: n * n) }
        let step = max(tileRows, (superRows + tileRows - 1) / tileRows * tileRows)
        let supers = stride(from: 0, to: n, by: step).map { $0..<min($0 + step, n) }
        // Each lane accumulates into its own partial (taken out of the workspace, so uniquely held).
        var partials = workspace.partials
        var packs = workspace.packs
        workspace.partials = []
        workspace.packs = []
        defer {
            workspace.partials = partials
            workspace.packs = packs
        }
        if partials.count < lanes * n * n {
            partials = [Double](repeating: 0, count: lanes * n * n)
        } else {
            partials.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 0, count: lanes * n * n) }
        }
        if packs.count < lanes { packs = [(PackedBlock, PackedBlock)](repeating: (PackedBlock(), PackedBlock()), count: lanes) }
        var laneWork = [Int](repeating: 0, count: lanes)
        let path = workspace.path
        for (i, rowsA) in supers.enumerated() {
            let a = try load(rowsA)
            check(a, rows: rowsA, width: width)
            for rowsB in supers[i...] {
                let same = rowsB == rowsA
                let b: RowBlock
                if same {
                    b = a
                } else {
                    b = try load(rowsB)
                    check(b, rows: rowsB, width: width)
                }
                partials.withUnsafeMutableBufferPointer { targets in
                    packs.withUnsafeMutableBufferPointer { packs in
                        laneWork.withUnsafeMutableBufferPointer { work in
                            let (targets, packs, work) = (UncheckedSendable(targets), UncheckedSendable(packs), UncheckedSendable(work))
                            do {
                                forEachLane(lanes) { lane in
                                    let gram = targets.value.baseAddress! + lane * n * n
                                    var sums = TileSums()
                                    for c0 in stride(from: 0, to: width, by: columnBlock) {
                                        let block = c0..<min(c0 + columnBlock, width)
                                        let columns = laneColumns(of: block, lane: lane)
                                        guard !columns.isEmpty else { continue }
                                        packs.value[lane].0.pack(
                                            a, rows: rowsA, width: width, columns: columns, tileRows: tileRows, path: path)
                                        if !same {
                                            packs.value[lane].1.pack(
                                                b, rows: rowsB, width: width, columns: columns, tileRows: tileRows, path: path)
                                        }
                                        let (first, second) = packs.value[lane]
                                        work.value[lane] += multiplyTiles(
                                            first, same ? first : second, k: columns.count, gram: gram, n: n,
                                            sums: &sums, path: path)
                                    }
                                    sums.add(into: gram, n: n)
                                }
                            }
                        }
                    }
                }
            }
        }
        multiplyAdds += laneWork.reduce(0, +)
        // G = Σ partials in lane order, upper triangle, then mirrored tile by tile (a row-by-row
        // mirror reads a column per row, one cache line per value).
        return [Double](unsafeUninitializedCapacity: n * n) { gram, count in
            partials.withUnsafeBufferPointer { p in
                for r in 0..<n {
                    for c in r..<n {
                        var sum = p[r * n + c]
                        for l in 1..<lanes { sum += p[l * n * n + r * n + c] }
                        gram[r * n + c] = sum
                    }
                }
            }
            let tile = 32
            for r0 in stride(from: 0, to: n, by: tile) {
                for c0 in stride(from: 0, to: r0 + 1, by: tile) {
                    for r in r0..<min(r0 + tile, n) {
                        for c in c0..<min(c0 + tile, r) { gram[r * n + c] = gram[c * n + r] }
                    }
                }
            }
            count = n * n
        }
    }

    private static func check(_ block: RowBlock, rows: Range<Int>, width: Int) {
        let present = block.places.map { places in places.count { $0 >= 0 } } ?? rows.count
        precondition(
            block.places.map { $0.count == rows.count } ?? true && block.values.count >= present * width,
            "GramAccumulator: load returned \(block.values.count) values and \(block.places?.count ?? rows.count) places for rows \(rows)")
    }

    /// Lane `lane`'s share of a column block: the `lane`-th of ``lanes`` equal ranges.
    static func laneColumns(of block: Range<Int>, lane: Int) -> Range<Int> {
        let k = block.count
        return (block.lowerBound + k * lane / lanes)..<(block.lowerBound + k * (lane + 1) / lanes)
    }

    /// One column range of a range of rows in Double, tile by tile, each tile holding only its rows
    /// that are not all zero in this range (`rows`, global indices, ascending), packed in panels of
    /// `TI_GRAM_PANEL` rows for the kernels (`CGramKernel`) from `values[offset · k...]`. `index` is
    /// the tile's global number, `⌊row/tileRows⌋`.
    struct PackedBlock {
        struct Tile {
            var index: Int
            /// The rows kept in this block (not zero in it), ascending.
            var rows: [Int]
            /// Where the tile's first panel starts, in rows (a multiple of the panel height).
            var offset: Int
            /// The tile's rows present in the source (every row but those known to be zero), the
            /// same in every column block; and, per kept row, its place among them.
            var present: [Int] = []
            var places: [Int] = []
            /// No row of the tile was left out as zero: `rows` is the tile's whole contiguous range.
            var complete = false
            /// Every row present was kept: `rows == present`.
            var allPresentKept: Bool { rows.count == present.count }
            /// No row of the tile is known to be zero: `present` is the tile's whole contiguous range.
            var allPresent = false
        }
        var values: [Double] = []
        var tiles: [Tile] = []

        /// Packs rows `rows` of `source`, columns `columns`.
        mutating func pack(
            _ source: [Float], rows: Range<Int>, width: Int, columns: Range<Int>,
            tileRows: Int = GramAccumulator.rowTile, path: TIGramPath = GramAccumulator.kernelPath
        ) {
            pack(RowBlock(values: source), rows: rows, width: width, columns: columns, tileRows: tileRows, path: path)
        }

        /// Packs rows `rows` of `source` (rows known to be zero are skipped unread), columns `columns`.
        mutating func pack(
            _ block: RowBlock, rows: Range<Int>, width: Int, columns: Range<Int>,
            tileRows: Int = GramAccumulator.rowTile, path: TIGramPath = GramAccumulator.kernelPath
        ) {
            let places = block.places
            let k = columns.count
            let tileCount = (rows.count + tileRows - 1) / tileRows
            // Each tile's last panel may be partly padding.
            let capacity = (rows.count + tileCount * GramAccumulator.panelRows) * k
            if values.count < capacity { values = [Double](repeating: 0, count: capacity) }
            tiles.removeAll(keepingCapacity: true)
            var used = 0
            block.values.withUnsafeBufferPointer { src in
                values.withUnsafeMutableBufferPointer { dst in
                    for t0 in stride(from: rows.lowerBound, to: rows.upperBound, by: tileRows) {
                        var tile = Tile(index: t0 / tileRows, rows: [], offset: used)
                        let end = min(t0 + tileRows, rows.upperBound)
                        // The tile's rows present in `source`, and where each lies.
                        var candidates: [Int] = []
                        var offsets: [Int] = []
                        for r in t0..<end {
                            let place = places?[r - rows.lowerBound] ?? (r - rows.lowerBound)
                            guard place >= 0 else { continue }
                            candidates.append(r)
                            offsets.append(place)
                        }
                        // Only the rows with a value that is not zero are kept (±0 add nothing to
                        // any dot product).
                        var kept = [Int32](repeating: 0, count: candidates.count)
                        let count = ti_gram_pack_rows(
                            path, src.baseAddress! + columns.lowerBound, width, offsets,
                            Int32(candidates.count), Int32(k), dst.baseAddress! + used * k, &kept)
                        tile.places = kept[0..<Int(count)].map { Int($0) }
                        tile.rows = tile.places.map { candidates[$0] }
                        tile.present = candidates
                        used += GramAccumulator.panels(tile.rows.count) * GramAccumulator.panelRows
                        tile.complete = tile.rows.count == end - t0
                        tile.allPresent = candidates.count == end - t0
                        tiles.append(tile)
                    }
                }
            }
        }
    }

    /// Rows per packed panel (`TI_GRAM_PANEL`).
    static let panelRows = Int(TI_GRAM_PANEL)
    static func panels(_ rows: Int) -> Int { (rows + panelRows - 1) / panelRows }

    /// The kernels' instruction set: the fastest this CPU runs. Every path gives the same bits.
    static let kernelPath = ti_gram_best_path()

    /// The sums of the tile pairs whose rows are not every row of their tiles (an MoE expert's,
    /// some rows known to be zero), one compact block per pair over the rows present, kept across
    /// column blocks and added into the Gram once (``add(into:n:)``) instead of scattered entry by
    /// entry after every block. Each entry still gets its blocks' sums in column order, from 0, and
    /// lands on an entry that no other block pair touches (still 0), so the bits are those of adding
    /// every block's sum into the Gram itself.
    struct TileSums {
        /// One pair's block: rows present of tile `I` × rows present of tile `J`, zeros at first.
        final class Pair {
            let rowsA: [Int]
            let rowsB: [Int]
            let diagonal: Bool
            let sums: UnsafeMutablePointer<Double>

            init(rowsA: [Int], rowsB: [Int], diagonal: Bool) {
                (self.rowsA, self.rowsB, self.diagonal) = (rowsA, rowsB, diagonal)
                sums = .allocate(capacity: rowsA.count * rowsB.count)
                sums.initialize(repeating: 0, count: rowsA.count * rowsB.count)
            }

            deinit { sums.deallocate() }
        }
        var pairs: [Int: Pair] = [:]

        /// The block of tiles `a`, `b`, made on first use.
        mutating func pair(_ a: PackedBlock.Tile, _ b: PackedBlock.Tile) -> UnsafeMutablePointer<Double> {
            let key = a.index << 32 | b.index
            if let pair = pairs[key] { return pair.sums }
            let pair = Pair(rowsA: a.present, rowsB: b.present, diagonal: a.index == b.index)
            pairs[key] = pair
            return pair.sums
        }

        /// Adds every pair's sums into its Gram entries (a diagonal pair: its upper triangle).
        func add(into gram: UnsafeMutablePointer<Double>, n: Int) {
            for pair in pairs.values {
                let width = pair.rowsB.count
                for (i, ra) in pair.rowsA.enumerated() {
                    let row = gram + ra * n
                    for j in (pair.diagonal ? i : 0)..<width { row[pair.rowsB[j]] += pair.sums[i * width + j] }
                }
            }
        }
    }

    /// Adds `A_I·B_Jᵀ` into `gram` for every tile pair `I` of `a`, `J` of `b` with `J ≥ I` (the upper
    /// triangle, tile by tile), skipping pairs with an empty side; returns the multiply-adds the
    /// Gram needs for them (the kernels' own padding to whole panels is not counted).
    ///
    /// A pair of tiles with every row present adds into `gram`; any other pair adds into its block
    /// of `sums`, which the caller adds into `gram` after the last column block (without `sums`,
    /// at the end of this call).
    ///
    /// A diagonal pair (`I = J`, the same packed tile) adds only its upper triangle, half a
    /// rectangle's multiply-adds; `gram` mirrors the upper triangle at the end.
    @discardableResult
    static func multiplyTiles(
        _ a: PackedBlock, _ b: PackedBlock, k: Int, gram: UnsafeMutablePointer<Double>, n: Int,
        path: TIGramPath = kernelPath
    ) -> Int {
        var sums = TileSums()
        defer { sums.add(into: gram, n: n) }
        return multiplyTiles(a, b, k: k, gram: gram, n: n, sums: &sums, path: path)
    }

    static func multiplyTiles(
        _ a: PackedBlock, _ b: PackedBlock, k: Int, gram: UnsafeMutablePointer<Double>, n: Int, sums: inout TileSums,
        path: TIGramPath = kernelPath
    ) -> Int {
        var multiplyAdds = 0
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                for tileA in a.tiles where !tileA.rows.isEmpty {
                    for tileB in b.tiles where !tileB.rows.isEmpty && tileB.index >= tileA.index {
                        let m = tileA.rows.count
                        let cols = tileB.rows.count
                        let rowsA = pa.baseAddress! + tileA.offset * k
                        let rowsB = pb.baseAddress! + tileB.offset * k
                        let diagonal = tileA.index == tileB.index  // the same tile of the same rows
                        multiplyAdds += diagonal ? m * (m + 1) / 2 * k : m * cols * k
                        // Where the pair's entries are added: the Gram itself when both tiles have
                        // every row (their rows present are then contiguous), else the pair's block
                        // of `sums`. Either way a kept row's index there is its place among the
                        // rows present.
                        let (target, stride) =
                            tileA.allPresent && tileB.allPresent
                            ? (gram + tileA.present[0] * n + tileB.present[0], n)
                            : (sums.pair(tileA, tileB), tileB.present.count)
                        let (placeA, placeB) = (tileA.places, tileB.places)
                        if tileA.allPresentKept && tileB.allPresentKept {
                            // Every row of both blocks is there: the kernel adds into it, no product to
                            // scatter.
                            if diagonal {
                                ti_gram_syrk(path, Int32(m), Int32(k), rowsA, target, stride)
                            } else {
                                ti_gram_gemm(path, Int32(m), Int32(cols), Int32(k), rowsA, rowsB, target, stride)
                            }
                            continue
                        }
                        let product = UnsafeMutablePointer<Double>.allocate(capacity: m * cols)
                        defer { product.deallocate() }
                        product.initialize(repeating: 0, count: m * cols)
                        if diagonal {
                            ti_gram_syrk(path, Int32(m), Int32(k), rowsA, product, m)
                            for i in 0..<m {
                                let row = target + placeA[i] * stride
                                for j in i..<m { row[placeA[j]] += product[i * m + j] }
                            }
                        } else {
                            ti_gram_gemm(path, Int32(m), Int32(cols), Int32(k), rowsA, rowsB, product, cols)
                            for i in 0..<m {
                                let row = target + placeA[i] * stride
                                for j in 0..<cols { row[placeB[j]] += product[i * cols + j] }
                            }
                        }
                    }
                }
            }
        }
        return multiplyAdds
    }
}

import CBLAS
import Kernels

/// `G = R·Rᵀ` of `R` gradient rows of width `P`, in Float64, with a fixed tiling so that the result
/// is bit for bit the same whether the rows come from memory or from disk, and however many rows
/// are loaded at a time.
///
/// **Precision (why Float64).** Rows are Float32 (what backward produces). Each block of
/// ``columnBlock`` columns is converted to Double (exactly) and multiplied with `cblas_dgemm`, and
/// the blocks are accumulated in Double: every product is exact and the sums carry ~1e-16 relative
/// error, far inside the 1e-6 the metric needs. A Float32 `sgemm` would lose ~√P·6e-8 ≈ 2e-5 on
/// P = 147k and more on cancelling cross-task entries. The price is Double's half-speed GEMM plus
/// one conversion per element and tile row, small next to forward and backward.
///
/// **Zero rows are skipped.** An MoE expert's gradient is exactly zero for every mini-batch that
/// routed nothing to it, and on the demo's attribute-routed model three quarters of the experts'
/// Gram work was such rows. Each tile's rows are packed per column block without the rows that are
/// zero there; a tile pair multiplies only what is left (nothing when either side is empty) and
/// adds the product into its Gram entries. A skipped row's entries are exactly 0 — what multiplying
/// it would add, since rows are finite (the probe refuses or zeroes non-finite ones).
///
/// **Determinism.** Entry `(a, b)` with `a ≤ b` is produced by the dgemm calls of the tile pair
/// `(⌊a/rowTile⌋, ⌊b/rowTile⌋)`, one per column block, in column order; each call's shape and
/// operands depend only on the rows of those two tiles in that block, never on how rows were loaded.
/// Loading more or fewer rows at once (``superRows``) only changes which tile pairs are visited
/// together, never an entry's arithmetic. The lower triangle is the mirror of the upper, so `G` is
/// exactly symmetric. This is what makes merged shards equal an unsharded run bit for bit (same
/// rows, same arithmetic).
///
/// **Threads.** OpenBLAS's result for one call can depend on its thread count (observed on partial
/// tiles), so every call runs single-threaded (`BLASThreads.singleThreaded`) and the tile pairs of a
/// column block run concurrently instead (`forEachLane`), each writing its own entries.
public enum GramAccumulator {
    /// Rows per tile (the largest `m`, `n` of a dgemm call).
    public static let rowTile = 64
    /// Columns per block (the `k` of every dgemm call).
    public static let columnBlock = 4096

    /// Rows that can be loaded at once within `budget` bytes: two blocks of `rows × width` Float32
    /// plus their Double conversions, a multiple of ``rowTile``, at least one tile.
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
        let n = rowCount
        var gram = [Double](repeating: 0, count: n * n)
        guard n > 0, width > 0 else { return gram }
        let step = max(rowTile, (superRows + rowTile - 1) / rowTile * rowTile)
        let supers = stride(from: 0, to: n, by: step).map { $0..<min($0 + step, n) }
        var first = PackedBlock()
        var second = PackedBlock()
        for (i, rowsA) in supers.enumerated() {
            let a = try load(rowsA)
            precondition(a.count == rowsA.count * width, "GramAccumulator: load returned \(a.count) values")
            for rowsB in supers[i...] {
                let b: [Float]
                if rowsB == rowsA {
                    b = a
                } else {
                    b = try load(rowsB)
                    precondition(b.count == rowsB.count * width, "GramAccumulator: load returned \(b.count) values")
                }
                for c0 in stride(from: 0, to: width, by: columnBlock) {
                    let columns = c0..<min(c0 + columnBlock, width)
                    first.pack(a, rows: rowsA, width: width, columns: columns)
                    let same = rowsB == rowsA
                    if !same { second.pack(b, rows: rowsB, width: width, columns: columns) }
                    multiplyTiles(first, same ? first : second, k: columns.count, gram: &gram, n: n)
                }
            }
        }
        for r in 0..<n {
            for c in 0..<r { gram[r * n + c] = gram[c * n + r] }
        }
        return gram
    }

    /// One column block of a range of rows in Double, tile by tile, each tile holding only its rows
    /// that are not all zero in this block (`rows`, global indices, ascending; their values
    /// `[rows.count, k]` from `values[offset...]`). `index` is the tile's global number, `⌊row/rowTile⌋`.
    struct PackedBlock {
        struct Tile {
            var index: Int
            var rows: [Int]
            var offset: Int
        }
        var values: [Double] = []
        var tiles: [Tile] = []

        /// Packs rows `rows` of `source` (`rows.count × width` Floats), columns `columns`.
        mutating func pack(_ source: [Float], rows: Range<Int>, width: Int, columns: Range<Int>) {
            let k = columns.count
            if values.count < rows.count * k { values = [Double](repeating: 0, count: rows.count * k) }
            tiles.removeAll(keepingCapacity: true)
            var used = 0
            source.withUnsafeBufferPointer { src in
                values.withUnsafeMutableBufferPointer { dst in
                    for t0 in stride(from: rows.lowerBound, to: rows.upperBound, by: GramAccumulator.rowTile) {
                        var tile = Tile(index: t0 / GramAccumulator.rowTile, rows: [], offset: used)
                        for r in t0..<min(t0 + GramAccumulator.rowTile, rows.upperBound) {
                            let s = src.baseAddress! + (r - rows.lowerBound) * width + columns.lowerBound
                            guard (0..<k).contains(where: { s[$0] != 0 }) else { continue }
                            let d = dst.baseAddress! + used * k
                            for j in 0..<k { d[j] = Double(s[j]) }
                            tile.rows.append(r)
                            used += 1
                        }
                        tiles.append(tile)
                    }
                }
            }
        }
    }

    /// Adds `A_I·B_Jᵀ` into `gram` for every tile pair `I` of `a`, `J` of `b` with `J ≥ I` (the upper
    /// triangle, tile by tile), skipping pairs with an empty side.
    static func multiplyTiles(_ a: PackedBlock, _ b: PackedBlock, k: Int, gram: inout [Double], n: Int) {
        var pairs: [(PackedBlock.Tile, PackedBlock.Tile)] = []
        for tileA in a.tiles where !tileA.rows.isEmpty {
            for tileB in b.tiles where !tileB.rows.isEmpty && tileB.index >= tileA.index {
                pairs.append((tileA, tileB))
            }
        }
        guard !pairs.isEmpty else { return }  // every row of one side is zero in this block
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                gram.withUnsafeMutableBufferPointer { pg in
                    // Tile pairs write disjoint entries of the Gram: they run concurrently, each call
                    // single-threaded, so no call's arithmetic depends on the thread count.
                    BLASThreads.singleThreaded {
                        forEachLane(pairs.count) { p in
                            let (tileA, tileB) = pairs[p]
                            let m = tileA.rows.count
                            let cols = tileB.rows.count
                            let product = UnsafeMutablePointer<Double>.allocate(capacity: m * cols)
                            defer { product.deallocate() }
                            cblas_dgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(cols), Int32(k), 1,
                                pa.baseAddress! + tileA.offset * k, Int32(k), pb.baseAddress! + tileB.offset * k,
                                Int32(k), 0, product, Int32(cols))
                            for (i, ra) in tileA.rows.enumerated() {
                                let row = pg.baseAddress! + ra * n
                                for (j, rb) in tileB.rows.enumerated() { row[rb] += product[i * cols + j] }
                            }
                        }
                    }
                }
            }
        }
    }
}

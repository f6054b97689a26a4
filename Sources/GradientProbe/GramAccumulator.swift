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
/// **Determinism.** Entry `(a, b)` with `a ≤ b` is produced by the dgemm calls of the tile pair
/// `(⌊a/rowTile⌋, ⌊b/rowTile⌋)`, one per column block, in column order, each call with the same
/// shape and operands on every path. Loading more or fewer rows at once (``superRows``) only changes
/// which tile pairs are visited together, never an entry's arithmetic. The lower triangle is the
/// mirror of the upper, so `G` is exactly symmetric. This is what makes merged shards equal an
/// unsharded run bit for bit (same rows, same arithmetic).
///
/// **Threads.** OpenBLAS's result for one call can depend on its thread count (observed on partial
/// tiles), so every call runs single-threaded (`BLASThreads.singleThreaded`) and the tile pairs of a
/// column block run concurrently instead (`forEachLane`), each writing its own block.
public enum GramAccumulator {
    /// Rows per tile (the `m`, `n` of every dgemm call).
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
        var first = [Double]()
        var second = [Double]()
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
                    let k = min(columnBlock, width - c0)
                    convert(a, rows: rowsA.count, width: width, columns: c0..<(c0 + k), into: &first)
                    let same = rowsB == rowsA
                    if !same {
                        convert(b, rows: rowsB.count, width: width, columns: c0..<(c0 + k), into: &second)
                    }
                    multiplyTiles(
                        first, rowsA, same ? first : second, rowsB, k: k, gram: &gram, n: n)
                }
            }
        }
        for r in 0..<n {
            for c in 0..<r { gram[r * n + c] = gram[c * n + r] }
        }
        return gram
    }

    /// Rows `rows` of `values`, columns `columns`, as Double `[rows · columns.count]`.
    static func convert(
        _ values: [Float], rows: Int, width: Int, columns: Range<Int>, into out: inout [Double]
    ) {
        let k = columns.count
        if out.count != rows * k { out = [Double](repeating: 0, count: rows * k) }
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    let s = src.baseAddress! + r * width + columns.lowerBound
                    let d = dst.baseAddress! + r * k
                    for j in 0..<k { d[j] = Double(s[j]) }
                }
            }
        }
    }

    /// Adds `A_I·B_Jᵀ` into `gram` for every tile pair `I ⊂ rowsA`, `J ⊂ rowsB` with
    /// `J.lowerBound ≥ I.lowerBound` (the upper triangle, tile by tile).
    static func multiplyTiles(
        _ a: [Double], _ rowsA: Range<Int>, _ b: [Double], _ rowsB: Range<Int>, k: Int,
        gram: inout [Double], n: Int
    ) {
        var pairs: [(i0: Int, j0: Int)] = []
        for i0 in stride(from: rowsA.lowerBound, to: rowsA.upperBound, by: rowTile) {
            for j0 in stride(from: rowsB.lowerBound, to: rowsB.upperBound, by: rowTile) where j0 >= i0 {
                pairs.append((i0, j0))
            }
        }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                gram.withUnsafeMutableBufferPointer { pg in
                    // Tile pairs write disjoint blocks of the Gram: they run concurrently, each call
                    // single-threaded, so no call's arithmetic depends on the thread count.
                    BLASThreads.singleThreaded {
                        forEachLane(pairs.count) { p in
                            let (i0, j0) = pairs[p]
                            let m = min(rowTile, rowsA.upperBound - i0)
                            let cols = min(rowTile, rowsB.upperBound - j0)
                            cblas_dgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(cols),
                                Int32(k), 1, pa.baseAddress! + (i0 - rowsA.lowerBound) * k, Int32(k),
                                pb.baseAddress! + (j0 - rowsB.lowerBound) * k, Int32(k), 1,
                                pg.baseAddress! + i0 * n + j0, Int32(n))
                        }
                    }
                }
            }
        }
    }
}

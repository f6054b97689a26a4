import CLinearKernel
import Kernels
import TestSupport
import Testing

/// `CLinearKernel`, the unpacked AVX-512 forward and input-gradient products behind `linearForward`
/// and `linearInputGradient` (`LinearKernel.unpacked`): against the naive twins on odd shapes, and
/// the property the lanes rely on, that splitting a product's rows or columns leaves its bits alone.
/// Runs only on CPUs with AVX-512F; elsewhere the model uses BLAS, which `GEMMTests` covers.
@Suite("Unpacked linear kernels", .enabled(if: LinearKernel.unpackedAvailable, "needs AVX-512F"))
struct LinearKernelTests {
    /// rows, in, out: one row and a tile's 12, tile edges (13, 34), k tails past 16, column blocks
    /// past 32, and the model's own shapes.
    static let shapes: [(rows: Int, inFeatures: Int, outFeatures: Int)] = [
        (1, 1, 1), (5, 3, 7), (12, 16, 32), (13, 17, 33), (34, 64, 70), (7, 33, 1), (83, 64, 256), (29, 256, 64),
    ]

    @Test("forward and input gradient against the naive twins", arguments: shapes.indices, [false, true])
    func againstNaive(_ index: Int, withBias: Bool) {
        let (N, I, O) = Self.shapes[index]
        var rng = SeededRNG(seed: UInt64(100 * index + (withBias ? 1 : 0)))
        let x = rng.uniformFloats(count: N * I)
        let w = rng.uniformFloats(count: O * I)
        let b = rng.uniformFloats(count: O)
        let dY = rng.uniformFloats(count: N * O)
        let start = rng.uniformFloats(count: N * I)

        // The forward overwrites: NaN where it should write shows any read of the output.
        var fast = [Float](repeating: .nan, count: N * O)
        var naive = fast
        b.withUnsafeBufferPointer { bias in
            ti_gemm_nt(
                Int32(N), Int32(O), Int32(I), x, Int32(I), w, Int32(I), withBias ? bias.baseAddress : nil, &fast,
                Int32(O), 0)
        }
        linearForwardNaive(output: &naive, input: x, weight: w, bias: withBias ? b : nil, rows: N, inFeatures: I, outFeatures: O)
        expectClose(fast, naive, tolerance: .fastVersusNaive(reduction: I), "forward \(N)×\(I)→\(O), bias \(withBias)")

        // The input gradient accumulates onto what is there.
        var dX = start
        ti_gemm_nn(Int32(N), Int32(I), Int32(O), dY, Int32(O), w, Int32(I), &dX, Int32(I), 1)
        var dXNaive = [Float](repeating: 0, count: N * I)
        var dWNaive = [Float](repeating: 0, count: O * I)
        linearBackwardNaive(
            dInput: &dXNaive, dWeight: &dWNaive, dBias: nil, dOutput: dY, input: x, weight: w, rows: N, inFeatures: I,
            outFeatures: O)
        expectClose(dX, zip(start, dXNaive).map { $0 + $1 }, tolerance: .fastVersusNaive(reduction: O), "dX \(N)×\(I)→\(O)")
    }

    /// Lanes give each lane some rows, and threads outside lanes give each thread some columns
    /// (`splitColumns`): every piece must come out as the whole product's, bit for bit, or the laned
    /// model would differ from one lane (`LaneTests`).
    @Test("rows or columns split anywhere give the whole product's bits")
    func splitsKeepBits() {
        let (N, I, O) = (83, 70, 100)
        var rng = SeededRNG(seed: 7)
        let x = rng.uniformFloats(count: N * I)
        let w = rng.uniformFloats(count: O * I)
        let b = rng.uniformFloats(count: O)
        let dY = rng.uniformFloats(count: N * O)
        let start = rng.uniformFloats(count: N * I)

        var whole = [Float](repeating: 0, count: N * O)
        ti_gemm_nt(Int32(N), Int32(O), Int32(I), x, Int32(I), w, Int32(I), b, &whole, Int32(O), 0)
        var wholeDX = start
        ti_gemm_nn(Int32(N), Int32(I), Int32(O), dY, Int32(O), w, Int32(I), &wholeDX, Int32(I), 1)

        for cut in [1, 13, 45, 64] {
            // Columns [0, cut) and [cut, end) in two calls; then rows likewise.
            var columns = [Float](repeating: 0, count: N * O)
            var rows = columns
            let c = min(cut, O - 1)
            columns.withUnsafeMutableBufferPointer { out in
                for range in [0..<c, c..<O] {
                    ti_gemm_nt(
                        Int32(N), Int32(range.count), Int32(I), x, Int32(I), w.withUnsafeBufferPointer { $0.baseAddress! } + range.lowerBound * I,
                        Int32(I), b.withUnsafeBufferPointer { $0.baseAddress! } + range.lowerBound, out.baseAddress! + range.lowerBound,
                        Int32(O), 0)
                }
            }
            let r = min(cut, N - 1)
            rows.withUnsafeMutableBufferPointer { out in
                for range in [0..<r, r..<N] {
                    ti_gemm_nt(
                        Int32(range.count), Int32(O), Int32(I), x.withUnsafeBufferPointer { $0.baseAddress! } + range.lowerBound * I,
                        Int32(I), w, Int32(I), b, out.baseAddress! + range.lowerBound * O, Int32(O), 0)
                }
            }
            #expect(columns == whole, "forward, columns cut at \(c)")
            #expect(rows == whole, "forward, rows cut at \(r)")

            var columnsDX = start
            let ci = min(cut, I - 1)
            columnsDX.withUnsafeMutableBufferPointer { out in
                for range in [0..<ci, ci..<I] {
                    ti_gemm_nn(
                        Int32(N), Int32(range.count), Int32(O), dY, Int32(O), w.withUnsafeBufferPointer { $0.baseAddress! } + range.lowerBound,
                        Int32(I), out.baseAddress! + range.lowerBound, Int32(I), 1)
                }
            }
            var rowsDX = start
            rowsDX.withUnsafeMutableBufferPointer { out in
                for range in [0..<r, r..<N] {
                    ti_gemm_nn(
                        Int32(range.count), Int32(I), Int32(O), dY.withUnsafeBufferPointer { $0.baseAddress! } + range.lowerBound * O,
                        Int32(O), w, Int32(I), out.baseAddress! + range.lowerBound * I, Int32(I), 1)
                }
            }
            #expect(columnsDX == wholeDX, "dX, columns cut at \(ci)")
            #expect(rowsDX == wholeDX, "dX, rows cut at \(r)")
        }
    }

    /// `linearForward` and `linearInputGradient` with `.unpacked` must run these kernels, whether they
    /// split the product across BLAS's threads (outside lanes) or not (inside one): both give the
    /// bits of one direct kernel call, which BLAS, summing in another order, does not.
    @Test("the unpacked linears run the kernels, split across threads or inside a lane")
    func linearsRunTheKernels() {
        let (N, I, O) = (83, 256, 768)  // 33 MFLOP: large enough to split
        var rng = SeededRNG(seed: 11)
        let x = rng.uniformFloats(count: N * I)
        let w = rng.uniformFloats(count: O * I)
        let b = rng.uniformFloats(count: O)
        let dY = rng.uniformFloats(count: N * O)
        var direct = [Float](repeating: 0, count: N * O)
        var directDX = [Float](repeating: 0, count: N * I)
        ti_gemm_nt(Int32(N), Int32(O), Int32(I), x, Int32(I), w, Int32(I), b, &direct, Int32(O), 0)
        ti_gemm_nn(Int32(N), Int32(I), Int32(O), dY, Int32(O), w, Int32(I), &directDX, Int32(I), 1)

        func run(_ kernel: LinearKernel) -> (y: [Float], dX: [Float]) {
            var y = [Float](repeating: 0, count: N * O)
            var dX = [Float](repeating: 0, count: N * I)
            linearForward(output: &y, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O, kernel: kernel)
            linearInputGradient(dInput: &dX, dOutput: dY, weight: w, rows: N, inFeatures: I, outFeatures: O, kernel: kernel)
            return (y, dX)
        }
        let outside = run(.unpacked)
        let inside = BLASThreads.singleThreaded { run(.unpacked) }
        let blas = run(.blas)
        #expect(outside.y == direct && outside.dX == directDX, "split across threads")
        #expect(inside.y == direct && inside.dX == directDX, "inside a lane")
        #expect(blas.y != direct || blas.dX != directDX, "BLAS gave the kernels' bits: this test cannot tell them apart")
        expectClose(blas.y, direct, tolerance: .fastVersusNaive(reduction: I), "BLAS forward")
    }

    /// The dispatched experts' lanes (`ExpertLinear`) each compute a share of the columns
    /// (`laneColumns`) through the `columns:` variants; the shares must tile the product and give its
    /// bits (on the unpacked kernels; within rounding on BLAS), the input gradient overwritten or
    /// accumulated as asked.
    @Test("column shares of the linears give the whole product's bits", arguments: [1, 2, 3])
    func columnShares(lanes: Int) {
        for (N, I, O) in [(34, 128, 512), (35, 512, 128), (9, 16, 64), (5, 33, 70)] {
            var rng = SeededRNG(seed: UInt64(N * lanes))
            let x = rng.uniformFloats(count: N * I)
            let w = rng.uniformFloats(count: O * I)
            let b = rng.uniformFloats(count: O)
            let dY = rng.uniformFloats(count: N * O)
            let start = rng.uniformFloats(count: N * I)
            for (n, name) in [(O, "outputs"), (I, "inputs")] {
                let shares = (0..<lanes).map { laneColumns(n, lane: $0, of: lanes) }
                #expect(shares.first?.lowerBound == 0 && shares.last?.upperBound == n, "\(name) \(n): \(shares)")
                #expect(zip(shares, shares.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "\(shares)")
                #expect(shares.dropLast().allSatisfy { $0.upperBound % 32 == 0 }, "\(shares)")
            }
            var whole = [Float](repeating: 0, count: N * O)
            linearForward(output: &whole, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O)
            var shared = [Float](repeating: .nan, count: N * O)
            for lane in 0..<lanes {
                linearForward(
                    output: &shared, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O,
                    columns: laneColumns(O, lane: lane, of: lanes))
            }
            // The unpacked kernels give the whole product's bits; on BLAS a share can round
            // differently (OpenBLAS picks its small-matrix kernel by a product's size), so there the
            // shares are held to rounding: a lost or doubled share is off by O(1).
            let bitExact = LinearKernel.active == .unpacked
            if bitExact {
                #expect(shared == whole, "forward \(N)×\(I)→\(O), \(lanes) lanes")
            } else {
                expectClose(shared, whole, tolerance: .fastVersusNaive(reduction: I), "BLAS forward \(N)×\(I)→\(O), \(lanes) lanes")
            }
            for accumulate in [false, true] {
                var wholeDX = accumulate ? start : [Float](repeating: 0, count: N * I)
                linearInputGradient(dInput: &wholeDX, dOutput: dY, weight: w, rows: N, inFeatures: I, outFeatures: O)
                var sharedDX = accumulate ? start : [Float](repeating: .nan, count: N * I)
                for lane in 0..<lanes {
                    linearInputGradient(
                        dInput: &sharedDX, dOutput: dY, weight: w, rows: N, inFeatures: I, outFeatures: O,
                        columns: laneColumns(I, lane: lane, of: lanes), accumulate: accumulate)
                }
                if bitExact {
                    #expect(sharedDX == wholeDX, "dX \(N)×\(O)→\(I), \(lanes) lanes, accumulate \(accumulate)")
                } else {
                    expectClose(sharedDX, wholeDX, tolerance: .fastVersusNaive(reduction: O), "BLAS dX \(N)×\(O)→\(I), \(lanes) lanes, accumulate \(accumulate)")
                }
            }
        }
    }
}

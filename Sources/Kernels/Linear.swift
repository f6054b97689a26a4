import CBLAS
import CLinearKernel
import Foundation

// Dimension letters: N rows (tokens), I input features, O output features.

/// Which code computes a linear's forward and input-gradient products, fixed for the process.
///
/// Why two: OpenBLAS packs the whole weight on every call. The model's products are a few dozen to
/// a few hundred rows against a weight read from memory, one core per lane, and there the packing
/// took 42 % of OpenBLAS's kernel time (configuration (c) of `make bench`, `reports/benchmarks.md`,
/// "Stop 38"). `CLinearKernel` reads the weight where it lies, on CPUs with AVX-512F; a step of (c)
/// takes 4–8 % less time. The weight gradient stays on BLAS, which is faster there.
///
/// Either way a product's bits do not depend on how its rows or columns are split, so lanes and
/// threads give the same result as one call (`LinearKernelTests`). They do depend on the CPU: an
/// AVX-512 machine and an AVX2 machine round differently, as two BLAS kernel sets already do.
public enum LinearKernel: String, Sendable {
    /// `CLinearKernel` (AVX-512F).
    case unpacked
    /// `cblas_sgemm`.
    case blas

    /// `unpacked` when the CPU has AVX-512F, unless `TI_LINEAR_KERNEL=blas` (to measure the difference).
    public static let active: LinearKernel = {
        if ProcessInfo.processInfo.environment["TI_LINEAR_KERNEL"] == "blas" { return .blas }
        return unpackedAvailable ? .unpacked : .blas
    }()

    /// Whether this CPU runs `CLinearKernel` at all (whatever `active` says). Asked once: the C
    /// function caches its answer in a plain static, which concurrent first callers would race on.
    public static let unpackedAvailable: Bool = ti_linear_kernel_available()
}

/// Runs `body` over the `columns` of a product of `rows` rows and a reduction over `inner` terms,
/// split into one range per BLAS thread, in lanes; one range inside a lane (where BLAS runs
/// single-threaded) or when the product is too small to wake a core for; nothing when there are no
/// rows. Ranges start at multiples of 32, the kernels' column block.
func splitColumns(_ columns: Int, rows: Int, inner: Int, _ body: (Range<Int>) -> Void) {
    guard rows > 0 else { return }
    let flops = 2 * rows * inner * columns
    let threads = flops >= 1 << 22 ? max(1, min(Int(openblas_get_num_threads()), columns / 32)) : 1
    if threads <= 1 {
        body(0..<columns)
        return
    }
    forEachLane(threads) { t in
        let share = laneColumns(columns, lane: t, of: threads)
        if !share.isEmpty { body(share) }
    }
}

/// `splitColumns` for a weight gradient's output rows, which BLAS computes: one share per BLAS
/// thread, each in a lane of its own on single-threaded BLAS (a product too small to cut: one call,
/// also single-threaded), so that OpenBLAS's own worker is never woken. Once woken, it spins for
/// ≈ 0.1 s after its last job (OpenBLAS's `THREAD_TIMEOUT`), competing for the cores with whichever
/// lanes run next: with it gone the token-routed FFN ÷ dense FFN ratio, measured with the dense
/// FFN's backward just before, fell by 4–27 % in seven alternated pairs (stop 44,
/// `reports/benchmarks.md`). `threads` pins the share count (tests); by default,
/// OpenBLAS's thread count (1 inside a lane).
public func splitOutputs(_ outputs: Int, rows: Int, inner: Int, threads: Int? = nil, _ body: (Range<Int>) -> Void) {
    guard rows > 0 else { return }
    let flops = 2 * rows * inner * outputs
    let available = threads ?? Int(openblas_get_num_threads())
    let threads = flops >= 1 << 22 ? max(1, min(available, outputs / 32)) : 1
    guard threads > 1 else {
        // Too small to cut, and too small for OpenBLAS's threads too, which it would use from 2^18
        // multiply-adds (and then spin).
        BLASThreads.singleThreaded { body(0..<outputs) }
        return
    }
    BLASThreads.singleThreaded {
        forEachLane(threads) { t in
            let share = laneColumns(outputs, lane: t, of: threads)
            if !share.isEmpty { body(share) }
        }
    }
}

/// Linear layer with PyTorch `[out, in]` weights: `Y = X · Wᵀ + b`.
///
/// Shapes: `output [N, O]`, `input [N, I]`, `weight [O, I]`, `bias [O]` (optional).
/// ### References
/// `torch.nn.Linear`.
public func linearForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int, kernel: LinearKernel = .active
) {
    if kernel == .unpacked {
        splitColumns(outFeatures, rows: rows, inner: inFeatures) { columns in
            ti_gemm_nt(
                Int32(rows), Int32(columns.count), Int32(inFeatures), input, Int32(inFeatures),
                weight + columns.lowerBound * inFeatures, Int32(inFeatures), bias.map { $0 + columns.lowerBound },
                output + columns.lowerBound, Int32(outFeatures), 0)
        }
        return
    }
    if let bias {
        // Seed every row with the bias, then accumulate the product on top (beta = 1).
        for r in 0..<rows { (output + r * outFeatures).update(from: bias, count: outFeatures) }
    }
    gemm(
        transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
        a: input, lda: inFeatures, b: weight, ldb: inFeatures,
        beta: bias == nil ? 0 : 1, c: output, ldc: outFeatures)
}

/// The `lane`-th of `lanes` contiguous shares of `0..<columns`, cut at multiples of 32 (the unpacked
/// kernels' column block, so a share's bits equal the whole product's); empty when there are more
/// lanes than blocks.
public func laneColumns(_ columns: Int, lane: Int, of lanes: Int) -> Range<Int> {
    let blocks = (columns + 31) / 32
    return min(columns, blocks * lane / lanes * 32)..<min(columns, blocks * (lane + 1) / lanes * 32)
}

/// `linearForward` for the output features `columns` only, on the calling thread (a lane's share
/// of a product another lane computes the rest of): `Y[:, columns] = X · W[columns, :]ᵀ + b[columns]`.
public func linearForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows: Int, inFeatures: Int, outFeatures: Int, columns: Range<Int>, kernel: LinearKernel = .active
) {
    guard rows > 0, !columns.isEmpty else { return }
    let c0 = columns.lowerBound
    if kernel == .unpacked {
        ti_gemm_nt(
            Int32(rows), Int32(columns.count), Int32(inFeatures), input, Int32(inFeatures),
            weight + c0 * inFeatures, Int32(inFeatures), bias.map { $0 + c0 }, output + c0, Int32(outFeatures), 0)
        return
    }
    if let bias {
        for r in 0..<rows { (output + r * outFeatures + c0).update(from: bias + c0, count: columns.count) }
    }
    gemm(
        transposeA: false, transposeB: true, m: rows, n: columns.count, k: inFeatures,
        a: input, lda: inFeatures, b: weight + c0 * inFeatures, ldb: inFeatures,
        beta: bias == nil ? 0 : 1, c: output + c0, ldc: outFeatures)
}

/// `linearInputGradient` for the input features `columns` only, on the calling thread:
/// `dX[:, columns] (+)= dY · W[:, columns]`, accumulated (`accumulate`) or overwritten.
public func linearInputGradient(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int, columns: Range<Int>, accumulate: Bool,
    kernel: LinearKernel = .active
) {
    guard rows > 0, !columns.isEmpty else { return }
    let c0 = columns.lowerBound
    if kernel == .unpacked {
        ti_gemm_nn(
            Int32(rows), Int32(columns.count), Int32(outFeatures), dOutput, Int32(outFeatures),
            weight + c0, Int32(inFeatures), dInput + c0, Int32(inFeatures), accumulate ? 1 : 0)
        return
    }
    gemm(
        transposeA: false, transposeB: false, m: rows, n: columns.count, k: outFeatures,
        a: dOutput, lda: outFeatures, b: weight + c0, ldb: inFeatures,
        beta: accumulate ? 1 : 0, c: dInput + c0, ldc: inFeatures)
}

/// Backward of `linearForward`; **accumulates**: `dX += dY · W`, `dW += dYᵀ · X`, `db += Σ_rows dY`.
///
/// Shapes as in the forward; `dInput` may be nil when the input needs no gradient, `dWeight` when
/// the caller computes it later with `linearWeightGradient` (the encoder's lanes do).
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
    dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int
) {
    if let dInput {
        linearInputGradient(
            dInput: dInput, dOutput: dOutput, weight: weight, rows: rows, inFeatures: inFeatures,
            outFeatures: outFeatures)
    }
    if let dWeight {
        splitOutputs(outFeatures, rows: rows, inner: inFeatures) { outputs in
            linearWeightGradient(
                dWeight: dWeight, dOutput: dOutput, input: input, rows: rows, inFeatures: inFeatures,
                outFeatures: outFeatures, outputs: outputs, accumulate: true)
        }
    }
    if let dBias {
        for r in 0..<rows {
            let row = dOutput + r * outFeatures
            for o in 0..<outFeatures { dBias[o] += row[o] }
        }
    }
}

/// The input gradient of `linearForward`, **accumulated**: `dX += dY · W`.
///
/// Shapes: `dInput [N, I]`, `dOutput [N, O]`, `weight [O, I]`. Every dense and merged-expert linear's
/// `dX` goes through here, so that one computation gives every path the same bits (one expert equals
/// dense, laned equals one lane). Token and context routing's per-expert `dX` takes the `columns:`
/// variant below, a lane's share of each expert's product (`ExpertLinear.backward`); with the
/// unpacked kernel it overwrites (no zeroed scratch) and ran 25 % faster than OpenBLAS on one core
/// on those ~34-row products (stop 42, `reports/benchmarks.md`).
public func linearInputGradient(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int, kernel: LinearKernel = .active
) {
    if kernel == .unpacked {
        splitColumns(inFeatures, rows: rows, inner: outFeatures) { columns in
            ti_gemm_nn(
                Int32(rows), Int32(columns.count), Int32(outFeatures), dOutput, Int32(outFeatures),
                weight + columns.lowerBound, Int32(inFeatures), dInput + columns.lowerBound, Int32(inFeatures), 1)
        }
        return
    }
    gemm(
        transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
        a: dOutput, lda: outFeatures, b: weight, ldb: inFeatures,
        beta: 1, c: dInput, ldc: inFeatures)
}

/// The weight gradient of `linearForward` for the output features `outputs` only:
/// `dW[outputs, :] (+)= dY[:, outputs]ᵀ · X`, accumulated (`accumulate`) or overwritten.
///
/// Shapes: `dWeight [O, I]` (rows outside `outputs` untouched), `dOutput [N, O]`, `input [N, I]`.
/// Why a range: two lanes can write disjoint halves of one weight gradient over every row of a batch,
/// with no per-lane copy to zero and add afterwards (`Encoder.backward`).
public func linearWeightGradient(
    dWeight: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    rows: Int, inFeatures: Int, outFeatures: Int, outputs: Range<Int>, accumulate: Bool
) {
    precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outFeatures, "linearWeightGradient: outputs \(outputs) outside 0..<\(outFeatures)")
    gemm(
        transposeA: true, transposeB: false, m: outputs.count, n: inFeatures, k: rows,
        a: dOutput + outputs.lowerBound, lda: outFeatures, b: input, ldb: inFeatures,
        beta: accumulate ? 1 : 0, c: dWeight + outputs.lowerBound * inFeatures, ldc: inFeatures)
}

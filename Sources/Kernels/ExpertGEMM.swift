import CKernels
import Foundation

// Dimension letters: R rows routed to one expert, I input features, O output features.
//
// The three products of one dispatched expert (token and context routing): a few dozen rows against
// a whole `[O, I]` weight. OpenBLAS packs the whole weight (or `dY`) on every such call, which at
// these row counts costs a good part of the product; `Sources/CKernels` computes them unpacked with
// AVX-512 (`Benchmarks/expert_gemm_bench.c` measures both). Where the CPU lacks AVX-512F, or
// `TI_EXPERT_GEMM=blas` is set (to measure the difference), the same products go through BLAS.

/// Which implementation the expert products use, fixed for the process.
public enum ExpertGEMM: Sendable {
    case avx512
    case blas

    /// AVX-512 when the CPU has it and `TI_EXPERT_GEMM` is not `blas`.
    public static let active: ExpertGEMM = {
        if ProcessInfo.processInfo.environment["TI_EXPERT_GEMM"] == "blas" { return .blas }
        return ti_expert_gemm_available() ? .avx512 : .blas
    }()

    /// Whether this CPU runs the AVX-512 kernels at all (whatever `active` says).
    public static var avx512Available: Bool { ti_expert_gemm_available() }
}

/// `Y = X · Wᵀ + b`, **overwriting** `output [R, O]` (`input [R, I]`, `weight [O, I]`, `bias [O]`).
public func expertForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>, rows R: Int, inFeatures I: Int, outFeatures O: Int, using kind: ExpertGEMM = .active
) {
    guard R > 0 else { return }
    switch kind {
    case .avx512:
        ti_gemm_nt(Int32(R), Int32(O), Int32(I), input, Int32(I), weight, Int32(I), bias, output, Int32(O), 0)
    case .blas:
        linearForward(output: output, input: input, weight: weight, bias: bias, rows: R, inFeatures: I, outFeatures: O)
    }
}

/// `dX (+)= dY · W`: `dInput [R, I]` overwritten, or accumulated when `accumulate`
/// (`dOutput [R, O]`, `weight [O, I]`).
public func expertInputGradient(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows R: Int, inFeatures I: Int, outFeatures O: Int, accumulate: Bool, using kind: ExpertGEMM = .active
) {
    guard R > 0 else { return }
    switch kind {
    case .avx512:
        ti_gemm_nn(Int32(R), Int32(I), Int32(O), dOutput, Int32(O), weight, Int32(I), dInput, Int32(I), accumulate ? 1 : 0)
    case .blas:
        // Zeroed, then beta = 1: OpenBLAS's beta = 0 runs a slower scalar zeroing pass.
        if !accumulate { dInput.update(repeating: 0, count: R * I) }
        gemm(
            transposeA: false, transposeB: false, m: R, n: I, k: O, a: dOutput, lda: O, b: weight, ldb: I,
            beta: 1, c: dInput, ldc: I)
    }
}

/// `dW (+)= dYᵀ · X` over the R rows: `dWeight [O, I]` overwritten, or accumulated when `accumulate`
/// (`dOutput [R, O]`, `input [R, I]`).
public func expertWeightGradient(
    dWeight: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    rows R: Int, inFeatures I: Int, outFeatures O: Int, accumulate: Bool, using kind: ExpertGEMM = .active
) {
    switch kind {
    case .avx512:
        if R == 0 {
            if !accumulate { dWeight.update(repeating: 0, count: O * I) }
            return
        }
        ti_gemm_tn(Int32(O), Int32(I), Int32(R), dOutput, Int32(O), input, Int32(I), dWeight, Int32(I), accumulate ? 1 : 0)
    case .blas:
        if !accumulate { dWeight.update(repeating: 0, count: O * I) }
        gemm(
            transposeA: true, transposeB: false, m: O, n: I, k: R, a: dOutput, lda: O, b: input, ldb: I,
            beta: 1, c: dWeight, ldc: I)
    }
}

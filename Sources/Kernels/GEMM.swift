import CBLAS

/// Row-major matrix product through `cblas_sgemm`: `C = alpha · op(A) · op(B) + beta · C`.
///
/// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`; `lda`, `ldb`, `ldc` are the row strides
/// of the operands as stored (so `lda = k` for a plain `[m, k]` A and `lda = m` for a transposed
/// `[k, m]` A). With `beta = 1` the product accumulates into `C`, which is how every backward adds
/// into parameter gradients.
/// ### References
/// BLAS `sgemm` (netlib); llm.c `matmul_forward`.
@inlinable
public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
    precondition(
        lda >= max(1, transposeA ? m : k) && ldb >= max(1, transposeB ? k : n) && ldc >= max(1, n),
        "gemm: leading dimensions lda=\(lda) ldb=\(ldb) ldc=\(ldc) too small for m=\(m) n=\(n) k=\(k)")
    if m == 0 || n == 0 { return }
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// `gemm` on single-threaded BLAS, for the model's products that no lane split covers (the token
/// router's gate, `CosineLogits`). OpenBLAS threads a product from 2^18 multiply-adds, and its
/// worker then spins for ≈ 0.1 s beside whichever of our lanes run next; these products are far too
/// small for two threads to pay for that (stop 44, `reports/benchmarks.md`). The benchmarks'
/// reference `sgemm` calls `gemm` itself, with OpenBLAS's threads.
public func gemmSingleThreaded(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    BLASThreads.singleThreaded {
        gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// `count` independent products `C_i = alpha · op(A_i) · op(B_i) + beta · C_i` whose operands sit at
/// fixed strides (`A_i = a + i·strideA`, …): the attention heads of a batch of sequences.
@inlinable
public func gemmStridedBatched(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, strideA: Int,
    b: UnsafePointer<Float>, ldb: Int, strideB: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, count: Int
) {
    for i in 0..<count {
        gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
            beta: beta, c: c + i * strideC, ldc: ldc)
    }
}

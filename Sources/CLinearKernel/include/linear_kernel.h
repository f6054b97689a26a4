// A linear layer's forward and input-gradient products for AVX-512 CPUs, unpacked. OpenBLAS packs
// the whole weight on every call; for the model's products (a few dozen to a few hundred rows
// against a weight read from memory, one core per lane) that packing cost about 40 % of its
// kernel's time (reports/benchmarks.md, "Stop 38"). These kernels read the weight where it lies.
//
// Every function requires `ti_linear_kernel_available()` to be true (an x86-64 CPU with AVX-512F,
// enabled by the OS); callers use BLAS otherwise. Shapes follow the BLAS names: C is [m, n], the
// reduction runs over k; `ld*` are row strides in floats. `accumulate` = 0 overwrites C, 1 adds to it.
//
// Each output element is computed from its own row of A and column of the product alone, in a fixed
// order over k, so the result does not depend on how the rows or the columns are split between
// calls: lanes that take some rows each, or threads that take some columns, give the same bits.
#ifndef TI_LINEAR_KERNEL_H
#define TI_LINEAR_KERNEL_H

#include <stdbool.h>

/// True when this CPU runs the kernels below (AVX-512F, and the OS saves the ZMM state), read once.
bool ti_linear_kernel_available(void);

/// C[m, n] (=|+=) A[m, k] · B[n, k]ᵀ (+ bias[n] on every row when bias is not NULL):
/// a linear's forward with PyTorch [out, in] weights B.
void ti_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                const float *bias, float *c, int ldc, int accumulate);

/// C[m, n] (=|+=) A[m, k] · B[k, n]: a linear's input gradient dX = dY · W.
void ti_gemm_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *c, int ldc, int accumulate);

#endif

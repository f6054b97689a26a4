// The benchmark's unpacked AVX-512 products beyond the package's (expert_gemm_kernels.c says which):
// a hand-built experiment, not part of the package. Written for token routing's per-expert products
// (wired into ExpertLinear in commit f65d796 and taken out in the next: with OpenBLAS's own AVX-512
// kernels the token FFN got slower in every case but one); the forward and input-gradient kernels
// became the package's `CLinearKernel` at stop 38. Every function requires
// `ti_expert_gemm_available()` (an x86-64 CPU with AVX-512F). Shapes follow the BLAS names: C is
// [m, n], the reduction runs over k; `ld*` are row strides in floats; `accumulate` = 0 overwrites C,
// 1 adds to it.
#ifndef TI_EXPERT_GEMM_H
#define TI_EXPERT_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "../Sources/CLinearKernel/include/linear_kernel.h"

/// True when this CPU runs the kernels below (AVX-512F), read once.
bool ti_expert_gemm_available(void);

// ti_gemm_nt and ti_gemm_nn: Sources/CLinearKernel/include/linear_kernel.h.

/// C[m, n] (=|+=) A[k, m]ᵀ · B[k, n]: a linear's weight gradient dW = dYᵀ · X over k rows.
void ti_gemm_tn(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                float *c, int ldc, int accumulate);

/// dst[c, r] = src[r, c] for src [rows, cols].
void ti_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd);

/// y[m, n] = x[m, k] · w[n, k]ᵀ + bias[n] (bias may be NULL), overwriting y: w transposed into
/// `scratch` (n·k floats), then the broadcast kernel of `ti_gemm_nn`.
void ti_linear_forward(int m, int n, int k, const float *x, const float *w, const float *bias, float *y,
                       float *scratch);

#endif

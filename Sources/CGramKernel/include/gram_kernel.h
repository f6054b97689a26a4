// The probe's Float64 Gram kernels (GradientProbe/GramAccumulator.swift): products of Float32
// gradient rows converted to Double, packed in panels of 8 rows, and multiplied with fused
// multiply-adds. Every entry is summed the same way on every path — one product added at a time,
// in column order, each with one rounding (FMA), starting from 0, and the sum then added to the
// target — so the scalar, AVX2 and AVX-512 paths give the same bits: for the same rows, the Gram no
// longer depends on which BLAS kernels a machine runs (the rows themselves still come from sgemm).
#ifndef TI_GRAM_KERNEL_H
#define TI_GRAM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

/// Rows per panel: a packed block holds its rows 8 at a time, column-major within the panel
/// (value (r, c) of a panel at [c·8 + r]).
#define TI_GRAM_PANEL 8

/// The instruction sets the kernels are written for, slowest first.
typedef enum {
    TIGramPathScalar = 0,
    TIGramPathAVX2 = 1,
    TIGramPathAVX512 = 2,
} TIGramPath;

/// The fastest path this CPU (and its operating system) supports.
TIGramPath ti_gram_best_path(void);
/// Whether `path` can run here.
bool ti_gram_path_supported(TIGramPath path);

/// Converts `k` Float32 values at `row` into row `index` of the panels at `panels` (panel
/// `index / 8`, place `index % 8`); whether any value is not ±0 (a zero row can be overwritten by
/// the next one: it adds nothing to a Gram).
bool ti_gram_pack_row(const float *row, int k, double *panels, int index);

/// Zeros the places after row `count − 1` in its panel. The kernels' results for those places are
/// thrown away whatever they hold; zeros keep them finite and fast (no NaN or subnormal arithmetic).
void ti_gram_pad(double *panels, int count, int k);

/// Packs, of `count` candidate rows of `k` Float32 values (candidate `i` at `base + places[i]·stride`),
/// those with a value that is not ±0 into panels, in candidate order (the same values and layout as
/// `ti_gram_pack_row` for each kept row, then `ti_gram_pad`); writes the kept candidates' numbers to
/// `kept` (room for `count`) and returns how many. `panels` needs room for ⌈count/8⌉ panels, not only
/// the kept rows' (the row-by-row path writes a zero row into the next place before dropping it).
/// `path` chooses the instruction set (clamped to what runs here); every
/// path writes the same bits. The AVX-512 path converts 8 rows × 8 columns at a time and transposes
/// them in registers, one store per column; the AVX2 path 8 rows × 4 columns, two stores per column;
/// both test the rows for zero on the values they load (one pass over the rows when none is zero,
/// as a dense model's never are; a second, without the zero rows, when one is). The scalar path
/// packs row by row, writing each value alone.
int ti_gram_pack_rows(
    TIGramPath path, const float *base, long stride, const long *places, int count, int k, double *panels,
    int *kept);

/// Packs `count` rows of `k` Float32 values, one after another at `rows`, into ⌈count/8⌉ panels
/// of `k · 8` Doubles at `panels` (the last panel's missing rows are zeros): `ti_gram_pack_row` for
/// each row, then `ti_gram_pad`. (The Gram packs with `ti_gram_pack_rows`, skipping zero rows; tests and the
/// benchmark use this.)
void ti_gram_pack(const float *rows, int count, int k, double *panels);

/// `C[i, j] += Σ_c A[i, c]·A[j, c]` for `i ≤ j < m`: the upper triangle of `A·Aᵀ`, `A` being `m`
/// packed rows of `k` values; entries below the diagonal are not touched, nor any outside the
/// `m × m` block of the rows `ldc` apart (the vector paths add each sum from its register through
/// masks; the scalar path from a block of sums).
void ti_gram_syrk(TIGramPath path, int m, int k, const double *a, double *c, long ldc);

/// `C[i, j] += Σ_c A[i, c]·B[j, c]` for `i < m`, `j < n`, `A` and `B` packed.
void ti_gram_gemm(TIGramPath path, int m, int n, int k, const double *a, const double *b, double *c, long ldc);

#endif

#!/usr/bin/env python3
"""Why the probe's Gram is Float64: what a Float32 Gram would do to the interference metric.

Reads the gradient rows a probe stored (default: the committed fixture the notebook-parity test uses,
the demo's dense checkpoint, `encoder.layers.1.ffn.dense2.weight`, 3 tasks x 8 mini-batches) and
compares the metric I (notebook leave-one-out, mean of ratios, samples with s[i,i][b] <= 0 left out
as `InterferenceMatrix` does) from

  * the exact Gram (Float64 products and sums: what `GramAccumulator` computes), and
  * Float32 Grams: BLAS `sgemm` over blocks of K columns, each block's product added in Float64
    (the fastest Float32 variant the accumulator could use; K = width is one plain `sgemm`).

Run: python3 Benchmarks/float32_gram_error.py [probe.h5 [parameter]]   (needs numpy, h5py)
"""
import sys

import h5py
import numpy as np

path = sys.argv[1] if len(sys.argv) > 1 else "Tests/InterferenceTests/Fixtures/probe_dense_demo.h5"
name = sys.argv[2] if len(sys.argv) > 2 else "encoder.layers.1.ffn.dense2.weight"

with h5py.File(path, "r") as f:
    rows = f[f"/parameters/{name}/gradients"][:]
    tasks = [t.decode() if isinstance(t, bytes) else t for t in f.attrs["tasks"]]
T = len(tasks)
N = rows.shape[0] // T


def interference(gram):
    """I[i, j] = mean over b with s[i,i][b] > 0 of s[j,i][b] / s[i,i][b] (uniperceiver-model.md §6)."""
    norms = np.sqrt(np.diag(gram))
    unit = gram / norms[:, None]  # unit[a, b] = <g(a)/|g(a)|, g(b)>
    out = np.full((T, T), np.nan)
    for i in range(T):
        s = np.empty((T, N))
        for j in range(T):
            block = unit[j * N:(j + 1) * N, i * N:(i + 1) * N]
            s[j] = (block.sum(axis=0) - np.diag(block)) / (N - 1)
        keep = s[i] > 0
        out[i] = (s[:, keep] / s[i, keep]).mean(axis=1)
    return out


def float32_gram(columns):
    gram = np.zeros((rows.shape[0],) * 2)
    for c in range(0, rows.shape[1], columns):
        block = np.ascontiguousarray(rows[:, c:c + columns])
        gram += (block @ block.T).astype(np.float64)
    return gram


exact = rows.astype(np.float64) @ rows.astype(np.float64).T
reference = interference(exact)
scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
print(f"{path}: {name}, {T} tasks x {N} rows of width {rows.shape[1]}")
print("| Float32 Gram | max |G - G64| / sqrt(G_aa G_bb) | max |I - I64| | max |I - I64| / |I64| |")
print("| --- | ---: | ---: | ---: |")
for columns in [16, 32, 64, 128, 384, 768, rows.shape[1]]:
    gram = float32_gram(columns)
    values = interference(gram)
    label = "one sgemm" if columns == rows.shape[1] else f"blocks of {columns} columns"
    print(
        f"| {label} | {np.max(np.abs(gram - exact) / scale):.2e} | {np.max(np.abs(values - reference)):.2e} "
        f"| {np.max(np.abs(values - reference) / np.abs(reference)):.2e} |")
print("the metric's parity target with the notebook: 1e-6")

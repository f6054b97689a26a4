#!/usr/bin/env python3
"""NumPy (float64) transcription of the official Uni-Perceiver-MoE notebook (tools/calinterference.ipynb).

The procedure is the one of ../../../../shared/design/uniperceiver-model.md §6.2, line for line:

    for t in T: G[t] = G[t] * (|G[t]| > tau * rowstd(G[t]))      # tau = 0: a no-op
    for t in T: U[t] = G[t] / rownorm(G[t])                        # unit step directions
    for i in T:                                                    # task whose loss changes
        for j in T:                                                # task that steps
            M = U[j] @ G[i].T                                      # M[a, b] = <g_j(a)/|g_j(a)|, g_i(b)>
            s[j, i][b] = (sum_a M[a, b] - M[b, b]) / (N - 1)       # leave-one-out, every block
        for j in T:
            I[i, j] = mean_b(s[j, i][b] / s[i, i][b])              # mean of ratios

It is our own script, run with /opt/refvenv/bin/python, and it never imports the Swift code. Two modes:

  python notebook_reference.py                      # seeded synthetic rows -> notebook_reference.json
  python notebook_reference.py --input probe.h5 --out real.json [--parameter NAME ...] [--no-rows]

With --input it reads a probe file written by `interference probe --store-gradients`
(attrs `tasks`, `samples_per_task`; datasets `/parameters/<name>/gradients` float32 [T*N, P], rows
task-major) or an .npz in the notebook's own layout (one entry per task, each a dict
{parameter: list of N arrays}, as `all_grads_cc12m.npz`).

Output (JSON; every float is written with repr, so it round-trips exactly):
  {"format": "task-interference/notebook-reference", "version": 1, "seed", "numpy", "tasks", "N",
   "cases": [{"name", "parameters": [names], "rows": {param: [[...]]} (unless --no-rows),
              "gram": [T*N][T*N] (task-major, summed over the case's parameters),
              "interference": [T][T]          # the notebook's I, no guard,
              "interference_guarded": [T][T]  # mean over b with s[i,i][b] > 0 only,
              "nonpositive_denominators": [T],
              "delta": [T][T][N]              # delta[i][j][b] = s[j,i][b],
              "cosine": [T][T]                # cross-task: all N*N pairs; diagonal: pairs a != b,
              "conflict_fraction": [T][T]     # fraction of those pairs with cosine < 0
             }]}
A case with several parameters is a group: its rows are the parameters' rows concatenated along P,
which is what the Swift side must reproduce from the sum of the per-parameter Gram matrices.
"""

import argparse
import json
import subprocess
import sys

import numpy as np

FORMAT = "task-interference/notebook-reference"
VERSION = 1
SEED = 20240611


def notebook_interference(grads, tau=0.0):
    """grads: list over tasks of [N, P] float64 arrays. Returns I [T,T], s [T(j),T(i),N]."""
    T = len(grads)
    N = grads[0].shape[0]
    assert all(g.shape[0] == N for g in grads), "the notebook needs equal N for all tasks"
    G = [g * (np.abs(g) > tau * g.std(axis=1, keepdims=True)) if tau > 0 else g for g in grads]
    U = [g / np.linalg.norm(g, axis=1, keepdims=True) for g in G]
    s = np.zeros((T, T, N))
    I = np.zeros((T, T))
    for i in range(T):
        for j in range(T):
            M = U[j] @ G[i].T
            s[j, i] = (M.sum(axis=0) - np.diag(M)) / (N - 1)
        for j in range(T):
            I[i, j] = np.mean(s[j, i] / s[i, i])
    return I, s


def guarded(s):
    """Mean of ratios over the b with a positive denominator s[i,i][b]; count of the others."""
    T = s.shape[0]
    I = np.full((T, T), np.nan)
    bad = np.zeros(T, dtype=int)
    for i in range(T):
        ok = s[i, i] > 0
        bad[i] = int((~ok).sum())
        if ok.any():
            for j in range(T):
                I[i, j] = np.mean(s[j, i][ok] / s[i, i][ok])
    return I, bad


def cosines(grads):
    T = len(grads)
    N = grads[0].shape[0]
    U = [g / np.linalg.norm(g, axis=1, keepdims=True) for g in grads]
    cos = np.zeros((T, T))
    conflict = np.zeros((T, T))
    off = ~np.eye(N, dtype=bool)
    for i in range(T):
        for j in range(T):
            C = U[i] @ U[j].T
            vals = C[off] if i == j else C.ravel()
            cos[i, j] = vals.mean()
            conflict[i, j] = (vals < 0).mean()
    return cos, conflict


def case(name, tasks, params, rows_by_param, with_rows=True):
    """rows_by_param: {param: [T*N, P] float64, task-major}."""
    T = len(tasks)
    stacked = np.concatenate([rows_by_param[p] for p in params], axis=1)
    N = stacked.shape[0] // T
    grads = [stacked[t * N:(t + 1) * N] for t in range(T)]
    I, s = notebook_interference(grads)
    Ig, bad = guarded(s)
    cos, conflict = cosines(grads)
    out = {
        "name": name,
        "parameters": list(params),
        "gram": (stacked @ stacked.T).tolist(),
        "interference": I.tolist(),
        "interference_guarded": Ig.tolist(),
        "nonpositive_denominators": bad.tolist(),
        # delta[i][j][b] = s[j,i][b]: row i = task whose loss changes, as in the interference file.
        "delta": np.transpose(s, (1, 0, 2)).tolist(),
        "cosine": cos.tolist(),
        "conflict_fraction": conflict.tolist(),
    }
    if with_rows:
        out["rows"] = {p: rows_by_param[p].tolist() for p in params}
    return out


def synthetic():
    """Three tasks x N=7 mini-batch gradients over two parameter tensors (P = 40 and 24).

    Structure: a component shared by cls and mlm, which cap carries with the opposite sign
    (so cap interferes with both), task-specific directions (so each task is self-consistent and
    its denominators are positive), isotropic noise, and a random positive scale per row (which
    the metric must ignore). A fourth case, `flagged`, makes one task mostly noise so some of its
    denominators s[i,i][b] are negative.
    """
    rng = np.random.default_rng(SEED)
    tasks = ["cls", "mlm", "cap"]
    N = 7
    sizes = {"encoder.layers.0.ffn.dense2.weight": 40, "encoder.layers.0.ffn.dense2.bias": 24}
    P = sum(sizes.values())
    shared = rng.standard_normal(P)
    own = rng.standard_normal((3, P))
    mix = {0: (1.0, 0.8), 1: (0.9, 0.6), 2: (-0.7, 1.0)}  # (shared weight, own weight)
    rows = np.zeros((3 * N, P))
    for t in range(3):
        a, b = mix[t]
        for n in range(N):
            g = a * shared + b * own[t] + 0.9 * rng.standard_normal(P)
            rows[t * N + n] = g * rng.uniform(0.2, 5.0)
    split = np.cumsum(list(sizes.values()))[:-1]
    parts = np.split(rows, split, axis=1)
    by_param = dict(zip(sizes.keys(), parts))
    names = list(sizes.keys())
    cases = [
        case(names[0], tasks, [names[0]], by_param),
        case(names[1], tasks, [names[1]], by_param),
        case("encoder.layers.0", tasks, names, by_param),
    ]
    # flagged: mlm is mostly noise (a weak consistent direction), so some s[mlm,mlm][b] <= 0.
    noisy = rows.copy()
    noisy[N:2 * N] = (0.03 * own[1] + rng.standard_normal((N, P)) / np.sqrt(P)) * rng.uniform(0.2, 5.0, size=(N, 1))
    flagged = case("flagged", tasks, ["flagged.weight"], {"flagged.weight": noisy})
    assert sum(flagged["nonpositive_denominators"]) > 0, "reseed: the flagged case has no bad denominator"
    for c in cases:
        assert sum(c["nonpositive_denominators"]) == 0, f"reseed: {c['name']} has a bad denominator"
    return tasks, N, cases + [flagged]


def read_input(path, wanted):
    """Rows per parameter, task-major [T*N, P] float64, from a probe file or a notebook .npz."""
    if path.endswith(".npz"):
        data = np.load(path, allow_pickle=True)
        tasks = list(data.keys())
        per_task = {t: data[t].item() for t in tasks}
        params = wanted or sorted(per_task[tasks[0]].keys())
        rows = {p: np.concatenate([np.stack([np.asarray(g, np.float64).ravel()
                                             for g in per_task[t][p]]) for t in tasks])
                for p in params}
        N = rows[params[0]].shape[0] // len(tasks)
        return tasks, N, rows
    import h5py
    with h5py.File(path, "r") as f:
        tasks = [t.decode() if isinstance(t, bytes) else str(t) for t in f.attrs["tasks"]]
        N = int(f.attrs["samples_per_task"])
        names = wanted or sorted(n for n in f["parameters"] if "gradients" in f["parameters"][n])
        rows = {n: np.asarray(f["parameters"][n]["gradients"][...], np.float64) for n in names}
    return tasks, N, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", help="probe.h5 (with stored gradients) or notebook-style .npz")
    ap.add_argument("--parameter", action="append", help="parameter(s) to analyse (default: all)")
    ap.add_argument("--group", action="append", default=[],
                    help="NAME=p1,p2,...: also analyse these parameters as one group")
    ap.add_argument("--no-rows", action="store_true", help="do not copy raw rows into the output")
    ap.add_argument("--out", default=None, help="output JSON (default: notebook_reference.json)")
    args = ap.parse_args()

    if args.input:
        tasks, N, rows = read_input(args.input, args.parameter)
        cases = [case(p, tasks, [p], rows, not args.no_rows) for p in rows]
        for spec in args.group:
            name, members = spec.split("=", 1)
            cases.append(case(name, tasks, members.split(","), rows, not args.no_rows))
        seed = None
    else:
        tasks, N, cases = synthetic()
        seed = SEED
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=sys.path[0]).stdout.strip()
    except OSError:
        commit = ""
    out = {"format": FORMAT, "version": VERSION, "seed": seed, "numpy": np.__version__,
           "script_commit": commit, "input": args.input, "tasks": tasks, "N": N, "cases": cases}
    path = args.out or (sys.path[0] + "/notebook_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    for c in cases:
        print(c["name"], "I =", np.array2string(np.array(c["interference"]), precision=4),
              "bad denominators:", c["nonpositive_denominators"])


if __name__ == "__main__":
    main()

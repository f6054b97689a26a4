# Writes interference.ipynb (run from the repository root with a Python that has nbformat); execute it with
# nbclient or `jupyter nbconvert --execute --inplace notebooks-data/interference.ipynb` to refresh its outputs.
import nbformat as nbf
nb = nbf.v4.new_notebook()
nb.cells = [
nbf.v4.new_markdown_cell("""# Reading TaskInterference's interference files

This notebook loads the interference files that `interference analyze` writes (format
`task-interference/interference`, version 1; schema in `../../shared/design/architecture.md` and
`Sources/Interference/README.md`) with **h5py** and draws one heatmap per run and group with
**matplotlib**. It reads the committed demo output in `reports/demo/` (`make demo` regenerates it).

`I[i, j]`: the first-order change of task *i*'s loss when task *j* takes a unit gradient step, divided
per sample by task *i*'s own step: the official Uni-Perceiver-MoE notebook's procedure, except that a
sample whose own change is ≤ 0 is left out of its row (flagged, `nonpositive_denominators`) where the
notebook would divide by it. Rows are the task whose loss changes, columns the task that steps; the
diagonal is 1."""),
nbf.v4.new_code_cell("""import h5py
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.colors import TwoSlopeNorm

RUNS = {"dense": "../reports/demo/dense.h5", "moe": "../reports/demo/moe.h5"}

def load(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "task-interference/interference", path
        assert int(f.attrs["version"]) == 1, path
        tasks = [t.decode() if isinstance(t, bytes) else str(t) for t in f.attrs["tasks"]]
        groups = {}
        for name, g in f["groups"].items():
            groups[name] = {key: g[key][()] for key in g.keys() if isinstance(g[key], h5py.Dataset)}
            if "lookahead" in g:   # written by `analyze --lookahead λ`
                la = g["lookahead"]
                groups[name]["lookahead"] = {key: la[key][()] for key in la.keys()} | dict(la.attrs)
        return tasks, groups

data = {run: load(path) for run, path in RUNS.items()}
for run, (tasks, groups) in data.items():
    print(run, tasks, list(groups))"""),
nbf.v4.new_code_cell("""for run, (tasks, groups) in data.items():
    for name, g in groups.items():
        print(f"{run} {name}")
        print(np.array2string(g["interference"], precision=3, suppress_small=True))"""),
nbf.v4.new_code_cell("""names = list(data["dense"][1])
fig, axes = plt.subplots(len(data), len(names), figsize=(5.2 * len(names), 4.4 * len(data)), constrained_layout=True, squeeze=False)
SLACK = 0.0005   # a value counts as outside its interval beyond the report's printed digits, as in the report

def outside(g):   # off-diagonal cells whose value lies outside its own bootstrap interval (none without intervals)
    I = g["interference"]
    if "ci_low" not in g:   # analysed with --bootstrap 0
        return np.zeros(I.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        miss = (I < g["ci_low"] - SLACK) | (I > g["ci_high"] + SLACK)
    return miss & np.isfinite(I) & np.isfinite(g["ci_low"]) & np.isfinite(g["ci_high"]) & ~np.eye(len(I), dtype=bool)

def resting(g, threshold=0.5):   # off-diagonal cells one sample moves by more than 0.5 when left out (the report's ‡)
    I, d = g["interference"], g["delta"]
    out = np.zeros(I.shape, dtype=bool)
    for i in range(len(I)):
        own = d[i, i]
        kept = np.isfinite(own) & (own > 0)
        if kept.sum() < 3:
            continue
        for j in range(len(I)):
            if i == j or not np.isfinite(I[i, j]) or not np.isfinite(d[i, j, kept]).all():
                continue
            ratios = d[i, j, kept] / own[kept]
            out[i, j] = np.max(np.abs(ratios - I[i, j])) / (kept.sum() - 1) > threshold
    return out & ~outside(g)

# The colour scale leaves out values outside their own bootstrap intervals (see below): one
# mini-batch can carry such a value far beyond the rest, and every other cell would fade.
shown = [np.abs(np.where(outside(g), np.nan, g["interference"])) for _, groups in data.values() for g in groups.values()]
limit = max([1.0] + [np.nanmax(a) for a in shown if np.isfinite(a).any()])
norm = TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit)   # diverging, centred on 0
for r, (run, (tasks, groups)) in enumerate(data.items()):
    for c, name in enumerate(names):
        ax = axes[r][c]
        I = groups[name]["interference"]
        im = ax.imshow(I, cmap="RdBu", norm=norm)
        ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
        ax.set_yticks(range(len(tasks)), tasks if c == 0 else [])
        ax.set_xlabel("task that steps (j)")
        if c == 0:
            ax.set_ylabel("loss of task (i)")
        ax.set_title(f"{run}: {name}")
        miss, rest = outside(groups[name]), resting(groups[name])
        for i in range(len(tasks)):
            for j in range(len(tasks)):
                # † and ‡ as in the report: outside its own interval; rests on one sample. White text on dark cells.
                dark = np.isfinite(I[i, j]) and abs(I[i, j]) > 0.6 * limit
                mark = "†" if miss[i, j] else "‡" if rest[i, j] else ""
                ax.text(j, i, f"{I[i, j]:.2f}" + mark, ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
fig.colorbar(im, ax=axes, shrink=0.8, label="I[i, j]")
plt.show()"""),
nbf.v4.new_markdown_cell("""Per-sample first-order changes `delta[i, j, b]` (= s[j,i][b] of the notebook) show how much a
single entry of `I` rests on a few mini-batches; the files also hold bootstrap intervals
(`ci_low`, `ci_high`), the mean cosine between the tasks' gradients and the fraction of conflicting
pairs."""),
nbf.v4.new_code_cell("""tasks, groups = data["dense"]
g = groups[names[-1]]
for i, ti in enumerate(tasks):
    for j, tj in enumerate(tasks):
        interval = f"  95% [{g['ci_low'][i, j]:+.3f}, {g['ci_high'][i, j]:+.3f}]" if "ci_low" in g else ""   # none with --bootstrap 0
        print(f"{ti:>22} <- {tj:<22} I={g['interference'][i, j]:+.3f}{interval}  cos={g['cosine'][i, j]:+.4f}")"""),
nbf.v4.new_markdown_cell("""A value can lie outside its own bootstrap interval. `I[i, j]` is a mean of per-sample ratios
`delta[i, j, b] / delta[i, i, b]` with no guard against a small own-task change, so one mini-batch
whose own change is close to zero can carry it (`interference report` marks such values with † and
names the mini-batch). Recomputed here from `delta` alone: the sample whose ratio lies farthest from
the value, and the mean without it. The heatmaps above also mark ‡ where that one sample moves a value
inside its interval by more than 0.5 (half of a task's own effect), as the report does."""),
nbf.v4.new_code_cell("""for run, (tasks, groups) in data.items():
    for name, g in groups.items():
        I, d, miss = g["interference"], g["delta"], outside(g)
        for i, j in zip(*np.nonzero(miss)):
            lo, hi = g["ci_low"][i, j], g["ci_high"][i, j]
            own = d[i, i]
            kept = np.isfinite(own) & (own > 0) & np.isfinite(d[i, j])   # the flagged samples are left out, as in I
            text = f"{run} {name}: {tasks[i]} <- {tasks[j]}: I={I[i, j]:+.3f} outside [{lo:+.3f}, {hi:+.3f}]"
            ratios = d[i, j, kept] / own[kept]
            carried = False
            if kept.sum() >= 2 and abs(ratios.mean() - I[i, j]) <= 1e-9 * max(1, abs(I[i, j])):
                k = np.argmax(np.abs(ratios - I[i, j]))
                without = (ratios.sum() - ratios[k]) / (kept.sum() - 1)
                if lo - SLACK <= without <= hi + SLACK:   # one sample accounts for the miss
                    b = np.flatnonzero(kept)[k]
                    text += (f"; sample {b}: own change {own[b]:.1e} (median {np.median(own[kept]):.1e}), "
                             f"ratio {ratios[k]:+.1f}; mean without it {without:+.3f}")
                    carried = True
            print(text if carried else text + "; no single sample accounts for it")"""),
nbf.v4.new_markdown_cell("""The exact look-ahead check (`analyze --lookahead λ`, present in the demo files): on a seeded
subsample of pairs, the group's parameters were actually stepped by `−λ·g_j/‖g_j‖` and task *i*'s loss
evaluated again. `exact_loss_change` against `first_order_loss_change` (= `λ·⟨ĝ_j, g_i⟩`) shows whether
the paper's Taylor approximation holds; `exact` and `first_order` are the two `I` on the same pairs."""),
nbf.v4.new_code_cell("""fig, axes = plt.subplots(1, len(data), figsize=(5.2 * len(data), 4.4), constrained_layout=True, squeeze=False)
for ax, (run, (tasks, groups)) in zip(axes[0], data.items()):
    for name, g in groups.items():
        la = g.get("lookahead")
        if la is None:
            continue
        print(f"{run} {name}: λ = {la['step_size']:g}, {int(la['pairs'])} pairs, off-diagonal I differ by "
              f"{100 * la['offdiagonal_relative_difference']:.2f} %, loss changes by {100 * la['loss_change_relative_difference']:.2f} %")
        ax.scatter(la["first_order_loss_change"], la["exact_loss_change"], s=8, label=name)
    lim = ax.get_xlim()
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.set_xlabel("first-order loss change λ·⟨ĝ_j, g_i⟩")
    ax.set_ylabel("exact loss change")
    ax.set_title(run)
    ax.legend()
plt.show()"""),
nbf.v4.new_markdown_cell("""How the MoE model routed the probed mini-batches (`/routing`, only in an MoE run's files): per
layer, routing decision (`attention`: QKV and output projection; `ffn`: both FFN linears), task and
segment, the mean gate weight each expert received per token. With attribute routing every token of a
segment shares its segment's decision, so a row shows which experts that kind of input was sent to."""),
nbf.v4.new_code_cell("""with h5py.File(RUNS["moe"], "r") as f:
    r = f["routing"]
    print(f"routing: {r.attrs['routing']}, {int(r.attrs['experts'])} experts")
    text = lambda key: [x.decode() if isinstance(x, bytes) else str(x) for x in r[key][()]]
    decision, task, side = text("decision"), text("task"), text("side")
    layer, segment, share = r["layer"][()], r["segment"][()], r["weight_share"][()]
for k in range(len(layer)):
    shares = " ".join(f"{100 * p:5.1f}" for p in share[k])
    print(f"layer {layer[k]} {decision[k]:>9} {task[k]:>20} {side[k]:>6} {segment[k]}: {shares} %")"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks-data/interference.ipynb")

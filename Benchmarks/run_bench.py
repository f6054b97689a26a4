"""Side-by-side gradient benchmark (issue 6): Swift vs PyTorch (eager) vs JAX (jit), float32, CPU.

`make bench` runs this with .venv-bench's Python after building the Swift release binaries. Steps:

1. Writes, per configuration, a checkpoint (safetensors F32, config JSON in __metadata__["config"],
   the format of Sources/Training/Checkpoint.swift) and an image-classification mini-batch (the first
   B images of notebooks-data/digits.h5, their labels, the 10 class names) under .build/bench/.
2. Agreement: runs each side once on every configuration and compares the loss (relative 1e-4) and
   the gradient norm of every parameter group (relative 1e-3). Stops with status 1 on disagreement.
3. Timing, interleaved: in each round, the machine's sgemm rate (OpenBLAS, 1024^3, best of 5), then
   per configuration one process per side (order rotated every round), each doing `--warmup`
   untimed and `--iterations` timed forward+backward passes. ms per gradient sample is the median
   over all rounds' timed passes; peak RSS is the largest VmHWM that side's processes report.
4. Writes reports/benchmarks.md between the run_bench markers (text outside them is kept).

Every child is pinned to 2 threads: OMP/OPENBLAS/MKL_NUM_THREADS=2, torch.set_num_threads(2), and
`taskset -c 0,1` for all three (XLA sizes its CPU thread pool from the affinity mask). The BLAS
core-type environment (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) is left as it is and reported.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "UniPerceiverTests", "Fixtures"))
from contract import contract_table, moe_table  # noqa: E402  (the one parameter table, shared with the fixtures)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PEERS = os.path.join(ROOT, "Benchmarks", "peers")
REPORT = os.path.join(ROOT, "reports", "benchmarks.md")
BEGIN, END = "<!-- run_bench:begin -->", "<!-- run_bench:end -->"
THREADS = 2
LOSS_RTOL, NORM_RTOL = 1e-4, 1e-3
SIDES = ["swift", "torch", "jax"]
PEER_NAMES = {"swift": "Swift", "torch": "PyTorch", "jax": "JAX"}

# (key, description, shape, batch). (a) is the `small` preset of Sources/Training/ModelPresets.swift
# (the demo model) at the probe's default mini-batch of 16 (Sources/GradientProbe/ProbeOptions.swift).
CONFIGS = [
    ("a", "demo model (preset small): D=64, 2 layers, 4 heads, FFN 256, batch 16",
     dict(hidden_size=64, num_layers=2, num_heads=4, ffn_size=256), 16),
    ("b", "D=128, 6 layers, 4 heads, FFN 512, batch 8", dict(hidden_size=128, num_layers=6, num_heads=4, ffn_size=512), 8),
    ("c", "D=256, 6 layers, 8 heads, FFN 1024, batch 8", dict(hidden_size=256, num_layers=6, num_heads=8, ffn_size=1024), 8),
    ("d", "attribute-routed MoE of (c): every layer, E=8, top-2",
     dict(hidden_size=256, num_layers=6, num_heads=8, ffn_size=1024, routing="attribute", num_experts=8, top_k=2,
          moe_layers="all"), 8),
]
TARGETS = {"a": 1.5, "b": 1.5, "c": 1.2}


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------


def bench_weights(cfg, seed):
    """Seeded weights with O(1) activations and non-trivial gradients everywhere (not the paper's
    init, whose γ = 1e-3 would make the deep-layer gradients tiny): Linear weights N(0, 1/fan_in),
    biases N(0, 0.02²), LayerNorm N(1, 0.1²)/N(0, 0.05²), γ N(0.3, 0.1²), tables N(0, 0.5²)."""
    rng = np.random.default_rng(seed)
    out = {}
    table = moe_table(cfg) if cfg.get("routing", "none") != "none" else contract_table(cfg)
    for name, shape in table:
        leaf = name.rsplit(".", 1)[-1]
        if name.startswith("predictor.logit_scale_"):
            w = np.full(shape, np.log(1 / 0.07))
        elif "LayerNormModules" in name or "_norm." in name or "ln_post" in name or ".tag_transform.1." in name:
            w = rng.normal(1.0, 0.1, shape) if leaf == "weight" else rng.normal(0.0, 0.05, shape)
        elif leaf == "residual_scale":
            w = rng.normal(0.3, 0.1, shape)
        elif name.startswith("token_embed.") or leaf == "temporal_pos_embed":
            w = rng.normal(0.0, 0.5, shape)
        elif leaf == "weight":
            w = rng.normal(0.0, 1.0 / np.sqrt(shape[1]), shape)
        else:
            w = rng.normal(0.0, 0.02, shape)
        out[name] = np.ascontiguousarray(w, dtype=np.float32)
    return out


def write_inputs(out_dir):
    """Checkpoint + batch per configuration; returns {key: (cfg, paths, batch size, class length)}."""
    with h5py.File(os.path.join(ROOT, "notebooks-data", "digits.h5"), "r") as f:
        vocab = f.attrs["vocabulary"]
        vocab = vocab.decode() if isinstance(vocab, bytes) else str(vocab)
        vocab_size = len(vocab.split("\n"))
        images = f["images"][:].astype(np.float32) / 8.0 - 1.0
        labels = f["labels"][:].astype(np.int64)
        class_tokens = f["class_names/tokens"][:].astype(np.int64)
        class_lengths = f["class_names/lengths"][:].astype(np.int64)
        longest = max(int(f[g + "/lengths"][:].max()) for g in ["class_names", "captions", "corpus"])
        image_size, channels = int(f.attrs["image_size"]), int(f.attrs["channels"])
    setups = {}
    for i, (key, _, shape, batch) in enumerate(CONFIGS):
        cfg = dict(shape, image_size=image_size, patch_size=2, channels=channels, vocab_size=vocab_size,
                   max_text_length=longest, layer_scale_init=0.001)
        d = os.path.join(out_dir, key)
        os.makedirs(d, exist_ok=True)
        ckpt, bfile = os.path.join(d, "checkpoint.safetensors"), os.path.join(d, "batch.safetensors")
        # The metadata our own checkpoints carry (Sources/Training/Checkpoint.swift): kind is "dense" or
        # "moe", the routing level apart; the loader refuses a kind that contradicts the configuration.
        metadata = {"format": "task-interference/checkpoint", "version": "1",
                    "kind": "moe" if "routing" in cfg else "dense",
                    "config": json.dumps(cfg), "generator": "Benchmarks/run_bench.py"}
        if "routing" in cfg:
            metadata["routing"] = cfg["routing"]
        save_file(bench_weights(cfg, seed=1000 + i), ckpt, metadata=metadata)
        save_file({
            "images": np.ascontiguousarray(images[:batch].reshape(batch, channels, image_size, image_size)),
            "labels": np.ascontiguousarray(labels[:batch]),
            "class_tokens": np.where(class_tokens < 0, 0, class_tokens),  # -1 padding -> 0 (masked anyway)
            "class_lengths": class_lengths}, bfile)
        setups[key] = (cfg, ckpt, bfile, batch, 1 + int(class_lengths.max()), len(class_lengths))
    return setups


# ------------------------------------------------------------------------------------------------
# FLOPs (the formula of Benchmarks/ModelBenchmark/main.swift)
# ------------------------------------------------------------------------------------------------

def forward_flops(cfg, batch, classes, class_tokens, read_rows_only=False):
    """Forward GEMM FLOPs of one loss. `read_rows_only`: the last layer computes only the one row per
    sequence the loss reads (Swift's `Model.computesOnlyReadRows`, dense last layer): QKV of every
    row, attention for one query per sequence, output projection and FFN of that row."""
    D, F, Lr = cfg["hidden_size"], cfg["ffn_size"], cfg["num_layers"]
    patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    features = cfg["channels"] * cfg["patch_size"] ** 2

    def encoder(sequences, T):
        N = sequences * T
        layer = 2 * N * (3 * D * D + D * D + 2 * D * F) + 2 * 2 * sequences * T * T * D
        if not read_rows_only:
            return Lr * layer
        last = 2 * N * 3 * D * D + 2 * 2 * sequences * T * D + 2 * sequences * (D * D + 2 * D * F)
        return (Lr - 1) * layer + last

    image = encoder(batch, 1 + patches) + 2 * batch * patches * features * D
    targets = encoder(classes, class_tokens)
    head = 2 * (batch + classes) * D * D + 2 * batch * classes * D
    return image + targets + head


FLOP_FORMULA = (
    "FLOPs per gradient sample = 3 × forward GEMM FLOPs (the forward, plus dX and dW in the backward; "
    "elementwise work not counted), the formula of `Benchmarks/ModelBenchmark/main.swift`: per encoder "
    "layer `2·N·(3D² + D² + 2·D·F) + 4·S·T²·D` over S sequences of T tokens (N = S·T), for the B image "
    "sequences (T = 1 + 16 patches) and the K = 10 class-name sequences (T = 3: SPE, name, EOT); plus the "
    "patch projection `2·B·16·(C·p²)·D` and the head `2·(B+K)·D² + 2·B·K·D`. (d) is counted as (c): its "
    "experts are merged once per segment (the two chosen experts' weights summed, gates computed), which "
    "every side does and which is not counted. Swift's GFLOP/s and % sgemm count the FLOPs it executes: "
    "a dense last layer computes only the rows the loss reads (one per sequence here; `Model.computesOnlyReadRows`), "
    "last layer `2·N·3D² + 4·S·T·D + 2·S·(D² + 2·D·F)`, while the peers compute every row; the speed ratio "
    "compares the time to the same loss and gradient.")


# ------------------------------------------------------------------------------------------------
# Running the sides
# ------------------------------------------------------------------------------------------------

def child_env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS),
               PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    return env


def pinned(cmd):
    taskset = shutil.which("taskset")
    cpus = sorted(os.sched_getaffinity(0))[:THREADS]
    return ([taskset, "-c", ",".join(map(str, cpus))] if taskset else []) + cmd


def run_child(cmd):
    """Runs cmd, returns (parsed JSON of its last stdout line, peak RSS in MiB of that process)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(pinned(cmd), stdout=out, stderr=err, env=child_env(), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{errors[-4000:]}")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON:\n{text[-2000:]}\n{errors[-2000:]}")
    record = json.loads(lines[-1])
    # The side's own VmHWM (peak since exec); ru_maxrss would include this harness's peak, which
    # vfork/exec carries over into every child.
    return record, record.get("peak_rss_mib") or usage.ru_maxrss / 1024.0


def side_command(side, args, ckpt, bfile, warmup, iterations):
    files = ["--checkpoint", ckpt, "--batch", bfile, "--warmup", str(warmup), "--iterations", str(iterations)]
    if side == "swift":
        return [args.swift_bin, "run"] + files
    python = args.torch_python if side == "torch" else sys.executable
    return [python, os.path.join(PEERS, f"{side}_peer.py")] + files + ["--threads", str(THREADS)]


def parameter_group(name):
    if name.startswith("encoder.layers."):
        return "encoder.layers." + name.split(".")[2]
    return "embeddings" if name.startswith(("video_embed.", "token_embed.")) else "predictor"


def group_norms(norms):
    groups = {}
    for name, value in norms.items():
        g = parameter_group(name)
        groups[g] = groups.get(g, 0.0) + value * value
    return {g: v ** 0.5 for g, v in groups.items()}


def rel(a, b):
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def agreement(results):
    """results {side: record}; compares every peer with Swift. Returns a summary dict."""
    ref = results["swift"]
    ref_groups = group_norms(ref["grad_norms"])
    out = {"loss": {s: r["loss"] for s, r in results.items()}, "pairs": {}, "ok": True}
    for side in SIDES[1:]:
        r = results[side]
        if set(r["grad_norms"]) != set(ref["grad_norms"]):
            raise RuntimeError(f"{side}: parameter names differ from Swift's")
        groups = group_norms(r["grad_norms"])
        group_err = {g: rel(groups[g], ref_groups[g]) for g in ref_groups}
        worst_group = max(group_err, key=group_err.get)
        param_err = {n: rel(r["grad_norms"][n], ref["grad_norms"][n]) for n in ref["grad_norms"]}
        worst_param = max(param_err, key=param_err.get)
        pair = {"loss_rel": rel(r["loss"], ref["loss"]), "group_rel": group_err[worst_group],
                "worst_group": worst_group, "param_rel": param_err[worst_param], "worst_param": worst_param}
        pair["ok"] = pair["loss_rel"] <= LOSS_RTOL and pair["group_rel"] <= NORM_RTOL
        out["ok"] &= pair["ok"]
        out["pairs"][side] = pair
    out["groups"] = {s: group_norms(r["grad_norms"]) for s, r in results.items()}
    return out


def sgemm(args):
    record, _ = run_child([args.swift_bin, "sgemm", "--size", "1024", "--repeats", "5"])
    return record


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        return tuple(float(x) for x in open("/proc/loadavg").read().split()[:3])
    except OSError:
        return os.getloadavg()


def busy_fraction(seconds=3.0):
    """Share of all CPUs busy over `seconds` (from /proc/stat), sampled before any side runs."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
        return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)
    except (OSError, ValueError, IndexError):
        return float("nan")


def swift_version():
    try:
        text = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout
        return text.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "Sources", "Package.swift"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return f"`{head}`" + (" with uncommitted changes under Sources/" if dirty else "")
    except OSError:
        return "unknown"


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def render(args, setups, checks, timing, sgemm_runs, loads, busy_before, started, elapsed):
    cores = os.cpu_count()
    swift_rec = next(iter(timing.values()))["swift"]["record"]
    torch_rec = next(iter(timing.values()))["torch"]["record"]
    jax_rec = next(iter(timing.values()))["jax"]["record"]
    sgemm_rates = [r["sgemm_gflops"] for r in sgemm_runs]
    sg = statistics.median(sgemm_rates)
    busy = not busy_before < 0.25  # CPUs busy before any side ran (NaN counts as busy: unknown)
    lines = [BEGIN, "", "## Gradient benchmark: Swift vs PyTorch vs JAX (issue 6)", "",
             f"Regenerated by `make bench` (`Benchmarks/run_bench.py`) on {started} UTC in {elapsed:.0f} s. "
             "One gradient sample = the image-classification loss of one mini-batch and its gradient with "
             "respect to every parameter (forward + backward), float32, on the CPU.", ""]
    if busy:
        lines += [f"**Measured under load**: {100 * busy_before:.0f} % of the {cores} CPUs were busy in the 3 s "
                  "before the run (other jobs were running), so absolute times "
                  "are inflated and noisy; interleaving the sides keeps the ratios roughly comparable, but "
                  "re-run `make bench` on an idle machine before quoting numbers. PyTorch is probably hit hardest: its "
                  "OpenMP workers spin-wait between operations, which costs most when the cores are oversubscribed.", ""]
    lines += ["### Machine and versions", "",
              f"* CPU: {cpu_model()}, {cores} cores ({platform.machine()}); load average (1 / 5 / 15 min) "
              f"{' / '.join(fmt(x) for x in loads[0])} before the run, {' / '.join(fmt(x) for x in loads[1])} at "
              "its end (the end includes the benchmark's own 2 threads); CPUs "
              f"{100 * busy_before:.0f} % busy in the 3 s before the run",
              f"* Swift code: commit {git_commit()}",
              f"* Threads: every side pinned to {THREADS} (`OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, "
              f"`MKL_NUM_THREADS` = {THREADS}; `torch.set_num_threads({THREADS})`; `taskset -c` on {THREADS} "
              "CPUs for all three, which also sizes XLA's CPU thread pool; `XLA_FLAGS` left unset — "
              "`--xla_cpu_multi_thread_eigen=false` would make XLA's matrix products single-threaded)",
              f"* BLAS core-type environment: `OPENBLAS_CORETYPE` = `{os.environ.get('OPENBLAS_CORETYPE', 'unset')}`, "
              f"`OPENBLAS_L2_SIZE` = `{os.environ.get('OPENBLAS_L2_SIZE', 'unset')}` (left as they were)",
              f"* Swift: {swift_version()}, release build; BLAS {swift_rec.get('blas_config', '?')}, "
              f"core type chosen at run time `{swift_rec.get('blas_core', '?')}`, {swift_rec.get('blas_threads', '?')} threads; "
              f"the encoder (dense, and the attribute MoE of (d)) runs its sequences in {swift_rec.get('lanes', '?')} lanes, one per core, each "
              "with single-threaded OpenBLAS (`Model.lanes`, `Sources/UniPerceiver/Encoder.swift`); "
              + ("the linears' forward and input gradient run the unpacked AVX-512 kernels of `Sources/CLinearKernel`, "
                 "their weight gradients OpenBLAS (`Kernels.LinearKernel`)"
                 if swift_rec.get('linear_kernel') == 'unpacked' else
                 "every linear runs on OpenBLAS (`Kernels.LinearKernel`: " + str(swift_rec.get('linear_kernel', '?')) + ")"),
              f"* PyTorch {torch_rec.get('torch')} (eager, Python {torch_rec.get('python')}, numpy {torch_rec.get('numpy')}); "
              f"BLAS: {torch_rec.get('blas')}; {torch_rec.get('blas_core')}; "
              f"{torch_rec.get('threads')} intra-op / {torch_rec.get('interop_threads')} inter-op threads",
              f"* JAX {jax_rec.get('jax')} / jaxlib {jax_rec.get('jaxlib')} (jit, backend {jax_rec.get('backend')}, "
              f"Python {jax_rec.get('python')}, numpy {jax_rec.get('numpy')}); {jax_rec.get('blas')}",
              f"* sgemm (OpenBLAS, 1024³, best of 5, {THREADS} threads), measured once per round in this run: "
              f"{', '.join(fmt(x, 1) for x in sgemm_rates)} GFLOP/s; median **{fmt(sg, 1)} GFLOP/s** is the "
              "denominator of \"% sgemm\"", "",
              "### Agreement (checked before timing)", "",
              f"Each side loads the same checkpoint and mini-batch (`.build/bench/<config>/`). Tolerances: loss "
              f"{LOSS_RTOL:g} relative, gradient norm of every parameter group (embeddings, each encoder layer, "
              f"predictor) {NORM_RTOL:g} relative, each peer against Swift. The worst single-parameter norm is shown for "
              "information.", "",
              "| config | Swift loss | PyTorch loss | JAX loss | loss rel. diff (PyTorch / JAX) | worst group-norm rel. diff (PyTorch / JAX) | worst parameter-norm rel. diff (PyTorch / JAX) | agree |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for key, check in checks.items():
        t, j = check["pairs"]["torch"], check["pairs"]["jax"]
        lines.append(
            f"| {key} | {check['loss']['swift']:.7f} | {check['loss']['torch']:.7f} | {check['loss']['jax']:.7f} | "
            f"{t['loss_rel']:.1e} / {j['loss_rel']:.1e} | {t['group_rel']:.1e} (`{t['worst_group']}`) / "
            f"{j['group_rel']:.1e} (`{j['worst_group']}`) | {t['param_rel']:.1e} / {j['param_rel']:.1e} | "
            f"{'yes' if check['ok'] else '**no**'} |")
    lines += ["", "### Speed and memory", "",
              f"{args.rounds} interleaved rounds; in each, every side runs in its own process ({args.warmup} untimed "
              f"warm-up passes, the first holding JAX's compilation, then {args.iterations} timed), order rotated "
              f"per round. ms = median of the {args.rounds * args.iterations} timed passes (range of the per-round "
              "medians in brackets). Speed ratio = peer ms ÷ Swift ms (> 1: Swift faster). Peak RSS = largest "
              "VmHWM of the side's processes, read by each process from /proc/self/status before it exits (whole "
              "process: interpreter and libraries included; not `ru_maxrss`, which would inherit this harness's "
              "own peak through vfork/exec).", "",
              "| config | side | ms per gradient sample | samples/s | GFLOP/s | % sgemm | Swift speed ÷ this | peak RSS MiB |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for key, desc, _, _ in CONFIGS:
        cfg, _, _, batch, ctoks, classes = setups[key]
        flops = 3 * forward_flops(cfg, batch, classes, ctoks)
        # Swift's last layer computes only the read rows unless it is an MoE layer (d: every layer).
        swift_flops = 3 * forward_flops(cfg, batch, classes, ctoks, read_rows_only=cfg.get("routing", "none") == "none")
        res = timing[key]
        ms = {s: res[s]["ms"] for s in SIDES}
        for side in SIDES:
            r = res[side]
            gflops = (swift_flops if side == "swift" else flops) / (ms[side] / 1e3) / 1e9
            ratio = "—" if side == "swift" else f"{ms[side] / ms['swift']:.2f}×"
            lines.append(
                f"| ({key}) {desc} | {PEER_NAMES[side]} | {fmt(ms[side], 3)} [{fmt(min(r['round_ms']), 3)}–"
                f"{fmt(max(r['round_ms']), 3)}] | {fmt(1e3 / ms[side], 1)} | {fmt(gflops)} | "
                f"{fmt(100 * gflops / sg, 1)} | {ratio} | {fmt(r['rss'], 1)} |")
        faster = min(SIDES[1:], key=lambda s: ms[s])
        speed = ms[faster] / ms["swift"]
        gflops_swift = swift_flops / (ms["swift"] / 1e3) / 1e9
        verdicts.append((key, faster, speed, 100 * gflops_swift / sg, res["swift"]["rss"], res[faster]["rss"],
                         flops / 1e9, swift_flops / 1e9))
    lines += ["", FLOP_FORMULA + " GFLOP per sample (peers / Swift): " +
              ", ".join(f"({v[0]}) {fmt(v[6], 3)} / {fmt(v[7], 3)}" for v in verdicts) + ".", "",
              "### Targets (issue 6), as measured in this run", "",
              "| config | faster peer | Swift speed ÷ faster peer (target) | Swift % sgemm | Swift peak RSS ≤ faster peer's |",
              "| --- | --- | ---: | ---: | --- |"]
    for key, faster, speed, pct, rss_s, rss_p, _, _ in verdicts:
        target = TARGETS.get(key)
        pct_cell = f"{fmt(pct, 1)} % (target ≥ 60 %: {'met' if pct >= 60 else '**missed**'})" if key == "c" else f"{fmt(pct, 1)} %"
        lines.append(
            f"| {key} | {PEER_NAMES[faster]} | {speed:.2f}× "
            f"({'no target in the issue' if target is None else ('≥ %s×: ' % target) + ('met' if speed >= target else '**missed**')}) | "
            f"{pct_cell} | {fmt(rss_s, 1)} vs {fmt(rss_p, 1)} MiB: {'met' if rss_s <= rss_p else '**missed**'} |")
    lines += ["", "Reading: " + reading(verdicts, busy), "", END]
    return "\n".join(lines)


def reading(verdicts, busy):
    met = [k for k, _, s, *_ in verdicts if k in TARGETS and s >= TARGETS[k]]
    missed = [k for k, _, s, *_ in verdicts if k in TARGETS and s < TARGETS[k]]
    pct_c = next((v[3] for v in verdicts if v[0] == "c"), None)
    rss_ok = all(v[4] <= v[5] for v in verdicts)
    parts = []
    if met:
        parts.append("the speed target is met on " + ", ".join(f"({k})" for k in met))
    if missed:
        parts.append("the speed target is missed on " + ", ".join(
            f"({k}) ({next(v[2] for v in verdicts if v[0] == k):.2f}× against ≥ {TARGETS[k]}×)" for k in missed))
    if pct_c is not None:
        parts.append(f"Swift reaches {pct_c:.1f} % of the measured sgemm rate on (c) "
                     f"({'met' if pct_c >= 60 else 'missed'}: target ≥ 60 %)")
    parts.append("peak resident memory is " + ("at or below" if rss_ok else "above") +
                 " the faster peer's on every configuration" + ("" if rss_ok else " on at least one configuration"))
    text = "; ".join(parts) + "."
    if busy:
        text += " These numbers were taken on a loaded machine; treat them as provisional."
    return text[0].upper() + text[1:]


def write_report(body):
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    old = open(REPORT).read() if os.path.exists(REPORT) else "# Benchmarks\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + body + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + body + "\n"
    tmp = REPORT + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, REPORT)


# ------------------------------------------------------------------------------------------------

def default_torch_python():
    for candidate in [os.environ.get("TORCH_PYTHON"), "/opt/refvenv/bin/python", sys.executable]:
        if candidate and os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import torch, safetensors, numpy"], capture_output=True).returncode == 0:
            return candidate
    sys.exit("no Python with torch, safetensors and numpy (set TORCH_PYTHON or install torch into .venv-bench)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--swift-bin", default=os.path.join(ROOT, ".build", "release", "GradientBenchmark"))
    p.add_argument("--torch-python", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--configs", default="abcd", help="subset of a, b, c, d")
    p.add_argument("--no-report", action="store_true", help="print, do not write reports/benchmarks.md")
    args = p.parse_args()
    args.torch_python = args.torch_python or default_torch_python()
    if not os.access(args.swift_bin, os.X_OK):
        sys.exit(f"{args.swift_bin} missing: build it first (swift build -c release)")
    global CONFIGS
    CONFIGS = [c for c in CONFIGS if c[0] in args.configs]

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    t0 = time.time()
    loads = [load_average()]
    busy_before = busy_fraction()
    setups = write_inputs(os.path.join(ROOT, ".build", "bench"))
    print(f"inputs written; torch python {args.torch_python}; jax python {sys.executable}", flush=True)

    checks = {}
    for key, desc, _, _ in CONFIGS:
        _, ckpt, bfile, *_ = setups[key]
        results = {s: run_child(side_command(s, args, ckpt, bfile, 0, 1))[0] for s in SIDES}
        checks[key] = agreement(results)
        c = checks[key]
        print(f"({key}) losses " + ", ".join(f"{s} {c['loss'][s]:.7f}" for s in SIDES) + "; " +
              "; ".join(f"{s}: loss rel {v['loss_rel']:.1e}, worst group {v['group_rel']:.1e} ({v['worst_group']})"
                        for s, v in c["pairs"].items()), flush=True)
    if not all(c["ok"] for c in checks.values()):
        sys.exit(f"the three sides disagree (tolerances: loss {LOSS_RTOL:g}, group norms {NORM_RTOL:g}); no timing")

    samples = {k: {s: {"times": [], "round_ms": [], "rss": 0.0, "record": None} for s in SIDES} for k in setups}
    sgemm_runs = []
    for rnd in range(args.rounds):
        sgemm_runs.append(sgemm(args))
        order = SIDES[rnd % 3:] + SIDES[:rnd % 3]
        for key, desc, _, _ in CONFIGS:
            _, ckpt, bfile, *_ = setups[key]
            for side in order:
                record, rss = run_child(side_command(side, args, ckpt, bfile, args.warmup, args.iterations))
                slot = samples[key][side]
                slot["times"] += record["times_ms"]
                slot["round_ms"].append(statistics.median(record["times_ms"]))
                slot["rss"] = max(slot["rss"], rss)
                slot["record"] = record
            print(f"round {rnd + 1}/{args.rounds} ({key}): " + ", ".join(
                f"{s} {samples[key][s]['round_ms'][-1]:.3f} ms" for s in SIDES), flush=True)
    timing = {k: {s: dict(v, ms=statistics.median(v["times"])) for s, v in sides.items()} for k, sides in samples.items()}
    loads.append(load_average())
    with open(os.path.join(ROOT, ".build", "bench", "results.json"), "w") as f:  # raw numbers, for audit
        json.dump({"checks": checks, "timing": timing, "sgemm": sgemm_runs, "loads": loads,
                   "busy_before": busy_before}, f, indent=1)
    body = render(args, setups, checks, timing, sgemm_runs, loads, busy_before, started, time.time() - t0)
    if args.no_report:
        print(body)
    else:
        write_report(body)
        print(f"wrote {os.path.relpath(REPORT, ROOT)}")


if __name__ == "__main__":
    main()

"""Shared by the PyTorch and JAX peers: command line, the two input files, timing and the JSON line.

Both peers read the files Benchmarks/run_bench.py writes (the Swift side reads the same ones):

* checkpoint: safetensors, F32 tensors under the contract's names (Sources/UniPerceiver/README.md),
  the model configuration as JSON in __metadata__["config"] (Sources/Training/Checkpoint.swift).
* batch: safetensors with images F32 [B, C, S, S], labels I64 [B], class_tokens I64 [K, Lmax]
  (padded with 0) and class_lengths I64 [K] (tokens including EOT; the model prepends <SPE>).

Each peer prints one JSON object on stdout: side, loss, grad_norms {name: L2 norm}, times_ms (one
entry per timed forward+backward), warm-up/compile time, versions and threading facts.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

LN_EPS = 1e-5
SCALE_CAP = 100.0
LABEL_SMOOTHING = 0.1


def parse_args(side):
    p = argparse.ArgumentParser(description=f"{side} peer of the gradient benchmark (issue 6)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def load_inputs(args):
    """(config dict, {name: float32 array} in file order, batch dict of numpy arrays)."""
    with safe_open(args.checkpoint, framework="numpy") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        sys.exit(f"{args.checkpoint}: no __metadata__['config']")
    cfg = json.loads(meta["config"])
    if cfg.get("routing", "none") not in ("none", "attribute") or cfg.get("moe_layers", "all") != "all":
        sys.exit(f"{args.checkpoint}: routing {cfg['routing']!r} on {cfg.get('moe_layers')!r} layers; the peers "
                 "implement the dense model and attribute routing on every layer only")
    weights = load_file(args.checkpoint)
    for name, w in weights.items():
        if w.dtype != np.float32:
            sys.exit(f"{args.checkpoint}: {name} is {w.dtype}, expected float32")
    batch = load_file(args.batch)
    return cfg, weights, batch


def spatial_table(cfg):
    """Fixed sin-cos table [(S/p)^2, D], raster order (row u, column v), float32."""
    d = cfg["hidden_size"] // 4
    g = cfg["image_size"] // cfg["patch_size"]
    omega = np.array([10000.0 ** (-k / d) for k in range(d)])
    rows = [np.concatenate([np.sin(u * omega), np.cos(u * omega), np.sin(v * omega), np.cos(v * omega)])
            for u in range(g) for v in range(g)]
    return np.stack(rows).astype(np.float32)


def class_layout(batch):
    """ids [K, Lmax], positions [K, Lmax], key validity [K, 1 + Lmax] (SPE column always valid)."""
    tokens = batch["class_tokens"].astype(np.int64)
    lengths = batch["class_lengths"].astype(np.int64)
    k, lmax = tokens.shape
    valid = np.zeros((k, 1 + lmax), dtype=bool)
    valid[:, 0] = True
    for i, n in enumerate(lengths):
        valid[i, 1:1 + n] = True
    positions = np.broadcast_to(np.arange(lmax), (k, lmax)).copy()
    return tokens, positions, valid


def timed(step, warmup, iterations):
    """Runs `step` warmup times (first call timed separately: it holds any compilation), then
    `iterations` timed calls. Returns (first_ms, times_ms)."""
    start = time.perf_counter()
    step()
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(max(warmup - 1, 0)):
        step()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return first_ms, times


def norms(named_grads):
    return {name: float(np.sqrt(np.sum(np.asarray(g, dtype=np.float64) ** 2))) for name, g in named_grads.items()}


def peak_resident_mib():
    """VmHWM of /proc/self/status in MiB: this process's own peak since exec. (`ru_maxrss` seen by the
    parent would carry over the parent's peak through vfork/exec.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def emit(record):
    record.setdefault("peak_rss_mib", peak_resident_mib())
    record.setdefault("python", platform.python_version())
    record.setdefault("numpy", np.__version__)
    record.setdefault("env", {k: os.environ.get(k) for k in
                              ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS",
                               "OPENBLAS_CORETYPE"]})
    loss = record.get("loss")
    if loss is None or not math.isfinite(loss):
        print(json.dumps(record, sort_keys=True))
        sys.exit("non-finite loss")
    print(json.dumps(record, sort_keys=True))


# Attribute routing (uniperceiver-model.md §5, image classification only): the gate of `qkv_proj`
# decides for the attention pair, the gate of `ffn.dense` for the FFN pair; the gate input is the
# segment's 8-bit attribute vector, so each side (images, class names) has one decision per layer and
# the chosen experts are merged once (no noise: the Swift side's forward without RoutingNoise).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "UniPerceiverTests",
                                "Fixtures"))
from contract import ATTRIBUTES  # noqa: E402

ROUTED = (("attention.self.qkv_proj", ("attention.self.qkv_proj", "attention.output.dense")),
          ("ffn.dense", ("ffn.dense", "ffn.dense2")))


def attribute_vector(side):
    """The attribute vector of image classification's only segment on `side` ("input" or "target")."""
    (vector,) = ATTRIBUTES[("image-classification", side)]
    return np.asarray(vector, dtype=np.float32)


#!/usr/bin/env python3
"""Damaged-input campaign for the `interference` binary: run on purpose, not by CI.

Copies a committed input, changes a few of its bytes (random bytes, one flipped bit in the first
4 KiB, or a truncation), runs the command that reads it, and records every run that ends other
than a user would expect: a signal, an exit code other than 0, 1 or 2, a refusal (exit 2) whose
error is not exactly one line, or no end within the time limit. Failing inputs are kept for
replay. Deterministic for a seed.

    python3 Tests/CLITests/Fuzz/fuzz_inputs.py --kind probe --count 500 --seed 1 \
        --binary .build/release/interference [--compare] [--source FILE]

With --compare, runs that end in 0 are split into those whose output is the undamaged file's
and those whose output changed: damage that went unnoticed (probe, interference and shard compare
the output file, the other kinds the standard output; needs h5py for probe and shard).

Kinds: probe (analyze a probe file), interference (report), baseline (check), data (evaluate a
checkpoint on a damaged dataset), checkpoint (evaluate a damaged copy of that checkpoint), shard
(merge a damaged shard with a sound one; both probed first from the checkpoint). The last three
need a checkpoint trained on notebooks-data/digits.h5 (--checkpoint; `interference train --model
dense --data notebooks-data/digits.h5 --steps 2 --config tiny --out DIR` makes one). Copy the binary
elsewhere first if you rebuild during a campaign.
"""
import argparse
import os
import random
import shutil
import subprocess
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def make_shards(binary, checkpoint, folder):
    """Two shards of a small probe (layer 0, 4 mini-batches of 4 per task), for --kind shard."""
    paths = [os.path.join(folder, f"shard{k}.h5") for k in (1, 2)]
    for k, path in zip((1, 2), paths):
        subprocess.run(
            [binary, "probe", "--checkpoint", checkpoint, "--data", os.path.join(ROOT, "notebooks-data/digits.h5"),
             "--tasks", "image-classification,mlm,captioning", "--samples", "4", "--batch-size", "4",
             "--parameters", "encoder.layers.0.*", "--shard", f"{k}/2", "--out", path, "--quiet"], check=True)
    return paths


def commands(binary, checkpoint, shards):
    data = os.path.join(ROOT, "notebooks-data/digits.h5")
    baseline = os.path.join(ROOT, "Tests/CLITests/Baselines/interference.h5")
    return {
        "probe": (os.path.join(ROOT, "Tests/InterferenceTests/Fixtures/probe_dense_demo.h5"),
                  lambda f, out: [binary, "analyze", f, "--out", f"{out}/i.h5", "--bootstrap", "20"]),
        "interference": (os.path.join(ROOT, "reports/demo/dense.h5"),
                         lambda f, out: [binary, "report", f, "--out", f"{out}/r.md"]),
        "baseline": (baseline,
                     lambda f, out: [binary, "check", "--baseline", f, "--candidate", baseline, "--tolerance", "0.01"]),
        "data": (data, lambda f, out: [binary, "evaluate", "--checkpoint", checkpoint, "--data", f]),
        "checkpoint": (checkpoint, lambda f, out: [binary, "evaluate", "--checkpoint", f, "--data", data]),
        "shard": (shards[0] if shards else None,
                  lambda f, out: [binary, "merge", f, shards[1], "--out", f"{out}/merged.h5"]),
    }


def datasets(path, floats_only):
    """Every dataset of an HDF5 file as bytes (numbers) or its repr (strings), by name."""
    import h5py
    import numpy as np
    found = {}
    with h5py.File(path, "r") as f:
        def keep(name, o):
            if not isinstance(o, h5py.Dataset) or (floats_only and o.dtype.kind != "f"):
                return
            found[name] = np.asarray(o[()]).tobytes() if o.dtype.kind in "fiu" else repr(o[()])
        f.visititems(keep)
    return sorted(found.items())


def signature(kind, work, stdout, damaged):
    """What a run produced, for --compare: its output with the run's own paths blanked."""
    text = stdout.replace(work, "WORK").replace(damaged, "INPUT")
    if kind == "probe":  # analyze: every floating-point dataset of the interference file
        return text, datasets(os.path.join(work, "i.h5"), floats_only=True)
    if kind == "interference":
        return text, open(os.path.join(work, "r.md")).read().replace(work, "WORK").replace(damaged, "INPUT")
    if kind == "shard":  # merge: every dataset of the merged file (its printout carries a timing)
        return datasets(os.path.join(work, "merged.h5"), floats_only=False)
    return text


def damage(data, rng):
    b = bytearray(data)
    mode = rng.random()
    if mode < 0.6:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif mode < 0.8:
        b[rng.randrange(min(len(b), 4096))] ^= 1 << rng.randrange(8)
    else:
        b = b[: rng.randrange(len(b))]
    return bytes(b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", required=True, choices=["probe", "interference", "baseline", "data", "checkpoint", "shard"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/interference"))
    parser.add_argument("--checkpoint", help="checkpoint trained on digits.h5, for --kind data, checkpoint and shard")
    parser.add_argument("--source", help="damage this file instead of the kind's committed one (same command)")
    parser.add_argument("--keep", default="fuzz-failures", help="folder for failing inputs")
    parser.add_argument("--timeout", type=float, default=150)
    parser.add_argument("--compare", action="store_true",
                        help="split exit 0 into runs whose output equals the undamaged file's and runs whose output changed")
    args = parser.parse_args()
    if args.kind in ("data", "checkpoint", "shard") and not args.checkpoint:
        parser.error(f"--kind {args.kind} needs --checkpoint")
    binary = os.path.abspath(args.binary)
    shards = make_shards(binary, args.checkpoint, tempfile.mkdtemp(prefix="fuzz-shards-")) if args.kind == "shard" else None
    source, command = commands(binary, args.checkpoint, shards)[args.kind]
    source = args.source or source
    original = open(source, "rb").read()
    rng = random.Random(args.seed)
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
    outcomes = {"exit 0": 0, "exit 1": 0, "exit 2": 0, "failure": 0}
    if args.compare:
        outcomes.update({"exit 0, same output": 0, "exit 0, output changed": 0})
        work = tempfile.mkdtemp(prefix="fuzz-")
        damaged = os.path.join(work, "input" + os.path.splitext(source)[1])
        open(damaged, "wb").write(original)
        run = subprocess.run(command(damaged, work), capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr
        clean = signature(args.kind, work, run.stdout, damaged)
        shutil.rmtree(work)
    for i in range(args.count):
        work = tempfile.mkdtemp(prefix="fuzz-")
        damaged = os.path.join(work, "input" + os.path.splitext(source)[1])
        open(damaged, "wb").write(damage(original, rng))
        try:
            run = subprocess.run(command(damaged, work), capture_output=True, text=True, timeout=args.timeout, env=env)
            code, lines = run.returncode, run.stderr.strip().splitlines()
        except subprocess.TimeoutExpired:
            code, lines = "timeout", []
        if code in (0, 1) or (code == 2 and len(lines) == 1):
            outcomes[f"exit {code}"] += 1
            if args.compare and code == 0:
                same = signature(args.kind, work, run.stdout, damaged) == clean
                outcomes["exit 0, same output" if same else "exit 0, output changed"] += 1
        else:
            outcomes["failure"] += 1
            os.makedirs(args.keep, exist_ok=True)  # only when there is something to keep
            kept = os.path.join(args.keep, f"{args.kind}-{args.seed}-{i}" + os.path.splitext(source)[1])
            shutil.copy(damaged, kept)
            print(f"FAILURE {args.kind} #{i}: {code} {lines[:2]} -> {kept}", flush=True)
        shutil.rmtree(work)
    print(f"{args.kind} seed {args.seed}: {args.count} runs; " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))


if __name__ == "__main__":
    main()

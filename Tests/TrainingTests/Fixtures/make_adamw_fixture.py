"""Golden AdamW steps from torch.optim.AdamW, for Tests/TrainingTests/OptimizerTests.swift.

Written from ../../../../shared/design/uniperceiver-model.md §4 and §5.2, not from the Swift code:
torch AdamW with betas (0.9, 0.95), eps 1e-6, weight decay 0.05, and no decay on norms, biases,
embeddings, logit scales, LayerScale gammas and the MoE gates (their own optimiser group). The
parameters are the attribute-routed MoE fixture checkpoint's (experts and gates included), in
float64; the gradients of five steps are seeded Gaussians rounded to Float32, the learning rate
changes every step as a schedule would.

    python Tests/TrainingTests/Fixtures/make_adamw_fixture.py   # writes adamw.safetensors beside it

Output tensors: `param.<name>` (the initial Float32 values), `grad.<step>.<name>` (F32, steps 1..5),
`after.<step>.<name>` (F64, the parameters after that step), `exp_avg.<name>` and `exp_avg_sq.<name>`
(F64, after the last step), `lr` (F64 [5]); metadata: the settings, which tensors decay (JSON list),
torch version and the script's SHA-256.
"""

import hashlib
import json
import os

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINT = os.path.join(HERE, "..", "..", "UniPerceiverTests", "Fixtures", "moe_attribute_tiny.safetensors")
BETAS, EPS, WEIGHT_DECAY = (0.9, 0.95), 1e-6, 0.05
LEARNING_RATES = [1e-3, 2e-3, 1.5e-3, 5e-4, 1e-4]
SEED = 20261206


def decays(name):
    """§4: no decay on norms, biases, embeddings, logit scales, gammas; §5.2: none on the gates."""
    if name.endswith(".bias") or "residual_scale" in name:
        return False
    if ".gate." in name:
        return False
    if "LayerNorm" in name or "embeddings_norm" in name or "ln_post" in name:
        return False
    if name.startswith("token_embed.") or name.startswith("video_embed.embeddings_st_pos"):
        return False
    if name.startswith("predictor.logit_scale"):
        return False
    return True


def main():
    torch.set_num_threads(1)
    initial = load_file(CHECKPOINT)
    names = list(initial.keys())
    params = {n: torch.nn.Parameter(initial[n].double().clone()) for n in names}
    decayed = [n for n in names if decays(n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": [params[n] for n in names if n in decayed], "weight_decay": WEIGHT_DECAY},
            {"params": [params[n] for n in names if n not in decayed], "weight_decay": 0.0},
        ],
        lr=LEARNING_RATES[0], betas=BETAS, eps=EPS, foreach=False)
    gen = torch.Generator().manual_seed(SEED)
    out = {f"param.{n}": initial[n].float().contiguous() for n in names}
    for step, lr in enumerate(LEARNING_RATES, start=1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        for n in names:
            g = (torch.randn(initial[n].shape, generator=gen, dtype=torch.float64) * 0.1).float()
            out[f"grad.{step}.{n}"] = g.contiguous()
            params[n].grad = g.double()
        optimizer.step()
        for n in names:
            out[f"after.{step}.{n}"] = params[n].detach().clone().contiguous()
    for n in names:
        state = optimizer.state[params[n]]
        out[f"exp_avg.{n}"] = state["exp_avg"].detach().clone().contiguous()
        out[f"exp_avg_sq.{n}"] = state["exp_avg_sq"].detach().clone().contiguous()
    out["lr"] = torch.tensor(LEARNING_RATES, dtype=torch.float64)
    script = hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest()
    metadata = {
        "betas": json.dumps(BETAS), "eps": repr(EPS), "weight_decay": repr(WEIGHT_DECAY),
        "decayed": json.dumps(decayed), "names": json.dumps(names), "seed": str(SEED),
        "torch": torch.__version__, "script_sha256": script,
    }
    save_file(out, os.path.join(HERE, "adamw.safetensors"), metadata=metadata)
    print(f"{len(names)} tensors, {len(decayed)} decayed, {len(LEARNING_RATES)} steps -> adamw.safetensors")


if __name__ == "__main__":
    main()

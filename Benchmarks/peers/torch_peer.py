"""PyTorch peer (eager, float32) of the gradient benchmark, issue 6.

The dense small Uni-Perceiver's image-classification loss and its gradient with respect to every
parameter, following the contract in Sources/UniPerceiver/README.md. The model code is the float64
reference of Tests/UniPerceiverTests/Fixtures/make_fixtures.py (EncoderLayer.forward, tokenizers,
feature head, ls_cross_entropy), restricted to image classification and switched to float32; the
parameters are a flat {contract name: tensor} dict instead of the nested module tree.

    python Benchmarks/peers/torch_peer.py --checkpoint CKPT --batch BATCH [--iterations 20]

Prints one JSON line (see common.py). Threads: torch.set_num_threads(--threads), one inter-op thread.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (LABEL_SMOOTHING, LN_EPS, ROUTED, SCALE_CAP, attribute_vector, class_layout, emit,  # noqa: E402
                    load_inputs, norms, parse_args, spatial_table, timed)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def layer_norm(x, p, prefix):
    return F.layer_norm(x, (x.shape[-1],), p[prefix + ".weight"], p[prefix + ".bias"], LN_EPS)


def encoder_layer(p, n, x, allowed, num_heads):
    """x [N, L, D]; allowed [N, L, L] bool or None (every key allowed)."""
    pre = f"encoder.layers.{n}."
    b, length, d = x.shape
    hd = d // num_heads
    a = layer_norm(x, p, pre + "LayerNormModules.0")
    qkv = F.linear(a, p[pre + "attention.self.qkv_proj.weight"], p[pre + "attention.self.qkv_proj.bias"])
    q, k, v = qkv.reshape(b, length, 3, num_heads, hd).permute(2, 0, 3, 1, 4)  # each [N, H, L, hd]
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, None, :, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    o = (probs @ v).transpose(1, 2).reshape(b, length, d)
    h = x + p[pre + "attention_output.residual_scale"] * F.linear(
        o, p[pre + "attention.output.dense.weight"], p[pre + "attention.output.dense.bias"])
    c = layer_norm(h, p, pre + "LayerNormModules.1")
    ffn = F.linear(F.gelu(F.linear(c, p[pre + "ffn.dense.weight"], p[pre + "ffn.dense.bias"])),
                   p[pre + "ffn.dense2.weight"], p[pre + "ffn.dense2.bias"])  # exact (erf) GELU
    return h + p[pre + "ffn_output.residual_scale"] * ffn


def merged(p, n, attributes, k):
    """`p` with layer n's four routed linears replaced by the merge of their top-k experts (attribute
    routing: Linear(8→D) → LayerNorm → Linear(D→E) → softmax; top-k on the logits; renormalised)."""
    pre = f"encoder.layers.{n}."
    q = dict(p)
    for gate_role, roles in ROUTED:
        g = pre + gate_role + ".gate."
        c = layer_norm(F.linear(attributes, p[g + "tag_transform.0.weight"], p[g + "tag_transform.0.bias"]), p,
                       g + "tag_transform.1")
        logits = F.linear(c, p[g + "wg.weight"])
        top = torch.topk(logits, k).indices.tolist()
        w = torch.softmax(logits, dim=-1)[top]
        w = w / w.sum()
        for role in roles:
            for leaf in ("weight", "bias"):
                q[pre + role + "." + leaf] = sum(w[i] * p[f"{pre}{role}.experts.{e}.{leaf}"] for i, e in enumerate(top))
    return q


class Loss:
    """Everything that does not depend on the parameters is prepared once, outside the timed loop."""

    def __init__(self, cfg, batch):
        self.cfg = cfg
        self.images = torch.from_numpy(batch["images"])
        self.labels = torch.from_numpy(batch["labels"].astype("int64"))
        ids, pos, valid = class_layout(batch)
        self.ids, self.pos = torch.from_numpy(ids), torch.from_numpy(pos)
        v = torch.from_numpy(valid)
        self.allowed = v[:, None, :].expand(-1, v.shape[1], -1)
        self.spatial = torch.from_numpy(spatial_table(cfg))

    def __call__(self, p):
        cfg = self.cfg
        d, heads = cfg["hidden_size"], cfg["num_heads"]
        pz = cfg["patch_size"]

        def shared_ln(x):
            return layer_norm(x, p, "token_embed.embeddings_norm")

        def spe(count):
            return shared_ln(p["token_embed.embeddings.weight"][cfg["vocab_size"] - 1]).expand(count, 1, d)

        def encode(x, allowed, side):
            routed = cfg.get("routing", "none") == "attribute"
            attributes = torch.from_numpy(attribute_vector(side)) if routed else None
            for n in range(cfg["num_layers"]):
                x = encoder_layer(merged(p, n, attributes, cfg["top_k"]) if routed else p, n, x, allowed, heads)
            return x

        def feature(h0):
            return F.linear(layer_norm(h0, p, "predictor.ln_post"), p["predictor.proj.weight"], p["predictor.proj.bias"])

        # image sequences [SPE, I]
        b, c, s, _ = self.images.shape
        g = s // pz
        patches = self.images.reshape(b, c, g, pz, g, pz).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * pz * pz)
        e = (F.linear(patches, p["video_embed.embeddings.weight"], p["video_embed.embeddings.bias"]) + self.spatial
             + p["video_embed.embeddings_st_pos.temporal_pos_embed"][0])
        x = torch.cat([spe(b), shared_ln(e)], dim=1)
        u = feature(encode(x, None, "input")[:, 0])
        # class-name sequences [SPE, name..., EOT], padded keys masked
        t = (p["token_embed.embeddings.weight"][self.ids]
             + p["token_embed.embeddings_pos.position_embeddings.weight"][self.pos]
             + p["token_embed.embeddings_token_type.weight"][0])
        y = torch.cat([spe(self.ids.shape[0]), shared_ln(t)], dim=1)
        w = feature(encode(y, self.allowed, "target")[:, 0])
        scale = torch.clamp(torch.exp(p["predictor.logit_scale_img_cls"][0]), max=SCALE_CAP)
        logits = scale * (F.normalize(u, dim=-1, eps=1e-12) @ F.normalize(w, dim=-1, eps=1e-12).T)
        logp = torch.log_softmax(logits, dim=-1)
        nll = -logp.gather(1, self.labels[:, None])[:, 0]
        return ((1 - LABEL_SMOOTHING) * nll + LABEL_SMOOTHING * (-logp.mean(dim=-1))).mean()


def blas_name():
    """The BLAS line of torch's build configuration (e.g. the MKL version), or BLAS_INFO."""
    config = torch.__config__.show()
    for line in config.splitlines():
        if "Math Kernel Library" in line or "OpenBLAS" in line:
            return line.strip(" -")
    for item in config.replace(",", "\n").splitlines():
        if "BLAS_INFO=" in item:
            return item.strip()
    return "unknown"


def main():
    args = parse_args("PyTorch")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    cfg, weights, batch = load_inputs(args)
    names = list(weights)
    params = {n: torch.from_numpy(weights[n]).requires_grad_(True) for n in names}
    leaves = [params[n] for n in names]
    loss_fn = Loss(cfg, batch)

    loss = loss_fn(params)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grad_norms = norms({n: (torch.zeros_like(params[n]) if g is None else g).numpy() for n, g in zip(names, grads)})

    def step():
        value = loss_fn(params)
        torch.autograd.grad(value, leaves, allow_unused=True)

    first_ms, times = timed(step, args.warmup, args.iterations)
    emit({
        "side": "torch", "loss": float(loss.item()), "grad_norms": grad_norms, "times_ms": times,
        "first_ms": first_ms, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "blas": blas_name(),
        "blas_core": "ATen CPU capability " + torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "parameters": int(sum(w.size for w in weights.values())),
    })


if __name__ == "__main__":
    main()

"""JAX peer (jit, float32) of the gradient benchmark, issue 6.

The same dense image-classification loss as torch_peer.py (the contract of
Sources/UniPerceiver/README.md, module structure of Tests/UniPerceiverTests/Fixtures/make_fixtures.py),
written with jax.numpy over a flat {contract name: array} dict; jax.jit(jax.value_and_grad(loss)).

    python Benchmarks/peers/jax_peer.py --checkpoint CKPT --batch BATCH [--iterations 20]

Prints one JSON line (see common.py). The first call holds the compilation; it is reported as
first_ms and never timed. Threads: XLA's CPU thread pool is sized by the harness through the
environment (XLA_FLAGS) and taskset; see Benchmarks/run_bench.py.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (LABEL_SMOOTHING, LN_EPS, ROUTED, SCALE_CAP, attribute_vector, class_layout, emit,  # noqa: E402
                    load_inputs, norms, parse_args, spatial_table, timed)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", False)


def layer_norm(x, p, prefix):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)  # biased, as torch
    return (x - mu) * jax.lax.rsqrt(var + LN_EPS) * p[prefix + ".weight"] + p[prefix + ".bias"]


def linear(x, p, prefix):
    return x @ p[prefix + ".weight"].T + p[prefix + ".bias"]


def encoder_layer(p, n, x, allowed, num_heads):
    """x [N, L, D]; allowed [N, L] key validity or None (every key allowed)."""
    pre = f"encoder.layers.{n}."
    b, length, d = x.shape
    hd = d // num_heads
    a = layer_norm(x, p, pre + "LayerNormModules.0")
    qkv = linear(a, p, pre + "attention.self.qkv_proj").reshape(b, length, 3, num_heads, hd)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [N, L, H, hd]
    scores = jnp.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(hd)
    if allowed is not None:
        scores = jnp.where(allowed[:, None, None, :], scores, -jnp.inf)
    probs = jax.nn.softmax(scores, axis=-1)
    o = jnp.einsum("nhqk,nkhd->nqhd", probs, v).reshape(b, length, d)
    h = x + p[pre + "attention_output.residual_scale"] * linear(o, p, pre + "attention.output.dense")
    c = layer_norm(h, p, pre + "LayerNormModules.1")
    ffn = linear(jax.nn.gelu(linear(c, p, pre + "ffn.dense"), approximate=False), p, pre + "ffn.dense2")
    return h + p[pre + "ffn_output.residual_scale"] * ffn


def merged(p, n, attributes, k, experts):
    """`p` with layer n's four routed linears replaced by the merge of their top-k experts (attribute
    routing: Linear(8→D) → LayerNorm → Linear(D→E) → softmax; top-k on the logits; renormalised)."""
    pre = f"encoder.layers.{n}."
    q = dict(p)
    for gate_role, roles in ROUTED:
        g = pre + gate_role + ".gate."
        c = layer_norm(linear(attributes, p, g + "tag_transform.0"), p, g + "tag_transform.1")
        logits = c @ p[g + "wg.weight"].T
        _, top = jax.lax.top_k(logits, k)
        w = jax.nn.softmax(logits)[top]
        w = w / jnp.sum(w)
        for role in roles:
            for leaf in ("weight", "bias"):
                stacked = jnp.stack([p[f"{pre}{role}.experts.{e}.{leaf}"] for e in range(experts)])
                q[pre + role + "." + leaf] = jnp.tensordot(w, stacked[top], axes=1)
    return q


def make_loss(cfg):
    d, heads, pz = cfg["hidden_size"], cfg["num_heads"], cfg["patch_size"]
    spatial = jnp.asarray(spatial_table(cfg))

    def loss(p, images, labels, ids, pos, valid):
        def shared_ln(x):
            return layer_norm(x, p, "token_embed.embeddings_norm")

        def spe(count):
            e = shared_ln(p["token_embed.embeddings.weight"][cfg["vocab_size"] - 1])
            return jnp.broadcast_to(e, (count, 1, d))

        def encode(x, allowed, side):
            routed = cfg.get("routing", "none") == "attribute"
            attributes = jnp.asarray(attribute_vector(side)) if routed else None
            for n in range(cfg["num_layers"]):
                q = merged(p, n, attributes, cfg["top_k"], cfg["num_experts"]) if routed else p
                x = encoder_layer(q, n, x, allowed, heads)
            return x

        def feature(h0):
            return linear(layer_norm(h0, p, "predictor.ln_post"), p, "predictor.proj")

        b, c, s, _ = images.shape
        g = s // pz
        patches = images.reshape(b, c, g, pz, g, pz).transpose(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * pz * pz)
        e = linear(patches, p, "video_embed.embeddings") + spatial + p["video_embed.embeddings_st_pos.temporal_pos_embed"][0]
        u = feature(encode(jnp.concatenate([spe(b), shared_ln(e)], axis=1), None, "input")[:, 0])
        t = (p["token_embed.embeddings.weight"][ids]
             + p["token_embed.embeddings_pos.position_embeddings.weight"][pos]
             + p["token_embed.embeddings_token_type.weight"][0])
        w = feature(encode(jnp.concatenate([spe(ids.shape[0]), shared_ln(t)], axis=1), valid, "target")[:, 0])

        def normalize(x):
            return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

        scale = jnp.minimum(jnp.exp(p["predictor.logit_scale_img_cls"][0]), SCALE_CAP)
        logits = scale * (normalize(u) @ normalize(w).T)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
        return jnp.mean((1 - LABEL_SMOOTHING) * nll + LABEL_SMOOTHING * (-jnp.mean(logp, axis=-1)))

    return loss


def main():
    args = parse_args("JAX")
    cfg, weights, batch = load_inputs(args)
    params = {n: jnp.asarray(w) for n, w in weights.items()}
    ids, pos, valid = class_layout(batch)
    inputs = (jnp.asarray(batch["images"]), jnp.asarray(batch["labels"].astype("int32")),
              jnp.asarray(ids.astype("int32")), jnp.asarray(pos.astype("int32")), jnp.asarray(valid))
    grad_fn = jax.jit(jax.value_and_grad(make_loss(cfg)))

    def step():
        return jax.block_until_ready(grad_fn(params, *inputs))

    first_ms, times = timed(step, args.warmup, args.iterations)
    loss, grads = step()
    import jaxlib
    emit({
        "side": "jax", "loss": float(loss), "grad_norms": norms({n: grads[n] for n in weights}), "times_ms": times,
        "first_ms": first_ms, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(), "devices": [str(dv) for dv in jax.devices()],
        "blas": "XLA:CPU (own dot emitter/Eigen, no system BLAS)", "blas_core": "n/a",
        "parameters": int(sum(w.size for w in weights.values())),
    })


if __name__ == "__main__":
    main()

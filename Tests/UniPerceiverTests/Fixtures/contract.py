"""The parameter contract of Sources/UniPerceiver/README.md as (name, shape) pairs, in table order.

Torch-free, so that the fixture generator (make_fixtures.py, PyTorch), the benchmark harness
(Benchmarks/run_bench.py, numpy only) and its peers build their weights from the one table.
"""

TASKS = ["image-classification", "mlm", "captioning", "retrieval"]

# §5.6, indices 0..7: (task, side) -> one vector per segment
ATTRIBUTES = {
    ("image-classification", "input"): [[1, 0, 0, 1, 1, 0, 0, 0]],
    ("retrieval", "input"): [[1, 0, 0, 1, 1, 0, 0, 0]],
    ("mlm", "input"): [[0, 1, 0, 1, 0, 1, 0, 0]],
    ("captioning", "input"): [[1, 1, 0, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 1, 0, 1]],
    ("image-classification", "target"): [[1, 0, 0, 1, 0, 1, 1, 0]],
    ("retrieval", "target"): [[1, 0, 0, 1, 0, 1, 1, 0]],
    ("mlm", "target"): [[1, 1, 0, 1, 0, 1, 1, 0]],
    ("captioning", "target"): [[1, 1, 0, 1, 0, 1, 1, 0]],
}


def contract_table(cfg):
    """(name, shape) in the order of Sources/UniPerceiver/README.md."""
    d, f, v = cfg["hidden_size"], cfg["ffn_size"], cfg["vocab_size"]
    cpp = cfg["channels"] * cfg["patch_size"] ** 2
    t = [("video_embed.embeddings.weight", [d, cpp]), ("video_embed.embeddings.bias", [d]),
         ("video_embed.embeddings_st_pos.temporal_pos_embed", [1, d]),
         ("token_embed.embeddings.weight", [v, d]),
         ("token_embed.embeddings_pos.position_embeddings.weight", [cfg["max_text_length"], d]),
         ("token_embed.embeddings_token_type.weight", [2, d]),
         ("token_embed.embeddings_norm.weight", [d]), ("token_embed.embeddings_norm.bias", [d])]
    for n in range(cfg["num_layers"]):
        p = f"encoder.layers.{n}."
        t += [(p + "LayerNormModules.0.weight", [d]), (p + "LayerNormModules.0.bias", [d]),
              (p + "attention.self.qkv_proj.weight", [3 * d, d]), (p + "attention.self.qkv_proj.bias", [3 * d]),
              (p + "attention.output.dense.weight", [d, d]), (p + "attention.output.dense.bias", [d]),
              (p + "attention_output.residual_scale", [d]),
              (p + "LayerNormModules.1.weight", [d]), (p + "LayerNormModules.1.bias", [d]),
              (p + "ffn.dense.weight", [f, d]), (p + "ffn.dense.bias", [f]),
              (p + "ffn.dense2.weight", [d, f]), (p + "ffn.dense2.bias", [d]),
              (p + "ffn_output.residual_scale", [d])]
    t += [("predictor.ln_post.weight", [d]), ("predictor.ln_post.bias", [d]),
          ("predictor.proj.weight", [d, d]), ("predictor.proj.bias", [d])]
    t += [("predictor.logit_scale_" + s, [1]) for s in ["img_cls", "text_mlm", "caption", "retrieve"]]
    return t


def moe_layer(cfg, n):
    where = cfg.get("moe_layers", "all")
    return where == "all" or (where == "odd" and n % 2 == 0) or (where.startswith("every-") and n % int(where[6:]) == 0)


def moe_table(cfg):
    """The Swift table order (README, "Conditional MoE"): per MoE layer the gate of qkv_proj and of
    ffn.dense, then the experts, each linear in the dense order."""
    d, f, e, r = cfg["hidden_size"], cfg["ffn_size"], cfg["num_experts"], cfg["routing"]
    dense = contract_table(cfg)
    out = []
    shapes = {"attention.self.qkv_proj": (3 * d, d), "attention.output.dense": (d, d),
              "ffn.dense": (f, d), "ffn.dense2": (d, f)}
    for name, shape in dense:
        parts = name.split(".")
        if name.startswith("encoder.layers.") and moe_layer(cfg, int(parts[2])):
            role = ".".join(parts[3:-1])
            if role in shapes:
                if parts[-1] == "bias":
                    continue  # emitted with the weight
                p = ".".join(parts[:-1])
                o, i = shapes[role]
                if role in ("attention.self.qkv_proj", "ffn.dense"):
                    if r == "attribute":
                        out += [(p + ".gate.tag_transform.0.weight", [d, 8]), (p + ".gate.tag_transform.0.bias", [d]),
                                (p + ".gate.tag_transform.1.weight", [d]), (p + ".gate.tag_transform.1.bias", [d])]
                    elif r in ("modality", "task"):
                        out += [(p + ".gate.embedding.weight", [2 if r == "modality" else len(TASKS), d])]
                    out += [(p + ".gate.wg.weight", [e, d])]
                for k in range(e):
                    out += [(p + f".experts.{k}.weight", [o, i]), (p + f".experts.{k}.bias", [o])]
                continue
        out.append((name, shape))
    return out

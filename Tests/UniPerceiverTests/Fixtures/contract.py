"""The parameter contract of Sources/UniPerceiver/README.md as (name, shape) pairs, in table order.

Torch-free, so that both the fixture generator (make_fixtures.py, PyTorch) and the benchmark harness
(Benchmarks/run_bench.py, numpy only) build their weights from the one table.
"""


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

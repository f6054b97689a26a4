"""Independent float64 PyTorch reference for the small Uni-Perceiver, and the golden fixture writer.

Run from the repository root:

    /opt/refvenv/bin/python Tests/UniPerceiverTests/Fixtures/make_fixtures.py

Add `--check` to also run the self-checks (torch.autograd.gradcheck on the whole-model loss of
every task over all parameter coordinates, the printed caption-mask example, cross-checks of the
forward pass against torch's own modules); about 20 minutes on one thread.

It writes (deterministically, from SEED; nothing here depends on the Swift code):

* Tests/UniPerceiverTests/Fixtures/dense_tiny.safetensors -- the tiny checkpoint: every parameter
  of the contract's table (Sources/UniPerceiver/README.md), F32, under its exact name, with
  __metadata__ format/version/kind/config (+ fixture provenance keys).
* Tests/UniPerceiverTests/Fixtures/dense_<task>.safetensors for task in image-classification, mlm,
  captioning, retrieval -- the batch (inputs), `loss` (F64 [1]) and `grad.<name>` (F64) for every
  parameter, computed by autograd in float64 from the F32 checkpoint values read back.
* Tests/KernelsTests/Fixtures/kernels.safetensors -- per-kernel golden values (layernorm, gelu,
  masked softmax, cross-entropy with/without label smoothing, cosine similarity): inputs F32,
  outputs and gradients F64 computed in float64 from the F32 inputs.

No backward pass is written by hand here: every gradient comes from torch.autograd.
The model follows the contract in Sources/UniPerceiver/README.md; the choices made where it left
room are listed in Tests/UniPerceiverTests/Fixtures/README.md.
"""
import hashlib
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contract import ATTRIBUTES, TASKS, contract_table, moe_layer, moe_table  # noqa: E402  (shared with Benchmarks/run_bench.py)

SEED = 20240611
FIXTURE_VERSION = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KERNEL_DIR = os.path.join(ROOT, "Tests", "KernelsTests", "Fixtures")
SCRIPT_SHA256 = hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest()
LN_EPS = 1e-5
SCALE_CAP = 100.0

TINY_CONFIG = {
    "hidden_size": 16,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_size": 64,
    "image_size": 4,
    "patch_size": 2,
    "channels": 2,
    "vocab_size": 20,
    "max_text_length": 8,
    "layer_scale_init": 0.001,
}

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # tiny tensors: one thread is faster and keeps reductions in a fixed order


# ----------------------------------------------------------------------------------------------
# Parameter containers. The module tree mirrors the contract's names exactly so that
# named_parameters() yields `encoder.layers.0.attention.self.qkv_proj.weight` etc. (registration order
# differs from the table's; ordered_parameters() gives the table order).
# ----------------------------------------------------------------------------------------------

def _param(*shape):
    return nn.Parameter(torch.zeros(*shape, dtype=torch.float64))


class _Node(nn.Module):
    """An empty module used only to build the dotted parameter names."""


class _Linear(nn.Module):
    def __init__(self, fan_in, fan_out):
        super().__init__()
        self.weight = _param(fan_out, fan_in)
        self.bias = _param(fan_out)


class _Norm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = _param(d)
        self.bias = _param(d)


class _Table(nn.Module):
    def __init__(self, rows, d):
        super().__init__()
        self.weight = _param(rows, d)


class EncoderLayer(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.LayerNormModules = nn.ModuleList([_Norm(d)])
        self.attention = _Node()
        self.attention.add_module("self", _Node())
        getattr(self.attention, "self").add_module("qkv_proj", _Linear(d, 3 * d))
        self.attention.add_module("output", _Node())
        self.attention.output.add_module("dense", _Linear(d, d))
        self.attention_output = _Node()
        self.attention_output.residual_scale = _param(d)
        self.LayerNormModules.append(_Norm(d))
        self.ffn = _Node()
        self.ffn.add_module("dense", _Linear(d, f))
        self.ffn.add_module("dense2", _Linear(f, d))
        self.ffn_output = _Node()
        self.ffn_output.residual_scale = _param(d)

    def forward(self, x, allowed, num_heads):
        """x [N, L, D]; allowed [N, L, L] bool (query row, key column)."""
        n, length, d = x.shape
        hd = d // num_heads
        ln1, ln2 = self.LayerNormModules[0], self.LayerNormModules[1]
        qkv_proj = getattr(self.attention, "self").qkv_proj
        a = F.layer_norm(x, (d,), ln1.weight, ln1.bias, LN_EPS)
        qkv = F.linear(a, qkv_proj.weight, qkv_proj.bias)
        q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        # head h = columns h*hd ..< (h+1)*hd of q, k, v
        q = q.reshape(n, length, num_heads, hd).transpose(1, 2)
        k = k.reshape(n, length, num_heads, hd).transpose(1, 2)
        v = v.reshape(n, length, num_heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed[:, None, :, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)  # masked keys: exactly 0
        o = (probs @ v).transpose(1, 2).reshape(n, length, d)
        out = self.attention.output.dense
        h = x + self.attention_output.residual_scale * F.linear(o, out.weight, out.bias)
        b = F.layer_norm(h, (d,), ln2.weight, ln2.bias, LN_EPS)
        w1, w2 = self.ffn.dense, self.ffn.dense2
        ffn = F.linear(F.gelu(F.linear(b, w1.weight, w1.bias)), w2.weight, w2.bias)  # exact erf GELU
        return h + self.ffn_output.residual_scale * ffn


class UniPerceiver(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, f = cfg["hidden_size"], cfg["ffn_size"]
        p, c = cfg["patch_size"], cfg["channels"]
        v = cfg["vocab_size"]
        self.video_embed = _Node()
        self.video_embed.add_module("embeddings", _Linear(c * p * p, d))
        self.video_embed.add_module("embeddings_st_pos", _Node())
        self.video_embed.embeddings_st_pos.temporal_pos_embed = _param(1, d)
        self.token_embed = _Node()
        self.token_embed.add_module("embeddings", _Table(v, d))
        self.token_embed.add_module("embeddings_pos", _Node())
        self.token_embed.embeddings_pos.add_module("position_embeddings", _Table(cfg["max_text_length"], d))
        self.token_embed.add_module("embeddings_token_type", _Table(2, d))
        self.token_embed.add_module("embeddings_norm", _Norm(d))
        self.encoder = _Node()
        self.encoder.layers = nn.ModuleList([EncoderLayer(d, f) for _ in range(cfg["num_layers"])])
        self.predictor = _Node()
        self.predictor.add_module("ln_post", _Norm(d))
        self.predictor.add_module("proj", _Linear(d, d))
        for name in ["img_cls", "text_mlm", "caption", "retrieve"]:
            setattr(self.predictor, "logit_scale_" + name, _param(1))

    # -- tokenizers --------------------------------------------------------------------------
    def shared_ln(self, x):
        n = self.token_embed.embeddings_norm
        return F.layer_norm(x, (self.cfg["hidden_size"],), n.weight, n.bias, LN_EPS)

    def spe(self, count):
        """The prefix <SPE>: LN(E_word[V-1]), no position, no type. Returns [count, 1, D]."""
        e = self.token_embed.embeddings.weight[self.cfg["vocab_size"] - 1]
        return self.shared_ln(e).expand(count, 1, -1)

    def text(self, ids, positions):
        """ids, positions [N, L] (long) -> LN(E_word[id] + E_pos[pos] + E_type[0]) [N, L, D]."""
        te = self.token_embed
        e = (te.embeddings.weight[ids] + te.embeddings_pos.position_embeddings.weight[positions]
             + te.embeddings_token_type.weight[0])
        return self.shared_ln(e)

    def spatial(self):
        """Fixed sin-cos table [(S/p)^2, D], raster order (row u, column v)."""
        d = self.cfg["hidden_size"] // 4
        g = self.cfg["image_size"] // self.cfg["patch_size"]
        omega = torch.tensor([10000.0 ** (-k / d) for k in range(d)])
        rows = []
        for u in range(g):
            for v in range(g):
                rows.append(torch.cat([torch.sin(u * omega), torch.cos(u * omega),
                                       torch.sin(v * omega), torch.cos(v * omega)]))
        return torch.stack(rows)

    def image(self, images):
        """images [B, C, S, S] -> patch tokens [B, (S/p)^2, D]."""
        b, c, s, _ = images.shape
        p = self.cfg["patch_size"]
        g = s // p
        # [B, C, g, p, g, p] -> [B, g(u), g(v), C, p(py), p(px)] -> flatten (c, py, px)
        patches = images.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
        lin = self.video_embed.embeddings
        e = (F.linear(patches, lin.weight, lin.bias) + self.spatial()
             + self.video_embed.embeddings_st_pos.temporal_pos_embed[0])
        return self.shared_ln(e)

    # -- encoder and head --------------------------------------------------------------------
    def encode(self, x, allowed, info=None):
        """info (MoE only; dense layers ignore it): task, side, segment [N, L] and valid [N, L]."""
        for layer in self.encoder.layers:
            if isinstance(layer, MoEEncoderLayer):
                x = layer(x, allowed, self.cfg["num_heads"], info)
            else:
                x = layer(x, allowed, self.cfg["num_heads"])
        return x  # no final LayerNorm

    def feature(self, h):
        pr = self.predictor
        a = F.layer_norm(h, (self.cfg["hidden_size"],), pr.ln_post.weight, pr.ln_post.bias, LN_EPS)
        return F.linear(a, pr.proj.weight, pr.proj.bias)

    def scale(self, name):
        # min(exp(s), 100): above the cap the scale is the constant 100 (clamp passes no gradient)
        return torch.clamp(torch.exp(getattr(self.predictor, "logit_scale_" + name)[0]), max=SCALE_CAP)

    def logits(self, u, v, name):
        """scale * cos(u_i, v_k); u [M, D], v [K, D]."""
        return self.scale(name) * (F.normalize(u, dim=-1, eps=1e-12) @ F.normalize(v, dim=-1, eps=1e-12).T)

    # -- sequences ---------------------------------------------------------------------------
    def image_features(self, images, task=None):
        """[SPE, I] fully bidirectional; feature at index 0."""
        x = torch.cat([self.spe(images.shape[0]), self.image(images)], dim=1)
        n, length, _ = x.shape
        allowed = torch.ones(n, length, length, dtype=torch.bool)
        info = routing_info(task, "input", torch.zeros(n, length, dtype=torch.long),
                            torch.ones(n, length, dtype=torch.bool))
        return self.feature(self.encode(x, allowed, info))[:, 0]

    def text_hidden(self, rows, task=None, side="target"):
        """[SPE, x_1..x_T] per row, padded to the longest; padded keys masked for every query.
        Returns encoder outputs [N, 1+Lmax, D]."""
        lmax = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), lmax, dtype=torch.long)
        valid = torch.zeros(len(rows), 1 + lmax, dtype=torch.bool)
        valid[:, 0] = True
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            valid[i, 1:1 + len(r)] = True
        pos = torch.arange(lmax).expand(len(rows), lmax)
        x = torch.cat([self.spe(len(rows)), self.text(ids, pos)], dim=1)
        allowed = valid[:, None, :].expand(-1, 1 + lmax, -1)
        info = routing_info(task, side, torch.zeros(len(rows), 1 + lmax, dtype=torch.long), valid)
        return self.encode(x, allowed, info)

    def vocab_features(self, task=None):
        """All V ids as [SPE, v, EOT] (text positions 0, 1); feature at index 0. [V, D]."""
        v = self.cfg["vocab_size"]
        eot = v - 4
        return self.feature(self.text_hidden([[i, eot] for i in range(v)], task, "target")[:, 0])

    def caption_layout(self, lengths, num_image):
        """Boolean attention mask of the captioning sequence [SPE, I, x_1..x_Tmax, q_1..q_Tmax]
        for each row (captions padded to Tmax). Returns [B, L, L] (query row, key column)."""
        tmax = max(lengths)
        pre = 1 + num_image
        length = pre + 2 * tmax
        masks = torch.zeros(len(lengths), length, length, dtype=torch.bool)
        for b, tb in enumerate(lengths):
            m = masks[b]
            m[:pre, :pre] = True  # SPE+image rows: SPE+image only
            for t in range(1, tmax + 1):
                xi, qi = pre + t - 1, pre + tmax + t - 1
                m[xi, :pre] = True
                m[xi, pre:pre + t] = True  # x_t sees x_1..x_t
                m[qi, :pre] = True
                m[qi, pre:pre + t - 1] = True  # q_t sees x_1..x_{t-1}
                m[qi, qi] = True  # ... and itself
            key_valid = torch.ones(length, dtype=torch.bool)
            key_valid[pre + tb:pre + tmax] = False  # padded x
            key_valid[pre + tmax + tb:] = False  # padded q
            m &= key_valid[None, :]
        return masks

    # -- the four task losses ----------------------------------------------------------------
    def forward(self, task, batch):
        return self.loss(task, batch)

    def loss(self, task, batch):
        v = self.cfg["vocab_size"]
        if task == "image-classification":
            u = self.image_features(batch["images"], task)
            cand = self.feature(self.text_hidden(batch["class_rows"], task, "target")[:, 0])
            return ls_cross_entropy(self.logits(u, cand, "img_cls"), batch["labels"], 0.1)
        if task == "mlm":
            rows, labels = batch["text_rows"], batch["label_rows"]
            h = self.text_hidden(rows, task, "input")
            picks, targets = [], []
            for b, lab in enumerate(labels):
                for i, y in enumerate(lab):
                    if y >= 0:
                        picks.append(h[b, 1 + i])
                        targets.append(y)
            u = self.feature(torch.stack(picks))
            logits = self.logits(u, self.vocab_features(task), "text_mlm")
            return ls_cross_entropy(logits, torch.tensor(targets), 0.0)
        if task == "captioning":
            images, rows = batch["images"], batch["text_rows"]
            lengths = [len(r) for r in rows]
            tmax = max(lengths)
            bsz = len(rows)
            img = self.image(images)
            n_img = img.shape[1]
            ids = torch.zeros(bsz, tmax, dtype=torch.long)
            for b, r in enumerate(rows):
                ids[b, :len(r)] = torch.tensor(r)
            pos = torch.arange(tmax).expand(bsz, tmax)
            xs = self.text(ids, pos)
            qs = self.text(torch.full((bsz, tmax), v - 1, dtype=torch.long), pos)  # q_t: SPE id at t-1
            x = torch.cat([self.spe(bsz), img, xs, qs], dim=1)
            # segment 0 = SPE + image, segment 1 = text + queries; padded x and q are not valid
            seg = torch.zeros(bsz, x.shape[1], dtype=torch.long)
            seg[:, 1 + n_img:] = 1
            valid = torch.ones(bsz, x.shape[1], dtype=torch.bool)
            for b, tb in enumerate(lengths):
                valid[b, 1 + n_img + tb:1 + n_img + tmax] = False
                valid[b, 1 + n_img + tmax + tb:] = False
            h = self.encode(x, self.caption_layout(lengths, n_img), routing_info(task, "input", seg, valid))
            picks, targets = [], []
            for b, r in enumerate(rows):
                for t in range(len(r)):
                    picks.append(h[b, 1 + n_img + tmax + t])  # output at q_{t+1} predicts x_{t+1}
                    targets.append(r[t])
            u = self.feature(torch.stack(picks))
            logits = self.logits(u, self.vocab_features(task), "caption")
            return ls_cross_entropy(logits, torch.tensor(targets), 0.0)
        if task == "retrieval":
            u = self.image_features(batch["images"], task)
            w = self.feature(self.text_hidden(batch["text_rows"], task, "target")[:, 0])
            logits = self.logits(u, w, "retrieve")
            target = torch.arange(u.shape[0])
            return ls_cross_entropy(logits, target, 0.1) + ls_cross_entropy(logits.T, target, 0.1)
        raise ValueError(task)



# ----------------------------------------------------------------------------------------------
# Conditional MoE (Sources/UniPerceiver/README.md, "Conditional MoE"; uniperceiver-model.md §5).
# Written from the contract, not from the Swift code: every MoE-ised linear computes
# y = sum_e G[..., e] * (x W_e^T + b_e) with the combine weights G of its decision (zero for experts
# not chosen), which equals the released per-segment weight merge for the data-independent routings.
# ----------------------------------------------------------------------------------------------

MOE_ROUTINGS = ["attribute", "token", "context", "modality", "task"]
MOE_EXPERTS = 4
MOE_TOP_K = 2
BALANCE_WEIGHT = 0.01

# modality of each segment: 0 image (SPE of an image sequence included), 1 text
MODALITIES = {("image-classification", "input"): [0], ("retrieval", "input"): [0], ("captioning", "input"): [0, 1]}


def routing_info(task, side, segment, valid):
    return {"task": task, "side": side, "segment": segment, "valid": valid}


class _Gate(nn.Module):
    def __init__(self, routing, d, e):
        super().__init__()
        self.routing = routing
        if routing == "attribute":
            self.tag_transform = nn.ModuleList([_Linear(8, d), _Norm(d)])
        elif routing in ("modality", "task"):
            self.embedding = _Table(2 if routing == "modality" else len(TASKS), d)
        self.wg = _Table(e, d)  # Linear D->E without bias: weight [E, D]


class _MoELinear(nn.Module):
    def __init__(self, fan_in, fan_out, routing, e, gate):
        super().__init__()
        if gate:
            self.gate = _Gate(routing, fan_in, e)
        self.experts = nn.ModuleList([_Linear(fan_in, fan_out) for _ in range(e)])

    def forward(self, x, combine):
        """x [N, L, I], combine [N, L, E] -> sum_e combine_e * (x W_e^T + b_e)."""
        out = 0
        for i, ex in enumerate(self.experts):
            out = out + combine[..., i:i + 1] * F.linear(x, ex.weight, ex.bias)
        return out


def top_k_combine(logits, k):
    """softmax -> top-k on the logits -> renormalised weights scattered into [.., E]; also the
    probabilities and the sorted logits (for the margin check)."""
    p = torch.softmax(logits, dim=-1)
    top = torch.topk(logits, k, dim=-1).indices
    g = p.gather(-1, top)
    g = g / g.sum(dim=-1, keepdim=True)
    combine = torch.zeros_like(p).scatter(-1, top, g)
    return combine, p, top


class MoEEncoderLayer(EncoderLayer):
    """The dense layer's structure with its four linears replaced by experts; the QKV gate decides for
    the attention pair, the ffn.dense gate for the FFN pair."""

    def __init__(self, d, f, routing, e, k):
        super().__init__(d, f)
        self.routing, self.k = routing, k
        attn_self = getattr(self.attention, "self")
        del attn_self.qkv_proj
        attn_self.add_module("qkv_proj", _MoELinear(d, 3 * d, routing, e, True))
        del self.attention.output.dense
        self.attention.output.add_module("dense", _MoELinear(d, d, routing, e, False))
        del self.ffn.dense, self.ffn.dense2
        self.ffn.add_module("dense", _MoELinear(d, f, routing, e, True))
        self.ffn.add_module("dense2", _MoELinear(f, d, routing, e, False))
        self.margins, self.aux = [], []

    def decide(self, gate, a, info):
        """a [N, L, D] the LN'd input; returns combine weights [N, L, E]."""
        r, e = self.routing, gate.wg.weight.shape[0]
        n, length, d = a.shape
        task, side, seg, valid = info["task"], info["side"], info["segment"], info["valid"]
        if r == "attribute":
            attrs = torch.tensor(ATTRIBUTES[(task, side)], dtype=a.dtype)
            t0, t1 = gate.tag_transform[0], gate.tag_transform[1]
            c = F.layer_norm(F.linear(attrs, t0.weight, t0.bias), (d,), t1.weight, t1.bias, LN_EPS)
            unit_of = seg  # unit = segment
        elif r == "modality":
            c = gate.embedding.weight  # rows: image, text
            mods = torch.tensor(MODALITIES.get((task, side), [1, 1]))
            unit_of = mods[seg]
        elif r == "task":
            c = gate.embedding.weight[TASKS.index(task)][None]
            unit_of = torch.zeros_like(seg)
        elif r == "context":
            w = valid.to(a.dtype)[..., None]
            c = (a * w).sum(1) / w.sum(1)  # mean over the sample's valid positions
            unit_of = torch.arange(n)[:, None].expand(n, length)
        else:  # token
            c = a.reshape(n * length, d)
            unit_of = torch.arange(n * length).reshape(n, length)
        logits = c @ gate.wg.weight.T
        combine, p, top = top_k_combine(logits, self.k)
        srt = torch.sort(logits.detach(), dim=-1, descending=True).values
        self.margins.append(min((srt[..., 0] - srt[..., 1]).min().item(), (srt[..., self.k - 1] - srt[..., self.k]).min().item()))
        if r in ("token", "context"):
            unit_valid = valid.reshape(-1) if r == "token" else torch.ones(n, dtype=torch.bool)
            pv = p[unit_valid]
            f = F.one_hot(top[unit_valid][:, 0], e).to(p.dtype).mean(0)  # no gradient
            self.aux.append(BALANCE_WEIGHT * e * (f * pv.mean(0)).sum())
        return combine[unit_of]

    def forward(self, x, allowed, num_heads, info):
        n, length, d = x.shape
        hd = d // num_heads
        ln1, ln2 = self.LayerNormModules[0], self.LayerNormModules[1]
        qkv_proj = getattr(self.attention, "self").qkv_proj
        a = F.layer_norm(x, (d,), ln1.weight, ln1.bias, LN_EPS)
        g_attn = self.decide(qkv_proj.gate, a, info)
        qkv = qkv_proj(a, g_attn)
        q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        q = q.reshape(n, length, num_heads, hd).transpose(1, 2)
        k = k.reshape(n, length, num_heads, hd).transpose(1, 2)
        v = v.reshape(n, length, num_heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed[:, None, :, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(n, length, d)
        h = x + self.attention_output.residual_scale * self.attention.output.dense(o, g_attn)
        b = F.layer_norm(h, (d,), ln2.weight, ln2.bias, LN_EPS)
        g_ffn = self.decide(self.ffn.dense.gate, b, info)
        ffn = self.ffn.dense2(F.gelu(self.ffn.dense(b, g_ffn)), g_ffn)
        return h + self.ffn_output.residual_scale * ffn


class MoEUniPerceiver(UniPerceiver):
    def __init__(self, cfg):
        super().__init__(cfg)
        d, f = cfg["hidden_size"], cfg["ffn_size"]
        self.encoder.layers = nn.ModuleList([
            MoEEncoderLayer(d, f, cfg["routing"], cfg["num_experts"], cfg["top_k"]) if moe_layer(cfg, n)
            else EncoderLayer(d, f) for n in range(cfg["num_layers"])])

    def moe_layers(self):
        return [m for m in self.encoder.layers if isinstance(m, MoEEncoderLayer)]

    def loss(self, task, batch):
        for m in self.moe_layers():
            m.margins, m.aux = [], []
        total = super().loss(task, batch)
        for m in self.moe_layers():
            for a in m.aux:
                total = total + a  # GShard balance loss (token and context routing)
        return total

    def min_margin(self):
        return min(min(m.margins) for m in self.moe_layers())





def moe_config(routing):
    cfg = dict(TINY_CONFIG)
    cfg.update({"routing": routing, "num_experts": MOE_EXPERTS, "top_k": MOE_TOP_K, "moe_layers": "all"})
    return cfg





def moe_weights(cfg, gen, attempt):
    """Test weights as random_weights, experts like the linears they replace; gate weights large
    enough that routing decisions differ between units (redrawn per attempt for the margin check)."""
    base = random_weights(cfg, gen)
    sub = torch.Generator().manual_seed(SEED + 1000 * MOE_ROUTINGS.index(cfg["routing"]) + attempt)

    def normal(shape, mean, std):
        return (mean + std * torch.randn(*shape, generator=sub, dtype=torch.float64)).to(torch.float32)

    out = {}
    for name, shape in moe_table(cfg):
        if name in base:
            out[name] = base[name]
        elif ".gate.tag_transform.1." in name:
            out[name] = normal(shape, 1.0, 0.2) if name.endswith("weight") else normal(shape, 0.0, 0.1)
        elif ".gate." in name:
            out[name] = normal(shape, 0.0, 1.0 if name.endswith("wg.weight") else 0.5)
        elif name.endswith("weight"):
            out[name] = normal(shape, 0.0, 0.3)
        else:
            out[name] = normal(shape, 0.0, 0.1)
    return {k: v.contiguous() for k, v in out.items()}


def build_moe_model(path, cfg):
    model = MoEUniPerceiver(cfg)
    stored = load_file(path)
    table = moe_table(cfg)
    params = dict(model.named_parameters())
    assert sorted(params) == sorted(n for n, _ in table), sorted(set(params) ^ set(n for n, _ in table))
    assert sorted(stored) == sorted(params)
    with torch.no_grad():
        for name, shape in table:
            assert list(params[name].shape) == shape and list(stored[name].shape) == shape, name
            params[name].copy_(stored[name].to(torch.float64))
    return model


def float32_conditioned(model, batches, results):
    """Whether the same model run in float32 reproduces every gradient to 1e-5 relative. A gate
    gradient can be a tiny difference of two large sums (top-2: dL/dlogit = g1 g2 (dL/dg1 - dL/dg2));
    when float32 itself cannot resolve it, no Float32 implementation can meet the tests' 1e-4, so such
    draws are rejected (the Swift merged path resolves it ~10-20x less well than per-token float32)."""
    torch.set_default_dtype(torch.float32)
    m32 = model.float()
    ok = True
    try:
        for task in TASKS:
            b32 = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v)
                   for k, v in f64_batch(batches[task]).items()}
            m32.zero_grad(set_to_none=True)
            m32.loss(task, b32).backward()
            for name, p in m32.named_parameters():
                ref = results[task][1][name]
                if p.grad is not None and ref.norm() > 0:
                    if (p.grad.double() - ref).norm() / ref.norm() > 1e-5:
                        ok = False
    finally:
        torch.set_default_dtype(torch.float64)
        model.double()
    return ok


def moe_fixtures(batches, check):
    """moe_<routing>_tiny.safetensors (checkpoint) and moe_<routing>_<task>.safetensors (loss and
    every gradient) for every routing level; weights are redrawn until every routing decision of
    every task has a top-k margin of at least 1e-3 (Float32 round-off cannot flip a choice)."""
    for routing in MOE_ROUTINGS:
        cfg = moe_config(routing)
        ckpt = os.path.join(HERE, f"moe_{routing}_tiny.safetensors")
        for attempt in range(200):
            gen = torch.Generator().manual_seed(SEED)
            weights = moe_weights(cfg, gen, attempt)
            save_file(weights, ckpt, metadata=provenance({
                "format": "task-interference/checkpoint", "version": "1", "kind": "moe",
                "config": json.dumps(cfg)}))
            model = build_moe_model(ckpt, cfg)
            results, margin = {}, float("inf")
            for task in TASKS:
                model.zero_grad(set_to_none=True)
                loss = model.loss(task, f64_batch(batches[task]))
                margin = min(margin, model.min_margin())
                loss.backward()
                results[task] = (loss.detach(), {n: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone())
                                                 for n, p in model.named_parameters()})
            if margin >= 1e-3 and float32_conditioned(model, batches, results):
                break
        else:
            raise RuntimeError(f"{routing}: no weights with a top-k margin >= 1e-3 and float32-resolvable gradients")
        for task in TASKS:
            loss, grads = results[task]
            out = batch_tensors(task, batches[task])
            out["loss"] = loss.reshape(1).contiguous()
            for name, _ in moe_table(cfg):
                assert torch.isfinite(grads[name]).all(), f"{routing} {task} {name}"
                out["grad." + name] = grads[name].contiguous()
            save_file(out, os.path.join(HERE, f"moe_{routing}_{task}.safetensors"),
                      metadata=provenance({"task": task, "routing": routing, "min_margin": f"{margin:.6g}"}))
            zero = [n for n, _ in moe_table(cfg) if grads[n].norm() == 0]
            print(f"moe {routing} {task}: loss {loss.item():.12g}, min top-k margin {margin:.3g}, attempt {attempt}, "
                  f"exactly-zero gradients: {len(zero)} ({', '.join(sorted(set(z.split('.experts.')[0].split('.gate.')[0] + ('.experts' if '.experts.' in z else '.gate' if '.gate.' in z else '') for z in zero)))[:300]})")
        if check:
            from torch.func import functional_call
            named = [(n, dict(model.named_parameters())[n]) for n, _ in moe_table(cfg)]
            names = [n for n, _ in named]
            for task in TASKS:
                batch = f64_batch(batches[task])

                def loss_of(*ps):
                    return functional_call(model, dict(zip(names, ps)), (task, batch))

                inputs = tuple(p.detach().clone().requires_grad_(True) for _, p in named)
                ok = torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
                print(f"gradcheck moe {routing} {task}: {ok}", flush=True)


def ls_cross_entropy(logits, targets, eps, ignore_index=-1):
    """Mean over non-ignored rows of (1-eps)(-log p_t) + eps * mean_k(-log p_k)."""
    keep = targets != ignore_index
    logp = torch.log_softmax(logits[keep], dim=-1)
    nll = -logp.gather(1, targets[keep][:, None])[:, 0]
    smooth = -logp.mean(dim=-1)
    return ((1 - eps) * nll + eps * smooth).mean()


# ----------------------------------------------------------------------------------------------
# Fixture data
# ----------------------------------------------------------------------------------------------

def random_weights(cfg, gen):
    """Test weights (not the paper init): every gradient non-trivial, activations O(1)."""
    def normal(shape, mean, std):
        return mean + std * torch.randn(*shape, generator=gen, dtype=torch.float64)

    out = {}
    for name, shape in contract_table(cfg):
        leaf = name.rsplit(".", 1)[-1]
        if name.startswith("predictor.logit_scale_"):
            value = {"img_cls": math.log(1 / 0.07), "text_mlm": 2.0, "caption": 3.0,
                     "retrieve": 4.8}[name[len("predictor.logit_scale_"):]]
            w = torch.full(shape, value)
        elif "LayerNormModules" in name or "_norm." in name or "ln_post" in name:
            w = normal(shape, 1.0, 0.2) if leaf == "weight" else normal(shape, 0.0, 0.1)
        elif leaf == "residual_scale":
            w = normal(shape, 0.5, 0.2)
        elif name.startswith("token_embed.") or leaf == "temporal_pos_embed":
            w = normal(shape, 0.0, 0.5)
        elif leaf == "weight":
            w = normal(shape, 0.0, 0.3)
        else:
            w = normal(shape, 0.0, 0.1)
        out[name] = w.to(torch.float32).contiguous()
    return out


def make_batches(cfg, gen):
    v = cfg["vocab_size"]
    eot, spe = v - 4, v - 1
    regular = v - 5  # ids 0..14

    def randint(hi, n=()):
        return torch.randint(0, hi, n if isinstance(n, tuple) else (n,), generator=gen)

    def images():
        return torch.randn(3, cfg["channels"], cfg["image_size"], cfg["image_size"],
                           generator=gen, dtype=torch.float64).to(torch.float32)

    def text_row(length):  # regular ids, last one EOT
        return randint(regular, length - 1).tolist() + [eot]

    batches = {}
    class_lengths = [3, 2, 4, 2]
    batches["image-classification"] = {
        "images": images(), "labels": [2, 0, 3],
        "class_rows": [text_row(n) for n in class_lengths]}

    mlm_lengths = [5, 4, 6]
    mlm_masked = [[1, 3], [0], [2, 4]]  # positions replaced (never the final EOT)
    replace = [[spe, spe], [spe], [spe, None]]  # None: a random id
    rows, labels = [], []
    for n, where, rep in zip(mlm_lengths, mlm_masked, replace):
        orig = text_row(n)
        row, lab = list(orig), [-1] * n
        for i, r in zip(where, rep):
            lab[i] = orig[i]
            row[i] = r if r is not None else (orig[i] + 7) % regular
        rows.append(row)
        labels.append(lab)
    batches["mlm"] = {"text_rows": rows, "label_rows": labels}

    batches["captioning"] = {"images": images(), "text_rows": [text_row(n) for n in [3, 5, 2]]}
    batches["retrieval"] = {"images": images(), "text_rows": [text_row(n) for n in [4, 2, 5]]}
    return batches


def padded(rows, fill):
    lmax = max(len(r) for r in rows)
    out = torch.full((len(rows), lmax), fill, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


def batch_tensors(task, batch):
    t = {}
    if "images" in batch:
        t["images"] = batch["images"].contiguous()
    if task == "image-classification":
        t["labels"] = torch.tensor(batch["labels"], dtype=torch.int64)
        t["class_tokens"] = padded(batch["class_rows"], 0)
        t["class_lengths"] = torch.tensor([len(r) for r in batch["class_rows"]], dtype=torch.int64)
    else:
        t["text_tokens"] = padded(batch["text_rows"], 0)
        t["text_lengths"] = torch.tensor([len(r) for r in batch["text_rows"]], dtype=torch.int64)
    if task == "mlm":
        t["mlm_labels"] = padded(batch["label_rows"], -1)
    return t


def f64_batch(batch):
    return {k: (v.to(torch.float64) if torch.is_tensor(v) and v.is_floating_point() else
                torch.tensor(v) if k == "labels" else v) for k, v in batch.items()}


def provenance(extra=None):
    m = {"fixture_version": FIXTURE_VERSION, "seed": str(SEED), "torch": torch.__version__,
         "script_sha256": SCRIPT_SHA256, "generator": "Tests/UniPerceiverTests/Fixtures/make_fixtures.py"}
    m.update(extra or {})
    return m


def build_model(path):
    """The reference model with the F32 checkpoint values read back and widened to float64."""
    model = UniPerceiver(TINY_CONFIG)
    stored = load_file(path)
    table = contract_table(TINY_CONFIG)
    params = dict(model.named_parameters())
    assert sorted(params) == sorted(n for n, _ in table), "module tree does not match the contract's names"
    assert sorted(stored) == sorted(params), "checkpoint names differ from the contract's"
    with torch.no_grad():
        for name, shape in table:
            p = params[name]
            assert list(p.shape) == shape and list(stored[name].shape) == shape, name
            assert stored[name].dtype == torch.float32, name
            p.copy_(stored[name].to(torch.float64))
    return model


def ordered_parameters(model):
    """(name, parameter) in the contract table's order (module registration order differs)."""
    params = dict(model.named_parameters())
    return [(name, params[name]) for name, _ in contract_table(model.cfg)]


# ----------------------------------------------------------------------------------------------
# Kernel fixtures
# ----------------------------------------------------------------------------------------------

def kernel_fixtures(gen):
    def randn(*shape, std=1.0, mean=0.0):
        return (mean + std * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(torch.float32)

    out = {}

    def grads(f, inputs, upstream=None):
        xs = [x.to(torch.float64).requires_grad_(True) for x in inputs]
        y = f(*xs)
        scalar = (y * upstream.to(torch.float64)).sum() if upstream is not None else y.sum()
        gs = torch.autograd.grad(scalar, xs)
        return y.detach(), gs

    # layernorm (eps 1e-5, biased variance); rows with non-tiny variance and offsets
    x = (randn(5, 7, std=2.0).to(torch.float64) + torch.randn(5, 1, generator=gen, dtype=torch.float64)).float()
    w, b, r = randn(7, mean=1.0, std=0.2), randn(7, std=0.1), randn(5, 7)
    y, (dx, dw, db) = grads(lambda x, w, b: F.layer_norm(x, (7,), w, b, LN_EPS), [x, w, b], r)
    out.update({"layernorm.x": x, "layernorm.weight": w, "layernorm.bias": b, "layernorm.upstream": r,
                "layernorm.y": y, "layernorm.dx": dx, "layernorm.dweight": dw, "layernorm.dbias": db})

    # exact (erf) GELU
    x, r = randn(13, std=2.0), randn(13)
    y, (dx,) = grads(lambda x: F.gelu(x), [x], r)
    out.update({"gelu.x": x, "gelu.upstream": r, "gelu.y": y, "gelu.dx": dx})

    # masked softmax over rows (1 = allowed)
    logits, r = randn(4, 6, std=2.0), randn(4, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 0, 1], [0, 0, 0, 1, 0, 0], [1, 1, 0, 1, 1, 0]],
                        dtype=torch.int64)
    y, (dl,) = grads(lambda z: torch.softmax(z.masked_fill(mask == 0, float("-inf")), dim=-1), [logits], r)
    assert (y[mask == 0] == 0).all() and (dl[mask == 0] == 0).all()
    out.update({"softmax.logits": logits, "softmax.mask": mask, "softmax.upstream": r,
                "softmax.probs": y, "softmax.dlogits": dl})

    # cross-entropy, ignore index -1, with and without label smoothing 0.1 (mean over kept rows)
    logits = randn(5, 6, std=1.5)
    targets = torch.tensor([3, -1, 0, 5, 2], dtype=torch.int64)
    for prefix, eps in [("cross_entropy", 0.1), ("cross_entropy_plain", 0.0)]:
        loss, (dl,) = grads(lambda z: ls_cross_entropy(z, targets, eps).reshape(1), [logits])
        ref = F.cross_entropy(logits.double(), targets, ignore_index=-1, label_smoothing=eps)
        assert torch.allclose(loss[0], ref, rtol=1e-14, atol=0)
        assert (dl[1] == 0).all()
        out.update({prefix + ".logits": logits.clone(), prefix + ".targets": targets.clone(),
                    prefix + ".loss": loss, prefix + ".dlogits": dl})

    # cosine similarity of L2-normalised rows, x / max(|x|, 1e-12)
    u, v, r = randn(3, 5), randn(4, 5), randn(3, 4)
    sim, (du, dv) = grads(lambda u, v: F.normalize(u, dim=-1, eps=1e-12) @ F.normalize(v, dim=-1, eps=1e-12).T,
                          [u, v], r)
    out.update({"cosine.u": u, "cosine.v": v, "cosine.upstream": r, "cosine.sim": sim,
                "cosine.du": du, "cosine.dv": dv})
    return {k: t.contiguous() for k, t in out.items()}


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------

def print_caption_mask(model):
    """A tiny example: 1 image token, captions of lengths 3 and 2 (so the second is padded)."""
    names = ["SPE", "I"] + [f"x{t}" for t in (1, 2, 3)] + [f"q{t}" for t in (1, 2, 3)]
    masks = model.caption_layout([3, 2], 1)
    for b, tb in enumerate([3, 2]):
        print(f"caption mask, T={tb} (padded to 3); row = query, column = key, 1 = may attend")
        print("      " + " ".join(f"{n:>3}" for n in names))
        for i, n in enumerate(names):
            print(f"  {n:>3} " + " ".join(f"{int(x):>3}" for x in masks[b, i]))


def cross_checks(model, batches):
    """Second opinions on pieces of the forward pass, by different code paths."""
    torch.manual_seed(0)
    with torch.no_grad():
        # 1. attention against torch's scaled_dot_product_attention with the same boolean mask
        layer = model.encoder.layers[0]
        x = torch.randn(2, 5, 16)
        allowed = torch.rand(2, 5, 5) > 0.4
        allowed[:, :, 0] = True
        d, nh = 16, model.cfg["num_heads"]
        ln1 = layer.LayerNormModules[0]
        qkv = F.linear(F.layer_norm(x, (d,), ln1.weight, ln1.bias, LN_EPS),
                       getattr(layer.attention, "self").qkv_proj.weight, getattr(layer.attention, "self").qkv_proj.bias)
        q, k, v = (t.reshape(2, 5, nh, d // nh).transpose(1, 2) for t in qkv.split(d, dim=-1))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None]).transpose(1, 2).reshape(2, 5, d)
        h = x + layer.attention_output.residual_scale * F.linear(o, layer.attention.output.dense.weight,
                                                                 layer.attention.output.dense.bias)
        ln2 = layer.LayerNormModules[1]
        mlp = nn.Sequential(nn.Linear(d, 64), nn.GELU(), nn.Linear(64, d)).double()
        mlp[0].weight.copy_(layer.ffn.dense.weight); mlp[0].bias.copy_(layer.ffn.dense.bias)
        mlp[2].weight.copy_(layer.ffn.dense2.weight); mlp[2].bias.copy_(layer.ffn.dense2.bias)
        y = h + layer.ffn_output.residual_scale * mlp(F.layer_norm(h, (d,), ln2.weight, ln2.bias, LN_EPS))
        err = (y - layer(x, allowed, nh)).abs().max().item()
        print(f"encoder layer vs scaled_dot_product_attention + nn.Linear/GELU: max abs diff {err:.3g}")
        assert err < 1e-12
        # 2. padding invariance: each padded text row equals the same row encoded alone
        rows = batches["image-classification"]["class_rows"]
        padded_h = model.text_hidden(rows)
        err = max((padded_h[i, :1 + len(r)] - model.text_hidden([r])[0]).abs().max().item()
                  for i, r in enumerate(rows))
        print(f"padded vs unpadded text encoding: max abs diff {err:.3g}")
        assert err < 1e-12
        # 3. captioning padding invariance: the batch loss equals the length-weighted mean of
        #    single-row losses (each row encoded without padding)
        cap = f64_batch(batches["captioning"])
        full = model.loss("captioning", cap).item()
        parts = [model.loss("captioning", {"images": cap["images"][i:i + 1], "text_rows": [r]}).item() * len(r)
                 for i, r in enumerate(cap["text_rows"])]
        single = sum(parts) / sum(len(r) for r in cap["text_rows"])
        print(f"captioning loss, padded batch vs per-row: {full:.15g} vs {single:.15g}")
        assert abs(full - single) < 1e-12
        # 4. the objective's LS-CE equals torch's cross_entropy(label_smoothing=...)
        z = torch.randn(4, 7)
        t = torch.tensor([1, 0, 6, 3])
        assert abs(ls_cross_entropy(z, t, 0.1) - F.cross_entropy(z, t, label_smoothing=0.1)) < 1e-14
        # 5. spatial table rebuilt the way the official code does it: torch.meshgrid(grid_w, grid_h)
        #    (ij indexing, so grid[0] is the row index of the flattened grid), MAE's 1-D sin-cos
        #    (sin block then cos block, omega = 1/10000^(k/(dim/2)) with dim = D/2) per axis.
        g, dd = model.cfg["image_size"] // model.cfg["patch_size"], model.cfg["hidden_size"]
        ar = torch.arange(g, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(ar, ar, indexing="ij"))  # [2, g, g]

        def one_d(dim, pos):
            omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
            out = pos.reshape(-1)[:, None] * omega[None, :]
            return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

        official = torch.cat([one_d(dd // 2, grid[0]), one_d(dd // 2, grid[1])], dim=1)
        err = (official - model.spatial()).abs().max().item()
        print(f"spatial table vs official-style meshgrid construction: max abs diff {err:.3g}")
        assert err < 1e-12


def self_check(model, batches):
    """Caption-mask printout, then gradcheck (float64, full Jacobian) of each task's loss with
    respect to every parameter at once."""
    from torch.func import functional_call
    print_caption_mask(model)
    cross_checks(model, batches)
    named = ordered_parameters(model)
    names = [n for n, _ in named]
    for task in TASKS:
        batch = f64_batch(batches[task])

        def loss_of(*ps):
            return functional_call(model, dict(zip(names, ps)), (task, batch))

        inputs = tuple(p.detach().clone().requires_grad_(True) for _, p in named)
        ok = torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=False)
        print(f"gradcheck {task} over {sum(p.numel() for p in inputs)} coordinates: {ok}", flush=True)


# ----------------------------------------------------------------------------------------------

def verify():
    """--verify: writes nothing. Recomputes every committed fixture's outputs from its committed
    inputs with this script's float64 reference (the checkpoints as they are, not redrawn: which
    MoE weight attempt passes `float32_conditioned` can differ between torch builds) and prints the
    worst relative difference per file; exits 1 above 1e-10. Also checks that the committed batches
    and kernel inputs are the ones the seed draws."""
    gen = torch.Generator().manual_seed(SEED)
    random_weights(TINY_CONFIG, gen)
    batches = make_batches(TINY_CONFIG, gen)
    worst_all = 0.0

    def compare(name, expected, actual):
        nonlocal worst_all
        assert expected.keys() == actual.keys(), f"{name}: tensors {sorted(set(expected) ^ set(actual))}"
        worst = 0.0
        for key in expected:
            e, a = expected[key].double(), actual[key].double()
            scale = e.abs().max().item() if e.numel() else 0.0
            diff = (e - a).abs().max().item() if e.numel() else 0.0
            worst = max(worst, diff / scale if scale else diff)
        worst_all = max(worst_all, worst)
        print(f"{name}: {len(expected)} tensors, worst relative difference {worst:.3g}")

    def outputs(model, names, task):
        model.zero_grad(set_to_none=True)
        loss = model.loss(task, f64_batch(batches[task]))
        loss.backward()
        params = dict(model.named_parameters())
        out = batch_tensors(task, batches[task])
        out["loss"] = loss.detach().reshape(1)
        for n in names:
            g = params[n].grad
            out["grad." + n] = torch.zeros_like(params[n]) if g is None else g.detach()
        return out

    dense = build_model(os.path.join(HERE, "dense_tiny.safetensors"))
    names = [n for n, _ in ordered_parameters(dense)]
    for task in TASKS:
        compare(f"dense_{task}", load_file(os.path.join(HERE, f"dense_{task}.safetensors")), outputs(dense, names, task))
    for routing in MOE_ROUTINGS:
        cfg = moe_config(routing)
        model = build_moe_model(os.path.join(HERE, f"moe_{routing}_tiny.safetensors"), cfg)
        names = [n for n, _ in moe_table(cfg)]
        for task in TASKS:
            path = os.path.join(HERE, f"moe_{routing}_{task}.safetensors")
            compare(f"moe_{routing}_{task}", load_file(path), outputs(model, names, task))
    compare("kernels", load_file(os.path.join(KERNEL_DIR, "kernels.safetensors")), kernel_fixtures(gen))
    print(f"worst relative difference over every file: {worst_all:.3g}")
    sys.exit(0 if worst_all <= 1e-10 else 1)


def main():
    if "--verify" in sys.argv:
        verify()
    check = "--check" in sys.argv
    if "--moe-only" in sys.argv:
        # Leaves the dense and kernel files byte-identical; checks that the dense reference still
        # reproduces the committed dense losses (the MoE plumbing must not change them).
        model = build_model(os.path.join(HERE, "dense_tiny.safetensors"))
        gen = torch.Generator().manual_seed(SEED)
        random_weights(TINY_CONFIG, gen)  # advance the generator exactly as main() does
        batches = make_batches(TINY_CONFIG, gen)
        for task in TASKS:
            stored = load_file(os.path.join(HERE, f"dense_{task}.safetensors"))["loss"].item()
            now = model.loss(task, f64_batch(batches[task])).item()
            assert now == stored, f"dense {task}: loss {now} differs from the committed {stored}"
        print("dense reference unchanged: all four committed dense losses reproduced exactly")
        moe_fixtures(batches, check)
        return
    gen = torch.Generator().manual_seed(SEED)
    weights = random_weights(TINY_CONFIG, gen)
    ckpt = os.path.join(HERE, "dense_tiny.safetensors")
    save_file(weights, ckpt, metadata=provenance({
        "format": "task-interference/checkpoint", "version": "1", "kind": "dense",
        "config": json.dumps(TINY_CONFIG)}))
    model = build_model(ckpt)
    batches = make_batches(TINY_CONFIG, gen)
    summary = {}
    for task in TASKS:
        model.zero_grad(set_to_none=True)
        loss = model.loss(task, f64_batch(batches[task]))
        loss.backward()
        out = batch_tensors(task, batches[task])
        out["loss"] = loss.detach().reshape(1).contiguous()
        for name, p in ordered_parameters(model):
            g = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone().contiguous()
            assert torch.isfinite(g).all(), f"{task} {name}: non-finite gradient"
            out["grad." + name] = g
        save_file(out, os.path.join(HERE, f"dense_{task}.safetensors"), metadata=provenance({"task": task}))
        summary[task] = (loss.item(), {n: out["grad." + n].norm().item() for n, _ in ordered_parameters(model)})
    os.makedirs(KERNEL_DIR, exist_ok=True)
    save_file(kernel_fixtures(gen), os.path.join(KERNEL_DIR, "kernels.safetensors"), metadata=provenance())

    for task, (loss, norms) in summary.items():
        zero = [n for n, v in norms.items() if v == 0]
        print(f"{task}: loss {loss:.12g}; exactly-zero gradients: {zero}")
        for n in ["encoder.layers.0.ffn.dense2.weight", "encoder.layers.1.ffn.dense2.weight",
                  "encoder.layers.1.attention.self.qkv_proj.weight", "token_embed.embeddings.weight",
                  "video_embed.embeddings.weight", "predictor.proj.weight"]:
            print(f"    |grad {n}| = {norms[n]:.6g}")
    if check:
        self_check(model, batches)
    moe_fixtures(batches, check)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""qkv's GPT in PyTorch: rebuild a model that `qkv export --to pytorch` wrote, and write files qkv imports.

This is the bridge out of qkv. qkv's GPT and the PyTorch model below compute the same numbers (the
parity tests check it to ~1e-6 relative in f32 and ~1e-15 in f64); only the names differ, and
`qkv export --to pytorch` already writes PyTorch's. So moving a trained model is three lines:

    import qkv_gpt                                   # this file (tests/pytorch/qkv_gpt.py)
    model, meta = qkv_gpt.load("reverse.pytorch.safetensors")
    logits = model(torch.tensor([[1, 2, 3]]))       # (1, 3, vocab)

and `qkv_gpt.save(model, "mine.safetensors")` goes the other way, for `qkv import --from pytorch`.

Debian's PyTorch 1.13 has no `safetensors` package, so the format is read and written here by hand:
8 bytes of little-endian header length, a JSON header naming each tensor's dtype, shape and byte
range (plus string metadata under "__metadata__"), then the raw little-endian data.

The model: learned token and position embeddings, pre-LayerNorm blocks (one fused QKV Linear with
bias, causal softmax attention scaled by 1/sqrt(D), an output Linear with bias, an MLP of `hidden`
units with exact-erf GELU), a final LayerNorm, an LM head without bias — the model of
tests/bench/bench_train_torch.py, with the same parameter names. The configuration comes from the
tensors' shapes; only the number of heads is not visible in them and is read from the metadata
(`model.heads`, written by text models, or `run.heads`, written by task models) unless given.

Command line (run with Debian's /usr/bin/python3, which has torch):
    qkv_gpt.py logits MODEL IDS OUT [--heads H]    logits of MODEL on the i32/i64 tensor "ids" in IDS,
                                                  written to OUT as "logits" (and "ids")
    qkv_gpt.py compare A B NAME [--rtol R]        max |a - b| / max |b| of tensor NAME in files A and B;
                                                  exit 1 when it is above R (default 1e-5)
    qkv_gpt.py random OUT --vocab V --block B --dim C --heads H --layers L [--seed S] [--dtype f32|f64]
                                                  a randomly initialised model (N(0, 0.02) weights, and
                                                  non-zero biases and norms so every tensor matters)
"""
import argparse
import json
import math
import re
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors, by hand ---------------------------------------------------------------------------

DTYPES = {  # safetensors name <-> torch dtype, for every dtype PyTorch writes for these models
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    """Return ({name: tensor}, {metadata key: value}) of the safetensors file at `path`."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = blob[8 + n:]
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} (in name order) and string metadata to `path` as safetensors. The bytes
    depend only on the arguments, so two runs that compute the same tensors write the same file."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the format recommends
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# ---- the model --------------------------------------------------------------------------------------

class Attention(nn.Module):
    """Causal multi-head self-attention; keeps its attention weights (B, H, T, T) when `record`."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.record, self.weights = heads, False, None
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.heads, C // self.heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        p = F.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
        if self.record:
            p.retain_grad()  # harmless when no backward runs; lets a test read d(loss)/d(weights) too
            self.weights = p
        return self.proj((p @ v).transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    """qkv's nn::GPT (pre-LN, untied head), under the names of bench_train_torch.py."""

    def __init__(self, vocab, block_size, dim, heads, layers, hidden=0):
        super().__init__()
        self.config = dict(vocab=vocab, block_size=block_size, dim=dim, heads=heads, layers=layers,
                           hidden=hidden or 4 * dim)
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(block_size, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden or 4 * dim) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids):
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln_f(h))

    def record_attention(self, on=True):
        for b in self.blocks:
            b.attn.record = on


def config_of(tensors, meta, heads=None):
    """The GPT configuration of a state dict: sizes from the tensors' shapes, heads from `heads` or
    the metadata. Raises ValueError naming what is missing."""
    for name in ("tok.weight", "pos.weight", "head.weight"):
        if name not in tensors:
            raise ValueError(f"not a qkv GPT exported for PyTorch: no tensor '{name}'")
    vocab, dim = tensors["tok.weight"].shape
    layers = 0
    while f"blocks.{layers}.fc1.weight" in tensors:
        layers += 1
    if heads is None:
        for key in ("model.heads", "run.heads"):
            if key in meta:
                heads = int(meta[key])
                break
        else:
            raise ValueError("the number of heads is not in the file's metadata (model.heads or run.heads): give --heads")
    hidden = tensors["blocks.0.fc1.weight"].shape[0] if layers else 4 * dim
    return dict(vocab=vocab, block_size=tensors["pos.weight"].shape[0], dim=dim, heads=heads, layers=layers,
                hidden=hidden)


def load(path, heads=None):
    """The model in `path` (written by `qkv export --to pytorch`, or by save()), in eval mode and in the
    file's floating-point dtype, and the file's metadata. Every tensor must fit (strict loading)."""
    tensors, meta = read_safetensors(path)
    model = GPT(**config_of(tensors, meta, heads))
    dtype = tensors["tok.weight"].dtype
    model.to(dtype)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), meta


def save(model, path, metadata=None):
    """Write `model`'s state dict to `path`, with its configuration as `model.*` metadata, for
    `qkv import --from pytorch`."""
    meta = {f"model.{k}": v for k, v in model.config.items()}
    meta.update(metadata or {})
    write_safetensors(path, dict(model.state_dict()), meta)


def randomize(model, seed):
    """Weights N(0, 0.02) as both frameworks initialise them, and — unlike a fresh model — non-zero
    biases and non-unit norms, so a test that loads the wrong tensor into a bias or a norm fails."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.02)
            elif "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g, dtype=torch.float64))


# ---- GPT-2's layout -----------------------------------------------------------------------------------
# The same model as GPT above, laid out as GPT-2's checkpoints are (the names and shapes a user's
# model.safetensors has): projections are "Conv1D", weight (in, out) and y = x W + b; the head is the
# token embedding (tied); GELU by its tanh approximation; each attention layer keeps its causal mask as
# a buffer "bias" (1, 1, n_ctx, n_ctx), which is saved with the weights.

class Conv1D(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Gpt2Attention(nn.Module):
    def __init__(self, dim, heads, n_ctx):
        super().__init__()
        self.heads = heads
        self.c_attn, self.c_proj = Conv1D(dim, 3 * dim), Conv1D(dim, dim)
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx))

    def forward(self, x, cache=None):
        """x (B, T, C). With `cache` (a dict, filled on the first call): attend also to the cached keys
        and values, and append x's — generation one token at a time."""
        B, T, C = x.shape
        H, D = self.heads, C // self.heads
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        S = k.shape[2]  # keys: the cached positions, then these T
        s = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        allowed = self.bias[:, :, S - T:S, :S].bool()
        p = F.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
        return self.c_proj((p @ v).transpose(1, 2).reshape(B, T, C))


class Gpt2Block(nn.Module):
    def __init__(self, dim, heads, n_ctx, eps):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn = Gpt2Attention(dim, heads, n_ctx)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = Conv1D(dim, 4 * dim), Conv1D(4 * dim, dim)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    """GPT-2 (Radford et al. 2019) under its own names: wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj,
    ln_2, mlp.c_fc, mlp.c_proj}, ln_f; the head is wte."""

    def __init__(self, vocab, n_ctx, dim, heads, layers, eps=1e-5):
        super().__init__()
        self.config = dict(vocab_size=vocab, n_positions=n_ctx, n_embd=dim, n_head=heads, n_layer=layers,
                           layer_norm_epsilon=eps)
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(n_ctx, dim)
        self.h = nn.ModuleList(Gpt2Block(dim, heads, n_ctx, eps) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim, eps=eps)

    def forward(self, ids, caches=None, start=0):
        """Logits (B, T, V) of ids (B, T) at positions start..start+T-1; `caches` (one dict per block)
        for generation with a key/value cache."""
        x = self.wte(ids) + self.wpe(torch.arange(start, start + ids.shape[1]))
        for i, b in enumerate(self.h):
            x = b(x, None if caches is None else caches[i])
        return self.ln_f(x) @ self.wte.weight.t()

    def generate_greedy(self, ids, steps):
        """Greedy continuation, recomputing the window of the last n_ctx tokens for each new token
        (as qkv's GPT::generate reads past its context); returns the new ids and each step's margin
        between the two most likely tokens."""
        n_ctx = self.config["n_positions"]
        out, margins = list(ids), []
        with torch.no_grad():
            for _ in range(steps):
                logits = self(torch.tensor([out[-n_ctx:]]))[0, -1]
                top = torch.topk(logits.double(), 2).values
                margins.append((top[0] - top[1]).item())
                out.append(int(torch.argmax(logits)))
        return out[len(ids):], margins

    def save(self, directory):
        """model.safetensors and config.json, as a GPT-2 directory has them."""
        import os
        os.makedirs(directory, exist_ok=True)
        write_safetensors(os.path.join(directory, "model.safetensors"), dict(self.state_dict()), {"format": "pt"})
        config = dict(self.config, n_ctx=self.config["n_positions"], n_inner=None, activation_function="gelu_new",
                      model_type="gpt2", tie_word_embeddings=True, architectures=["GPT2LMHeadModel"])
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")


# ---- GPT-2's tokenizer files ----------------------------------------------------------------------------
# GPT-2 writes every byte as one printable character: printable Latin-1 bytes stand for themselves, the
# other 68 take U+0100 onwards in byte order (the space is 'Ġ'). Its vocabulary numbers the 256 bytes in
# that order: the printable ones first, then the others.

def byte_chars():
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    order = printable + [b for b in range(256) if b not in printable]
    return table, order


# GPT-2's pre-split rule, for ASCII text (its letters and digits classes are Unicode's; on ASCII they are
# these). Enough for the test texts, which are ASCII.
PRE_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def merge_pair(word, pair):
    """`word` (a sequence of token spellings) with every occurrence of `pair`, left to right, joined."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_gpt2_bpe(text, merges):
    """A small byte-level BPE in GPT-2's file format: (vocab {spelling: id}, merges [(a, b)]). Pairs are
    counted inside pre-split chunks; the most frequent pair is merged (ties: the pair seen first)."""
    table, order = byte_chars()
    words = [tuple(table[b] for b in chunk.encode()) for chunk in PRE_SPLIT.findall(text)]
    vocab = {table[b]: i for i, b in enumerate(order)}
    rules = []
    for _ in range(merges):
        counts = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts, key=counts.get)
        rules.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        words = [tuple(merge_pair(w, best)) for w in words]
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, rules


def gpt2_encode(text, vocab, rules):
    """GPT-2's encoding: pre-split, then in each chunk merge the adjacent pair whose rule came first,
    all its occurrences, until no pair has a rule."""
    table, _ = byte_chars()
    rank = {pair: i for i, pair in enumerate(rules)}
    ids = []
    for chunk in PRE_SPLIT.findall(text):
        w = [table[b] for b in chunk.encode()]
        while len(w) > 1:
            pairs = [(rank.get(p, len(rank)), p) for p in zip(w, w[1:])]
            r, best = min(pairs)
            if r == len(rank):
                break
            w = merge_pair(w, best)
        ids += [vocab[t] for t in w]
    return ids


def write_gpt2_tokenizer(directory, vocab, rules):
    """vocab.json and merges.txt as GPT-2's tokenizer has them."""
    import os
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in rules))


# ---- command line -----------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("model")
    lg.add_argument("ids")
    lg.add_argument("out")
    lg.add_argument("--heads", type=int)
    cp = sub.add_parser("compare")
    cp.add_argument("a")
    cp.add_argument("b")
    cp.add_argument("name")
    cp.add_argument("--rtol", type=float, default=1e-5)
    rd = sub.add_parser("random")
    rd.add_argument("out")
    for flag in ("vocab", "block", "dim", "heads", "layers"):
        rd.add_argument("--" + flag, type=int, required=True)
    rd.add_argument("--seed", type=int, default=0)
    rd.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.cmd == "logits":
        model, _ = load(a.model, a.heads)
        ids = read_safetensors(a.ids)[0]["ids"].long()
        with torch.no_grad():
            logits = model(ids)
        write_safetensors(a.out, {"ids": ids, "logits": logits})
        print(f"logits {tuple(logits.shape)} of '{a.model}' ({model.config}) written to '{a.out}'")
    elif a.cmd == "compare":
        x, y = read_safetensors(a.a)[0][a.name].double(), read_safetensors(a.b)[0][a.name].double()
        if x.shape != y.shape:
            print(f"{a.name}: shapes differ: {tuple(x.shape)} in '{a.a}', {tuple(y.shape)} in '{a.b}'")
            return 1
        err = ((x - y).abs().max() / y.abs().max()).item()
        ok = err <= a.rtol
        print(f"{a.name} {tuple(x.shape)}: max |a - b| / max |b| = {err:.3g} ({'within' if ok else 'ABOVE'} {a.rtol:g})")
        return 0 if ok else 1
    else:
        model = GPT(a.vocab, a.block, a.dim, a.heads, a.layers)
        model.to(torch.float64 if a.dtype == "f64" else torch.float32)
        randomize(model, a.seed)
        save(model, a.out)
        print(f"random GPT {model.config} ({a.dtype}, seed {a.seed}) written to '{a.out}'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

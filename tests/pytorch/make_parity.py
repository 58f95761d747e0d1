#!/usr/bin/env python3
"""Write the PyTorch reference files of qkv's parity tests (tests/parity/*.safetensors).

For each small GPT configuration below, in f32 and in f64, PyTorch computes from one set of random
weights and one batch: the logits, the loss, the gradient of every parameter, every layer's
attention weights, and every parameter after one AdamW step. Each file holds all of it:

    tok.weight, pos.weight, blocks.N.…, ln_f.*, head.weight   the weights, under PyTorch's names
    ref.ids, ref.targets                                    the batch (I64, PyTorch's integer type;
                                                            targets of -100 are ignored by the loss)
    ref.logits (B, T, V), ref.loss ()                       the forward pass
    ref.grad.<name>                                         d loss / d <name>
    ref.attn.N (B, H, T, T)                                 block N's attention weights
    ref.adamw.<name>                                        <name> after one AdamW step
    metadata: model.* (the configuration), adamw.* (lr, betas, eps, weight_decay), torch's version

and, in gpt2/, a small random model in GPT-2's layout with its tokenizer files, the ids of a prompt,
PyTorch's logits for it and a greedy continuation (see gpt2_reference()).

tests/test_parity.cpp loads each file into qkv's GPT (through the PyTorch name map, as a user's file
would be), runs the same computation, and compares. The files are committed, so those tests need no
PyTorch; CI, which has Debian's python3-torch, runs this script again (ctest parity.regenerate) and
requires the same bytes.

Same bytes on another machine: the weights and batches come from PyTorch's CPU generator (a
Mersenne Twister, the same everywhere); the computed tensors would differ in their last bits where
PyTorch or OpenBLAS pick kernels by CPU (AVX2, AVX-512). So the script pins both to their generic
code before PyTorch loads: ATEN_CPU_CAPABILITY=default, OPENBLAS_CORETYPE=Prescott (SSE3, present on
every x86-64), one thread. It re-executes itself with those variables when they are not set.

Usage (Debian's /usr/bin/python3 has torch):
    make_parity.py OUT_DIR                       the committed references
    make_parity.py OUT_DIR --seed 5              the same configurations, other weights and batches
    make_parity.py OUT_DIR --config big=50,32,64,4,3,256,4,32
                                                 configurations of your own (name=vocab,block,dim,heads,
                                                 layers,hidden,batch,T; repeatable)
and then `QKV_PARITY_DIR=OUT_DIR build/tests/qkv_tests "[parity]"` checks qkv against those files too.
"""
import os
import sys

PINNED = {"ATEN_CPU_CAPABILITY": "default", "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "1",
          "OPENBLAS_NUM_THREADS": "1"}
if any(os.environ.get(k) != v for k, v in PINNED.items()):
    os.environ.update(PINNED)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402  (after the environment it reads at load time)
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qkv_gpt  # noqa: E402

# name: (vocab, block, dim, heads, layers, hidden, batch, T, seed). "small" fills its context and has
# two layers; "odd" has a sequence shorter than its context, 3 heads of 4 and a hidden width that is
# not 4·C, so a transposed or mis-sized tensor cannot pass by luck.
CONFIGS = {
    "small": (11, 8, 16, 2, 2, 64, 3, 8, 1),
    "odd": (7, 12, 12, 3, 1, 20, 2, 5, 2),
}
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)  # torch.optim.AdamW's defaults


def reference(name, dtype):
    vocab, block, dim, heads, layers, hidden, batch, T, seed = CONFIGS[name]
    model = qkv_gpt.GPT(vocab, block, dim, heads, layers, hidden).to(dtype)
    qkv_gpt.randomize(model, seed)
    g = torch.Generator().manual_seed(100 + seed)
    ids = torch.randint(vocab, (batch, T), generator=g)
    targets = torch.randint(vocab, (batch, T), generator=g)
    targets[0, min(1, T - 1)] = targets[-1, -1] = -100  # positions the loss must skip (two, when T > 1)
    if targets.numel() <= 2:
        targets[0, 0] = 0  # ... but not every position
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.record_attention()
    logits = model(ids)
    loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=-100)
    loss.backward()
    out = dict(weights)
    out["ref.ids"], out["ref.targets"] = ids, targets
    out["ref.logits"], out["ref.loss"] = logits.detach(), loss.detach()
    for i, b in enumerate(model.blocks):
        out[f"ref.attn.{i}"] = b.attn.weights.detach()
    for k, p in model.named_parameters():
        out[f"ref.grad.{k}"] = p.grad.detach().clone()
    torch.optim.AdamW(model.parameters(), **ADAMW).step()
    for k, p in model.named_parameters():
        out[f"ref.adamw.{k}"] = p.detach().clone()

    meta = {f"model.{k}": v for k, v in model.config.items()}
    meta.update({"adamw.lr": ADAMW["lr"], "adamw.beta1": ADAMW["betas"][0], "adamw.beta2": ADAMW["betas"][1],
                 "adamw.eps": ADAMW["eps"], "adamw.weight_decay": ADAMW["weight_decay"],
                 "made_by": "tests/pytorch/make_parity.py", "torch": torch.__version__})
    return out, meta


# GPT-2's layout: a small random model saved as a GPT-2 directory (config.json, model.safetensors with
# GPT-2's names, Conv1D shapes and mask buffers; vocab.json and merges.txt of a BPE trained on the text
# below), and PyTorch's answers: the prompt's ids, its logits, and a greedy continuation that runs past
# the context (so the window slides).
GPT2_TEXT = """the cat sat on the mat. the dog sat on the log, and the cat's dog ate 12 apples.
then the dog said: "that cat is mine!" and they sat on the mat again, 3 times.
"""
GPT2_PROMPT = "the dog's cat sat on 12 mats, and then"
GPT2_STEPS = 12


def gpt2_reference(out_dir):
    directory = os.path.join(out_dir, "gpt2")
    vocab, rules = qkv_gpt.train_gpt2_bpe(GPT2_TEXT, 60)
    model = qkv_gpt.Gpt2(len(vocab), 16, 24, 3, 2)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    model.eval()
    model.save(directory)
    qkv_gpt.write_gpt2_tokenizer(directory, vocab, rules)
    ids = qkv_gpt.gpt2_encode(GPT2_PROMPT, vocab, rules)
    with torch.no_grad():
        logits = model(torch.tensor([ids]))
    generated, margins = model.generate_greedy(ids, GPT2_STEPS)
    # A greedy choice that two logits nearly tie for could go either way on another machine's
    # round-off: the reference is only useful if every choice is clear.
    assert min(margins) > 1e-3, f"a greedy step is nearly tied (margin {min(margins):.2g}): pick another seed"
    assert len(ids) + GPT2_STEPS > 16, "the continuation must run past the context"
    assert len(set(generated)) >= 4, f"a continuation of {len(set(generated))} distinct tokens tests little: pick another seed"
    qkv_gpt.write_safetensors(os.path.join(directory, "reference.safetensors"),
                              {"ref.prompt_ids": torch.tensor([ids]), "ref.logits": logits,
                               "ref.generated": torch.tensor([generated])},
                              {"prompt": GPT2_PROMPT, "steps": GPT2_STEPS, "made_by": "tests/pytorch/make_parity.py",
                               "torch": torch.__version__})
    print(f"{directory}: GPT-2 layout, {len(vocab)} tokens, prompt of {len(ids)} tokens, "
          f"{GPT2_STEPS} greedy steps (smallest margin {min(margins):.3f})")


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0, help="added to every configuration's seed (0: the committed files)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=V,BLOCK,C,H,L,HIDDEN,B,T",
                    help="a configuration of your own instead of the built-in ones (repeatable)")
    a = ap.parse_args()
    out_dir = a.out_dir
    if a.config:
        CONFIGS.clear()
        for spec in a.config:
            name, numbers = spec.split("=")
            values = [int(v) for v in numbers.split(",")]
            if len(values) != 8:
                sys.exit(f"--config {spec}: expected NAME=vocab,block,dim,heads,layers,hidden,batch,T")
            CONFIGS[name] = tuple(values) + (1,)
    for name, c in CONFIGS.items():
        CONFIGS[name] = c[:-1] + (c[-1] + a.seed,)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name in CONFIGS:
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            tensors, meta = reference(name, dtype)
            path = os.path.join(out_dir, f"gpt_{name}_{tag}.safetensors")
            qkv_gpt.write_safetensors(path, tensors, meta)
            print(f"{path}: {len(tensors)} tensors, loss {tensors['ref.loss'].item():.6f}")
    if not a.config and a.seed == 0:
        gpt2_reference(out_dir)


if __name__ == "__main__":
    main()

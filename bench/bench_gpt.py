"""Speed of a GPT training step and of generation: tinytensor against the same model in PyTorch, in one run.

Model: models/gpt2.py at L6 H6 C384, T256, vocabulary 4096, no biases, no dropout. A training step is
forward + backward + AdamW on a batch of B=8; generation is 256 new tokens from one token, no kv-cache
(each token reruns the model on the last <= 256 tokens). The PyTorch model is written here with the
same architecture and gets tinytensor's weights, so both compute the same loss (printed as a check).
The two libraries take turns (a burst of load from elsewhere hits both), and each one's best
round counts: prints those seconds and the ratio (torch time / tinytensor time: above 1, tinytensor is
faster). --profile also prints where a tinytensor step spends its kernel time, by primitive and shape.

Run: python bench/bench_gpt.py [--steps 5] [--gen-tokens 256] [--gen-rounds 2] [--threads 2] [--profile] [--small]
Takes about 3 minutes on 2 cores (--small: the storyteller's L2 H4 C128 T128 B32 step, seconds).
Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import collections
import functools
import time

import numpy as np

import tinytensor as tt
from bench_matmul import best_times
from models.gpt2 import GPT, GPTConfig

try:
    import torch
except ImportError:  # PyTorch is an optional comparison
    torch = None


def torch_gpt(model: GPT):
    """The same GPT in PyTorch (pre-norm, tanh GELU, tied head), holding a copy of model's weights."""
    nn, F = torch.nn, torch.nn.functional
    cfg = model.config
    sd = {k: torch.tensor(v.detach().numpy()) for k, v in model.state_dict().items()}

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(v) for k, v in sd.items()
                                       if k != "lm_head.weight"})

        def w(self, name):
            return self.p[name.replace(".", "_")]

        def forward(self, idx, targets=None):
            B, T = idx.shape
            C, nh = cfg.n_embd, cfg.n_head
            x = self.w("transformer.wte.weight")[idx] + self.w("transformer.wpe.weight")[:T]
            for i in range(cfg.n_layer):
                p = f"transformer.h.{i}."
                h = F.layer_norm(x, (C,), self.w(p + "ln_1.weight"))
                q, k, v = (h @ self.w(p + "attn.c_attn.weight").T).split(C, dim=2)
                q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
                x = x + y @ self.w(p + "attn.c_proj.weight").T
                h = F.layer_norm(x, (C,), self.w(p + "ln_2.weight"))
                h = F.gelu(h @ self.w(p + "mlp.c_fc.weight").T, approximate="tanh")
                x = x + h @ self.w(p + "mlp.c_proj.weight").T
            x = F.layer_norm(x, (C,), self.w("transformer.ln_f.weight"))
            if targets is None:
                return x[:, -1:] @ self.w("transformer.wte.weight").T, None
            logits = x @ self.w("transformer.wte.weight").T
            return logits, F.cross_entropy(logits.view(B * T, -1), targets.view(-1))

    return TorchGPT()


def train_step_fn(model, opt, x, y):
    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def generate_fn(model, block_size: int, n_tokens: int, lib):
    """Greedy decoding without a kv-cache, the same loop for both libraries."""
    def gen():
        idx = lib.zeros((1, 1), dtype=lib.int64)
        with lib.no_grad():
            for _ in range(n_tokens):
                logits, _ = model(idx[:, -block_size:])
                idx = lib.cat([idx, logits[:, -1, :].argmax(-1, keepdim=True)], dim=1)
        return idx
    return gen


STATS = collections.defaultdict(lambda: [0, 0.0])


def instrument() -> None:
    """Time every CPU backend call by (primitive, op, shape)."""
    from tinytensor.backend import cpu
    for name in ("unary", "binary", "where", "reduce", "matmul", "copy", "fill", "gather", "scatter_add",
                 "index_select", "index_add"):
        fn = getattr(cpu, name)

        def wrapped(*a, _fn=fn, _name=name):
            start = time.perf_counter()
            out = _fn(*a)
            view = next((x for x in a if type(x).__name__ == "View"), None)
            key = (_name, a[0] if isinstance(a[0], str) else "", None if view is None else tuple(view.shape))
            STATS[key][0] += 1
            STATS[key][1] += time.perf_counter() - start
            return out
        setattr(cpu, name, functools.wraps(fn)(wrapped))


def print_profile(wall: float, steps: int) -> None:
    total = sum(t for _, t in STATS.values())
    print(f"\nprofile of {steps} tinytensor step(s): {wall / steps * 1e3:.0f} ms/step wall, "
          f"{total / steps * 1e3:.0f} ms/step in kernels, the rest is Python (graph, views, dispatch)")
    by_prim = collections.defaultdict(lambda: [0, 0.0])
    for (name, op, _), (n, t) in STATS.items():
        by_prim[(name, op)][0] += n
        by_prim[(name, op)][1] += t
    for (name, op), (n, t) in sorted(by_prim.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"  {name:12s} {op:8s} {n // steps:5d} calls/step {t / steps * 1e3:8.1f} ms/step {100 * t / total:5.1f}%")
    print("  slowest calls (primitive, op, shape):")
    for (name, op, shape), (n, t) in sorted(STATS.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"    {t / steps * 1e3:8.1f} ms/step  {n // steps:3d}x {name} {op} {shape}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed training steps (best of)")
    ap.add_argument("--gen-tokens", type=int, default=256, help="tokens to generate (0: skip)")
    ap.add_argument("--gen-rounds", type=int, default=2, help="timed generations per library (best of)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="the storyteller's config: L2 H4 C128 T128 B32")
    ap.add_argument("--profile", action="store_true", help="kernel time of a tinytensor step by primitive")
    args = ap.parse_args()
    tt.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    L, H, C, T, B = (2, 4, 128, 128, 32) if args.small else (6, 6, 384, 256, 8)
    V = 4096
    tt.manual_seed(0)
    model = GPT(GPTConfig(block_size=T, vocab_size=V, n_layer=L, n_head=H, n_embd=C, bias=False))
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    print(f"GPT L{L} H{H} C{C} T{T} V{V} B{B}: {model.num_parameters():,} parameters, {args.threads} threads")
    rows = []
    ref = torch_gpt(model) if torch is not None else None
    x, y = tt.tensor(xs), tt.tensor(ys)
    if ref is not None:
        ours, theirs = model(x, y)[1].item(), ref(torch.tensor(xs), torch.tensor(ys))[1].item()
        print(f"same weights, same loss: tinytensor {ours:.5f}, torch {theirs:.5f}")
    step = train_step_fn(model, model.configure_optimizers(0.1, 1e-4), x, y)
    steps = {"tt": step}
    if ref is not None:
        steps["torch"] = train_step_fn(ref, torch.optim.AdamW(ref.parameters(), lr=1e-4, weight_decay=0.1),
                                       torch.tensor(xs), torch.tensor(ys))
    t = best_times(steps, args.steps, min_time=0.0)
    rows.append(("training step (fwd + bwd + AdamW)", t["tt"], t.get("torch")))
    if args.gen_tokens:
        model.eval()
        gens = {"tt": generate_fn(model, T, args.gen_tokens, tt)}
        if ref is not None:
            gens["torch"] = generate_fn(ref, T, args.gen_tokens, torch)
        t = best_times(gens, args.gen_rounds, min_time=0.0)
        rows.append((f"generate {args.gen_tokens} tokens (no kv-cache)", t["tt"], t.get("torch")))
        model.train()
    print(f"\n{'case':40s} {'tinytensor':>12s} {'torch':>10s} {'torch/tt':>9s}")
    for name, a, b in rows:
        tail = f"{b:9.3f}s {b / a:8.2f}x" if b is not None else f"{'-':>10s} {'-':>9s}"
        print(f"{name:40s} {a:11.3f}s {tail}")
    if args.profile:
        instrument()
        start = time.perf_counter()
        for _ in range(2):
            step()
        print_profile(time.perf_counter() - start, 2)


if __name__ == "__main__":
    main()

"""Speed of generation with the kv-cache (chapter 12): tinytensor against the same weights in PyTorch, in one run.

Two models: the bench model of bench/bench_gpt.py (GPT L6 H6 C384, vocabulary 4096, no biases, random
weights) with block_size = prompt + decode length, and the shipped storyteller read from
examples/checkpoints/storyteller (its own size and block_size; the shipped one has block_size 128, so its
prompt and decode lengths are cut to fit: a prompt of block_size // 4 tokens and block_size - that many
decode steps, 32 + 96 for block_size 128; the table says which lengths ran).
For each model and batch size (1 and 8):
- prefill: one forward pass over a (B, prompt) batch into an empty cache, in prompt tokens/s;
- decode: greedy decoding, one token per row per step through the cache, in new tokens/s (B x steps / time).
  Both libraries run the same bare loop (feed the argmax back). PyTorch's model is written here with a
  hand-made nanoGPT-style cache: one preallocated (B, nh, max_len, hs) K and V buffer per layer, written by
  slice assignment, F.scaled_dot_product_attention over the filled part;
- generate(): tinytensor's real decoder (models/generate.py, greedy), prefill and decode together, in new
  tokens/s, against the same PyTorch loop end to end: what the sampling machinery costs on top.
Then speculative decoding on the storyteller with the draft model in examples/checkpoints/storyteller_draft:
plain greedy generate() against speculative_generate() (greedy, so the tokens must be the same; checked) for
a few --num-draft values, over a few story openings, with the draft's acceptance rate; and the same with
sampling at temperature 0.8 (different tokens, the same distribution).

The libraries take turns (a burst of load from elsewhere hits both) and each one's best round counts.
Both use --threads threads. Without PyTorch only tinytensor's numbers are printed.
--profile prints where tinytensor's batch-1 decode step spends its time (cProfile, by function).

Run: python bench/bench_generate.py [--threads 1] [--rounds 3] [--only bench storyteller speculative] [--profile]
    [--clock cpu]   (cpu: count this process's CPU time only, for a core shared with other jobs and --threads 1)
Takes about 3-4 minutes on one core. Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from typing import Callable, Dict, List, Optional

import numpy as np

import tinytensor as tt
from tinytensor.tokenizer import Tokenizer
from models.generate import generate
from models.gpt2 import GPT, GPTConfig
from models.sampling import SamplingParams
from models.speculative import speculative_generate

try:
    import torch
except ImportError:  # PyTorch is an optional comparison
    torch = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORYTELLER = os.path.join(ROOT, "examples", "checkpoints", "storyteller")
DRAFT = os.path.join(ROOT, "examples", "checkpoints", "storyteller_draft")
OPENINGS = ["Once upon a time", "Tom and his dog", "One day, a little girl named Lily", "The sun was"]


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # --clock chooses


def now() -> float:
    """The time the measurements use: wall-clock seconds, or (--clock cpu) the CPU seconds of this process,
    which leave out the time other jobs on a shared core take (with several threads they add up)."""
    return clock()


# ---- PyTorch: the same GPT with a hand-written kv-cache ------------------------------------------------------

class TorchCache:
    """One preallocated K and V buffer per layer, (B, nh, max_len, hs), and how many positions are filled."""

    def __init__(self, n_layer: int, B: int, nh: int, max_len: int, hs: int):
        self.k = [torch.zeros(B, nh, max_len, hs) for _ in range(n_layer)]
        self.v = [torch.zeros(B, nh, max_len, hs) for _ in range(n_layer)]
        self.length = 0


class TorchCachedGPT:
    """models/gpt2.py's GPT in PyTorch (pre-norm, tanh GELU, tied head), inference only, with a kv-cache."""

    def __init__(self, model: GPT):
        self.cfg = model.config
        self.w = {k: torch.tensor(v.detach().float().numpy()) for k, v in model.state_dict().items()}

    def make_cache(self, B: int, max_len: int) -> TorchCache:
        c = self.cfg
        return TorchCache(c.n_layer, B, c.n_head, max_len, c.n_embd // c.n_head)

    def _linear(self, x, name: str):
        return torch.nn.functional.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def _norm(self, x, name: str):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w.get(name + ".bias"))

    def _attend(self, x, cache: TorchCache, i: int, L: int):
        B, T, C = x.shape
        nh = self.cfg.n_head
        q, k, v = self._linear(x, f"transformer.h.{i}.attn.c_attn").split(C, dim=2)
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
        cache.k[i][:, :, L:L + T] = k  # written in place, no concatenation
        cache.v[i][:, :, L:L + T] = v
        keys, values = cache.k[i][:, :, :L + T], cache.v[i][:, :, :L + T]
        if T == 1:  # one new token sees every cached one
            y = torch.nn.functional.scaled_dot_product_attention(q, keys, values)
        else:  # new token j sits at L + j and sees keys 0..L + j
            mask = torch.ones(T, L + T, dtype=torch.bool).tril(diagonal=L)
            y = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self._linear(y.transpose(1, 2).reshape(B, T, C), f"transformer.h.{i}.attn.c_proj")

    def __call__(self, idx, cache: TorchCache):
        """Logits (B, T, V) of the T new tokens idx (B, T); appends them to the cache."""
        L, T = cache.length, idx.shape[1]
        x = self.w["transformer.wte.weight"][idx] + self.w["transformer.wpe.weight"][L:L + T]
        for i in range(self.cfg.n_layer):
            p = f"transformer.h.{i}."
            x = x + self._attend(self._norm(x, p + "ln_1"), cache, i, L)
            h = torch.nn.functional.gelu(self._linear(self._norm(x, p + "ln_2"), p + "mlp.c_fc"), approximate="tanh")
            x = x + self._linear(h, p + "mlp.c_proj")
        cache.length += T
        return self._norm(x, "transformer.ln_f") @ self.w["transformer.wte.weight"].T


# ---- the timed loops ------------------------------------------------------------------------------------------

def tt_decode(model: GPT, prompt: np.ndarray, steps: int) -> Dict[str, object]:
    """Prefill the (B, T0) prompt, then `steps` greedy one-token steps: seconds of each part, and the tokens."""
    B, T0 = prompt.shape
    with tt.no_grad():
        cache = model.make_cache(B, max_len=T0 + steps)
        start = now()
        logits, _ = model(tt.tensor(prompt, dtype=tt.int64), cache=cache)
        nxt = logits[:, -1, :].argmax(-1, keepdim=True)  # (B, 1)
        mid = now()
        out = [nxt]
        for _ in range(steps):
            logits, _ = model(nxt, cache=cache)
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            out.append(nxt)
        end = now()
    return {"prefill": mid - start, "decode": end - mid, "tokens": tt.cat(out, dim=1).numpy()}


def torch_decode(model: TorchCachedGPT, prompt: np.ndarray, steps: int) -> Dict[str, object]:
    """The same loop in PyTorch."""
    B, T0 = prompt.shape
    with torch.inference_mode():
        cache = model.make_cache(B, T0 + steps)
        start = now()
        logits = model(torch.from_numpy(prompt), cache)
        nxt = logits[:, -1, :].argmax(-1, keepdim=True)
        mid = now()
        out = [nxt]
        for _ in range(steps):
            logits = model(nxt, cache)
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            out.append(nxt)
        end = now()
    return {"prefill": mid - start, "decode": end - mid, "tokens": torch.cat(out, dim=1).numpy()}


def tt_generate(model: GPT, prompt: np.ndarray, steps: int) -> Dict[str, object]:
    """models/generate.py's generate(), greedy, steps + 1 new tokens per row (as the loops make)."""
    start = now()
    outs = generate(model, prompt.tolist(), steps + 1, SamplingParams(temperature=0))
    return {"total": now() - start, "tokens": np.array([o.tokens for o in outs])}


def take_turns(fns: Dict[str, Callable[[], dict]], rounds: int) -> Dict[str, dict]:
    """Run the functions in turn for `rounds` rounds (after one warm-up each): each one's best seconds per key."""
    best: Dict[str, dict] = {}
    for name, fn in fns.items():
        best[name] = {k: v for k, v in fn().items()}  # warm-up; its tokens are kept
        best[name].update({k: float("inf") for k, v in best[name].items() if isinstance(v, float)})
    for _ in range(rounds):
        for name, fn in fns.items():
            for k, v in fn().items():
                if isinstance(v, float):
                    best[name][k] = min(best[name][k], v)
    return best


# ---- the table ----------------------------------------------------------------------------------------------

class Table:
    def __init__(self, has_torch: bool):
        self.rows: List[tuple] = []
        self.has_torch = has_torch

    def add(self, case: str, ours: float, theirs: Optional[float] = None, note: str = "") -> None:
        self.rows.append((case, ours, theirs, note))

    def print(self, title: str) -> None:
        print(f"\n{title}")
        head = f"{'case':50s} {'tinytensor':>11s}"
        head += f" {'torch':>10s} {'tt/torch':>9s}" if self.has_torch else ""
        print(head + "  (tokens/s)")
        for case, ours, theirs, note in self.rows:
            line = f"{case:50s} {ours:11.1f}"
            if self.has_torch:
                line += f" {theirs:10.1f} {ours / theirs:8.2f}x" if theirs else f" {'-':>10s} {'-':>9s}"
            print(line + (f"  {note}" if note else ""))
        self.rows = []


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    """'same tokens', or where the greedy tokens of the two libraries first differ (float rounding can flip
    a near-tie on random weights, after which the continuations differ)."""
    if a.shape == b.shape and (a == b).all():
        return "same tokens"
    diff = np.argwhere(a != b)
    return f"tokens differ from step {int(diff[:, 1].min())}"


def bench_model(name: str, model: GPT, prompt_len: int, steps: int, batches: List[int], rounds: int) -> None:
    """Prefill, decode and generate() rows for one model at each batch size."""
    model.eval()
    ref = TorchCachedGPT(model) if torch is not None else None
    table = Table(ref is not None)
    c = model.config
    rng = np.random.default_rng(0)
    for B in batches:
        prompt = rng.integers(0, c.vocab_size, (B, prompt_len)).astype(np.int64)
        fns = {"tt": lambda: tt_decode(model, prompt, steps), "gen": lambda: tt_generate(model, prompt, steps)}
        if ref is not None:
            fns["torch"] = lambda: torch_decode(ref, prompt, steps)
        r = take_turns(fns, rounds)
        theirs = r.get("torch")
        same = agreement(r["tt"]["tokens"], theirs["tokens"]) if theirs else ""
        same_gen = agreement(r["gen"]["tokens"], r["tt"]["tokens"][:, :steps + 1])
        table.add(f"B={B} prefill {prompt_len} tokens", B * prompt_len / r["tt"]["prefill"],
                  theirs and B * prompt_len / theirs["prefill"])
        table.add(f"B={B} decode {steps} tokens (bare loop)", B * steps / r["tt"]["decode"],
                  theirs and B * steps / theirs["decode"], same)
        end_to_end = theirs and B * (steps + 1) / (theirs["prefill"] + theirs["decode"])
        table.add(f"B={B} generate() {steps + 1} tokens, prefill included", B * (steps + 1) / r["gen"]["total"],
                  end_to_end, f"vs the bare loop: {same_gen}")
    table.print(f"{name}: GPT L{c.n_layer} H{c.n_head} C{c.n_embd}, block_size {c.block_size}, vocabulary "
                f"{c.vocab_size}, {model.num_parameters():,} parameters; prompt {prompt_len}, decode {steps}")


def prompt_ids(tok: Tokenizer, text: str) -> List[int]:
    bos = tok.special_tokens["<|endoftext|>"]
    return [bos] + tok.encode(text)


def bench_speculative(target: GPT, draft: GPT, tok: Tokenizer, num_drafts: List[int], rounds: int) -> None:
    """Plain generate() against speculative_generate() on a few story openings, greedy and sampled."""
    bos = tok.special_tokens["<|endoftext|>"]
    prompts = [prompt_ids(tok, text) for text in OPENINGS]
    window = min(target.config.block_size, draft.config.block_size)
    budget = [window - len(p) for p in prompts]  # as many new tokens as the window holds (or until eos)
    print(f"\nspeculative decoding: target {describe(target)}, draft {describe(draft)}; "
          f"{len(prompts)} story openings, up to {min(budget)}-{max(budget)} new tokens each, eos = <|endoftext|>")
    table = Table(False)
    for temperature in (0.0, 0.8):
        def params(i):
            return SamplingParams(temperature=temperature, seed=i)

        def plain():
            start = now()
            outs = [generate(target, [p], n, params(i), eos_token=bos)[0] for i, (p, n) in
                    enumerate(zip(prompts, budget))]
            return {"total": now() - start, "tokens": [o.tokens for o in outs]}

        def spec(g):
            def run():
                start = now()
                outs = [speculative_generate(target, draft, p, n, params(i), num_draft=g, eos_token=bos)
                        for i, (p, n) in enumerate(zip(prompts, budget))]
                return {"total": now() - start, "tokens": [o.tokens for o in outs],
                        "proposed": sum(o.proposed for o in outs), "accepted": sum(o.accepted for o in outs),
                        "calls": sum(o.target_calls for o in outs)}
            return run

        fns = {"plain": plain, **{f"spec{g}": spec(g) for g in num_drafts}}
        r = take_turns(fns, rounds)
        n_plain = sum(map(len, r["plain"]["tokens"]))
        base = n_plain / r["plain"]["total"]
        kind = "greedy" if temperature == 0 else f"sampled, temperature {temperature}"
        table.add(f"{kind}: plain generate()", base, note=f"{n_plain} tokens")
        for g in num_drafts:
            s = r[f"spec{g}"]
            n = sum(map(len, s["tokens"]))
            same = ("same tokens as plain" if s["tokens"] == r["plain"]["tokens"] else "tokens DIFFER from plain") \
                if temperature == 0 else f"{n} tokens"
            table.add(f"{kind}: speculative, {g} draft tokens/round", n / s["total"],
                      note=f"{n / s['total'] / base:.2f}x plain, acceptance {s['accepted'] / s['proposed']:.2f}, "
                           f"{n / s['calls']:.2f} tokens per target pass; {same}")
    table.print("speculative decoding (batch 1)")


def describe(model: GPT) -> str:
    c = model.config
    return f"L{c.n_layer} H{c.n_head} C{c.n_embd} ({model.num_parameters():,} parameters)"


def profile_decode(model: GPT, steps: int) -> None:
    """cProfile of the bare batch-1 decode loop: where a step's time goes (kernels, NumPy, Python)."""
    prompt = np.random.default_rng(0).integers(0, model.config.vocab_size, (1, 16)).astype(np.int64)
    tt_decode(model, prompt, steps)
    prof = cProfile.Profile()
    prof.enable()
    tt_decode(model, prompt, steps)
    prof.disable()
    stats = pstats.Stats(prof)
    split = {"C++ kernels (tinytensor._C)": 0.0, "NumPy calls": 0.0, "Python (ops, views, autograd, modules)": 0.0}
    for (_, _, func), (_, _, own, _, _) in stats.stats.items():
        key = ("C++ kernels (tinytensor._C)" if "tinytensor._C" in func else
               "NumPy calls" if "numpy" in func else "Python (ops, views, autograd, modules)")
        split[key] += own
    total = sum(split.values())
    calls = sum(n for (n, _, _, _, _) in stats.stats.values())
    print(f"\nprofile of {steps} batch-1 decode steps on {describe(model)} (cProfile, whose own overhead inflates "
          f"the Python share): {total / steps * 1e3:.2f} ms/step, {calls // steps} Python function calls/step")
    for key, t in split.items():
        print(f"  {key:40s} {t / steps * 1e3:6.2f} ms/step {100 * t / total:5.1f}%")
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(15)
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per case after a warm-up (best counts)")
    ap.add_argument("--prompt-len", type=int, default=128, help="prompt tokens of the bench model's prefill")
    ap.add_argument("--decode-len", type=int, default=256, help="decode steps of the bench model")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="batch sizes to time")
    ap.add_argument("--num-draft", type=int, nargs="+", default=[2, 3, 4],
                    help="draft tokens per round of speculative decoding")
    ap.add_argument("--checkpoint", default=STORYTELLER, help="the storyteller (the speculative target)")
    ap.add_argument("--draft", default=DRAFT, help="the draft model for speculative decoding")
    ap.add_argument("--only", choices=["bench", "storyteller", "speculative"], nargs="+",
                    default=["bench", "storyteller", "speculative"], help="which parts to run")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="what the timings count: wall-clock "
                    "time, or cpu: this process's CPU time, which leaves out other jobs sharing the core (fair "
                    "with --threads 1; with more threads it adds up every thread's time)")
    ap.add_argument("--profile", action="store_true", help="cProfile tinytensor's batch-1 decode on the storyteller")
    args = ap.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    tt.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s); PyTorch {torch.__version__ if torch is not None else 'not installed'}; "
          f"best of {args.rounds} rounds, the libraries taking turns; {args.clock} clock")
    if "bench" in args.only:
        tt.manual_seed(0)
        bench = GPT(GPTConfig(block_size=args.prompt_len + args.decode_len, vocab_size=4096, n_layer=6, n_head=6,
                              n_embd=384, bias=False))
        bench_model("bench model (random weights)", bench, args.prompt_len, args.decode_len, args.batch_sizes,
                    args.rounds)
    target = GPT.from_pretrained(args.checkpoint)
    target.eval()
    if "storyteller" in args.only:
        block = target.config.block_size
        prompt_len = min(args.prompt_len, max(1, block // 4))
        steps = min(args.decode_len, block - prompt_len)
        bench_model(f"storyteller ({os.path.relpath(args.checkpoint)})", target, prompt_len, steps,
                    args.batch_sizes, args.rounds)
    if "speculative" in args.only:
        if not os.path.exists(os.path.join(args.draft, "config.json")):
            print(f"\nno draft model at {args.draft}: speculative decoding skipped")
        else:
            draft = GPT.from_pretrained(args.draft)
            draft.eval()
            bench_speculative(target, draft, Tokenizer.load(os.path.join(args.checkpoint, "tokenizer.bpe")),
                              args.num_draft, args.rounds)
    if args.profile:
        profile_decode(target, 64)


if __name__ == "__main__":
    main()

"""fp32 matmul speed of tinytensor against NumPy (OpenBLAS) and PyTorch, measured in the same run.

Cases: square products at 512, 1024 and 2048; the products of one GPT training step
(L6 H6 C384 T256 B8 V4096, so 2048 tokens): the linear layers' forward x @ W.T, their input
gradient g @ W and weight gradient x.T @ g (transposed views, as autograd passes them), and
attention's batched q @ k.T and att @ v over 8 x 6 heads, on the views the model passes.
Each case runs on 1 and 2 threads (NumPy's through threadpoolctl, tinytensor's and PyTorch's
through set_num_threads).

--small-m M [M ...] runs instead the products of decoding (chapter 12) with M rows, one per
sequence of the batch: the linear layers' x @ W.T of the same model, and the LM head (1, C) @ (C, V)
for V = 4096 and GPT-2's 50257, both as x @ wte.T (tied weights: W's rows contiguous) and with a
contiguous (C, V) matrix. With --cold each call reads another copy of B, 96 MB of them in all, so
that B comes from memory as in real decoding (a model's weights exceed the caches), not from L3.

Prints one table: case, threads, GFLOP/s of tinytensor, numpy and torch (best of several
rounds, since the machine is shared and noisy), and tinytensor / other (above 1: tinytensor
is faster). Run: python bench/bench_matmul.py [--quick] [--threads 1 2] [--only attn]
[--small-m 1 8 [--cold]] (about 4 minutes on 2 cores; --quick about 2; --small-m 1 8 about 1).
Without threadpoolctl NumPy's BLAS keeps its own thread count: set OPENBLAS_NUM_THREADS (or
OMP_NUM_THREADS) to the single count you pass. Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # then OPENBLAS_NUM_THREADS / OMP_NUM_THREADS decide NumPy's thread count
    threadpool_limits = None

import tinytensor as tt

try:
    import torch
except ImportError:  # PyTorch is an optional oracle
    torch = None


def best_times(fns: dict, rounds: int = 5, min_time: float = 0.1, settle: float = 0.0) -> dict:
    """Best seconds per call of each function. The functions take turns within each round, so a
    burst of load from other work on the machine hits all of them rather than one. `settle` seconds
    of sleep after each turn let the library's worker threads stop spinning (OpenBLAS's spin for
    about 0.1 s after a call), which would otherwise steal a core from the next library's threads."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            best[name] = min(best[name], elapsed / n)
            time.sleep(settle)
    return best


def operands(a_shape, b_shape, form: str, rng):
    """NumPy operands for `form`: "A@B" contiguous; "A@B.T" / "A.T@B" pass a transposed view;
    "heads" passes attention's views, as the GPT makes them: q, k and v are (B, nh, T, hs) views of
    the (B, T, 3C) output of c_attn (so q @ k.T reads k transposed), and att is contiguous."""
    if form == "heads":
        B, nh, T, hs = a_shape if a_shape[-1] != a_shape[-2] else b_shape
        qkv = rng.standard_normal((B, T, 3 * nh * hs), dtype=np.float32)
        q, k, v = (x.reshape(B, T, nh, hs).transpose(0, 2, 1, 3) for x in np.split(qkv, 3, axis=2))
        if a_shape[-1] == hs:   # q @ k.T
            return q, np.swapaxes(k, -1, -2)
        return rng.standard_normal(a_shape, dtype=np.float32), v   # att @ v
    a_store = a_shape[::-1] if form == "A.T@B" else a_shape
    b_store = b_shape[:-2] + b_shape[-2:][::-1] if form == "A@B.T" else b_shape
    a = rng.standard_normal(a_store, dtype=np.float32)
    b = rng.standard_normal(b_store, dtype=np.float32)
    return (a.T if form == "A.T@B" else a), (np.swapaxes(b, -1, -2) if form == "A@B.T" else b)


def cases(quick: bool):
    """(name, A shape, B shape, form) for every case; shapes are the logical operand shapes."""
    out = [(f"square {n}", (n, n), (n, n), "A@B") for n in ((512, 1024) if quick else (512, 1024, 2048))]
    tokens = 2048
    for name, c_in, c_out in (("qkv", 384, 1152), ("fc", 384, 1536), ("mlp proj", 1536, 384), ("lm head", 384, 4096)):
        out.append((f"{name} fwd", (tokens, c_in), (c_in, c_out), "A@B.T"))       # x @ W.T
        if not quick:
            out.append((f"{name} dx", (tokens, c_out), (c_out, c_in), "A@B"))    # g @ W
        out.append((f"{name} dW", (c_in, tokens), (tokens, c_out), "A.T@B"))     # x.T @ g
    out.append(("attn q@k.T", (8, 6, 256, 64), (8, 6, 64, 256), "heads"))
    out.append(("attn att@v", (8, 6, 256, 256), (8, 6, 256, 64), "heads"))
    return out


def small_m_cases(rows):
    """Decoding's products (one row per sequence) for each M in rows: x @ W.T of the bench model's linear
    layers, and the LM head with V = 4096 and 50257 as x @ wte.T and as x @ (C, V)."""
    out = []
    for m in rows:
        for name, c_in, c_out in (("qkv", 384, 1152), ("fc", 384, 1536), ("mlp proj", 1536, 384)):
            out.append((f"{name} M={m}", (m, c_in), (c_in, c_out), "A@B.T"))
        for v in (4096, 50257):
            out.append((f"lm{v} M={m}", (m, 384), (384, v), "A@B.T"))
            out.append((f"lm{v} M={m}", (m, 384), (384, v), "A@B"))
    return out


def cycle(items):
    """A function returning the next item of `items` on each call, round and round."""
    state = {"i": -1}

    def next_item():
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]
    return next_item


def bench_case(name, a_shape, b_shape, form, threads: int, rng, rounds: int, cold: bool = False) -> None:
    a_np, b_np = operands(a_shape, b_shape, form, rng)
    copies = int(96e6 // b_np.nbytes) + 1 if cold else 1   # cold: B read from memory, not from a cache
    bs_np = [b_np] + [np.swapaxes(np.swapaxes(b_np, -1, -2).copy(), -1, -2) if form == "A@B.T" else b_np.copy()
                      for _ in range(copies - 1)]
    a, next_b = tt.from_numpy(a_np), cycle([tt.from_numpy(b) for b in bs_np])
    next_b_np = cycle(bs_np)
    fns = {"tt": lambda: a @ next_b(), "np": lambda: a_np @ next_b_np()}
    if torch is not None:
        ta, next_tb = torch.from_numpy(a_np), cycle([torch.from_numpy(b) for b in bs_np])
        fns["torch"] = lambda: ta @ next_tb()
    tt.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    limits = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else contextlib.nullcontext()
    with limits:
        times = best_times(fns, rounds, settle=0.15 if threads > 1 else 0.0)
    flops = 2.0 * np.prod(a_shape) * b_shape[-1]
    g = {k: flops / t / 1e9 for k, t in times.items()}
    shape = f"{'x'.join(map(str, a_shape))}@{'x'.join(map(str, b_shape))}"
    torch_cols = f"{g['torch']:7.1f} {g['tt'] / g['torch']:7.2f}x" if torch else f"{'-':>7} {'-':>8}"
    print(f"{name:12s} {shape:26s} {form:6s} {threads:2d} {g['tt']:7.1f} {g['np']:7.1f} {torch_cols} "
          f"{g['tt'] / g['np']:7.2f}x", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip 2048 and the dx cases")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to run")
    p.add_argument("--only", default="", help="run only cases whose name contains this text")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds per case (the best one counts)")
    p.add_argument("--small-m", type=int, nargs="+", default=None, metavar="M",
                   help="run decoding's products with these row counts instead of the training step's")
    p.add_argument("--cold", action="store_true", help="read B from memory on every call (copies of it, 96 MB)")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'case':12s} {'shape':26s} {'form':6s} {'th':>2s} {'tt':>7s} {'numpy':>7s} {'torch':>7s} "
          f"{'tt/torch':>8s} {'tt/np':>8s}   (GFLOP/s)")
    for threads in args.threads:
        for case in small_m_cases(args.small_m) if args.small_m else cases(args.quick):
            if args.only in case[0]:
                bench_case(*case, threads, rng, args.rounds, args.cold)


if __name__ == "__main__":
    main()

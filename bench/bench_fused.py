"""Speed of the fused kernels (tinytensor/fused.py) against their composites and PyTorch, in one run.

Each case is forward + backward at a GPT-step size (B8 T256 C384, vocabulary 4096, 6 heads), timed
three ways: tinytensor's fused kernel, the same op as tinytensor's composite of primitives
(`fused.disabled()`), and PyTorch (when installed). Prints best-of-N milliseconds and two ratios:
composite/fused (the kernel's gain) and torch/fused (above 1: tinytensor is faster).

Run: python bench/bench_fused.py [--threads 1] [--repeat 5]        (about a minute on 2 cores)
Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import fused

try:
    import torch
except ImportError:  # PyTorch is an optional comparison
    torch = None

B, T, C, V, H = 8, 256, 384, 4096, 6


def cases(lib):
    """name -> (input shapes, fn(*inputs) -> scalar loss) for tinytensor (lib=tt) or torch."""
    f = F if lib is tt else torch.nn.functional
    target = np.random.default_rng(1).integers(0, V, B * T)
    tgt = tt.tensor(target) if lib is tt else torch.tensor(target)
    return {
        "softmax": ([(B * T, V)], lambda x: (x.softmax(-1) * x).sum()),
        "cross_entropy": ([(B * T, V)], lambda x: f.cross_entropy(x, tgt)),
        "layer_norm": ([(B, T, C), (C,), (C,)], lambda x, w, b: (f.layer_norm(x, (C,), w, b) * x).sum()),
        "rms_norm": ([(B, T, C), (C,)], lambda x, w: (f.rms_norm(x, (C,), w, eps=1e-6) * x).sum()),
        "gelu (tanh)": ([(B, T, 4 * C)], lambda x: (f.gelu(x, approximate="tanh") * x).sum()),
        "causal attention": ([(B, H, T, C // H)] * 3,
                             lambda q, k, v: (f.scaled_dot_product_attention(q, k, v, is_causal=True) * q).sum()),
    }


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def step(lib, shapes, fn):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if lib is tt:
        xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    else:
        xs = [torch.tensor(a, requires_grad=True) for a in arrays]

    def run():
        for x in xs:
            x.grad = None
        fn(*xs).backward()
    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    tt.set_num_threads(args.threads)
    if torch:
        torch.set_num_threads(args.threads)
    print(f"fused kernels, forward + backward, {args.threads} thread(s), best of {args.repeat} (ms)")
    print(f"{'case':18s} {'fused':>9} {'composite':>10} {'comp/fused':>11} {'torch':>9} {'torch/fused':>12}")
    ours, theirs = cases(tt), cases(torch) if torch else {}
    for name, (shapes, fn) in ours.items():
        t_fused = best_ms(step(tt, shapes, fn), args.repeat)
        with fused.disabled():
            t_comp = best_ms(step(tt, shapes, fn), args.repeat)
        t_torch = best_ms(step(torch, shapes, theirs[name][1]), args.repeat) if torch else float("nan")
        print(f"{name:18s} {t_fused:9.2f} {t_comp:10.2f} {t_comp / t_fused:10.2f}x {t_torch:9.2f} "
              f"{t_torch / t_fused:11.2f}x")


if __name__ == "__main__":
    main()

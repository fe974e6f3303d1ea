"""Speed of tinytensor's CPU kernels against NumPy (and PyTorch when installed), in one run.

Prints one table: for each case the best-of-N time of tinytensor and of each alternative, and the
ratio (alternative time / tinytensor time: above 1 means tinytensor is faster). Cases: add, mul,
exp on 1M and 16M float32 (contiguous and transposed), sum over the last and the first dim of
4096x4096, fp32 matmul at 256-2048 on 1 and 2 threads (GFLOP/s), and the overhead of tiny ops
(4 elements: add, add recording a graph, mul by a scalar, exp, sum).

Run: python bench/bench_ops.py [--quick] [--overhead]   (about 2 minutes on 2 cores; --quick skips 16M
and 2048; --overhead runs only the tiny ops, in 10 seconds)
Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import tinytensor as tt
from bench_matmul import best_times

try:
    import torch
except ImportError:  # PyTorch is an optional oracle
    torch = None


def best_time(fn, repeat: int = 5, min_time: float = 0.2) -> float:
    """Best seconds per call over `repeat` rounds that together loop for about `min_time`."""
    return best_times({"fn": fn}, repeat, min_time / repeat)["fn"]


def set_threads(n: int) -> None:
    tt.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def row(name: str, t_tt: float, t_np: float, t_torch, unit: str = "ms", scale: float = 1e3) -> None:
    torch_cols = f"{t_torch * scale:10.3f} {t_torch / t_tt:8.2f}x" if t_torch is not None else f"{'-':>10} {'-':>9}"
    print(f"{name:38s} {t_tt * scale:10.3f} {t_np * scale:10.3f} {t_np / t_tt:8.2f}x {torch_cols}  ({unit})")


def elementwise(sizes, threads: int) -> None:
    rng = np.random.default_rng(0)
    for n in sizes:
        side = int(np.sqrt(n))
        a_np = rng.standard_normal((side, side), dtype=np.float32)
        b_np = rng.standard_normal((side, side), dtype=np.float32)
        a, b = tt.from_numpy(a_np), tt.from_numpy(b_np)
        ta, tb = (torch.from_numpy(a_np), torch.from_numpy(b_np)) if torch else (None, None)
        for layout in ("contiguous", "transposed"):
            x, y, xn, yn = (a, b, a_np, b_np) if layout == "contiguous" else (a.T, b, a_np.T, b_np)
            tx, ty = ((ta, tb) if layout == "contiguous" else (ta.T, tb)) if torch else (None, None)
            for op in ("add", "mul", "exp"):
                if op == "exp":
                    f_tt, f_np = (lambda: x.exp()), (lambda: np.exp(xn))
                    f_torch = (lambda: tx.exp()) if torch else None
                else:
                    f_tt = (lambda: x + y) if op == "add" else (lambda: x * y)
                    f_np = (lambda: xn + yn) if op == "add" else (lambda: xn * yn)
                    f_torch = ((lambda: tx + ty) if op == "add" else (lambda: tx * ty)) if torch else None
                row(f"{op} {side * side / 1e6:.0f}M {layout} t{threads}", best_time(f_tt), best_time(f_np),
                    best_time(f_torch) if f_torch else None)


def reductions(threads: int) -> None:
    a_np = np.random.default_rng(1).standard_normal((4096, 4096), dtype=np.float32)
    a = tt.from_numpy(a_np)
    ta = torch.from_numpy(a_np) if torch else None
    for dim, name in ((-1, "last"), (0, "first")):
        row(f"sum 4096x4096 over {name} dim t{threads}", best_time(lambda: a.sum(dim)),
            best_time(lambda: a_np.sum(dim)), best_time(lambda: ta.sum(dim)) if torch else None)


def matmuls(sizes, threads: int) -> None:
    rng = np.random.default_rng(2)
    for n in sizes:
        a_np = rng.standard_normal((n, n), dtype=np.float32)
        b_np = rng.standard_normal((n, n), dtype=np.float32)
        a, b = tt.from_numpy(a_np), tt.from_numpy(b_np)
        flops = 2.0 * n ** 3
        t_tt, t_np = best_time(lambda: a @ b, repeat=3), best_time(lambda: a_np @ b_np, repeat=3)
        t_torch = None
        if torch:
            ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
            t_torch = best_time(lambda: ta @ tb, repeat=3)
        # GFLOP/s instead of ms: higher is better, ratio is tinytensor / numpy
        g = [flops / t / 1e9 if t else None for t in (t_tt, t_np, t_torch)]
        torch_cols = f"{g[2]:10.1f} {g[0] / g[2]:8.2f}x" if torch else f"{'-':>10} {'-':>9}"
        print(f"{f'matmul fp32 {n} t{threads}':38s} {g[0]:10.1f} {g[1]:10.1f} {g[0] / g[1]:8.2f}x {torch_cols}"
              "  (GFLOP/s; ratio = tinytensor/other)")


def overhead(rounds: int = 7) -> None:
    """A tiny op's cost, which is all overhead: tinytensor, NumPy and PyTorch take turns in each
    round (so a burst of load from elsewhere hits all three), and the best round counts."""
    a, b, ag = tt.ones(4), tt.ones(4), tt.ones(4, requires_grad=True)
    an, bn = np.ones(4, np.float32), np.ones(4, np.float32)
    cases = {"tiny add (4 elements)": (lambda: a + b, lambda: an + bn),
             "tiny add, requires_grad": (lambda: ag + b, lambda: an + bn),
             "tiny mul by a Python scalar": (lambda: a * 2.0, lambda: an * 2.0),
             "tiny exp": (a.exp, lambda: np.exp(an)),
             "tiny sum": (a.sum, an.sum)}
    if torch:
        ta, tb, tg = torch.ones(4), torch.ones(4), torch.ones(4, requires_grad=True)
        torch_fns = [lambda: ta + tb, lambda: tg + tb, lambda: ta * 2.0, ta.exp, ta.sum]
    for i, (name, (f_tt, f_np)) in enumerate(cases.items()):
        fns = {"tt": f_tt, "np": f_np}
        if torch:
            fns["torch"] = torch_fns[i]
        t = best_times(fns, rounds, min_time=0.05)
        row(name, t["tt"], t["np"], t.get("torch"), "us", 1e6)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip the 16M elementwise cases and 2048 matmul")
    p.add_argument("--overhead", action="store_true", help="only the tiny ops (per-op overhead)")
    args = p.parse_args()
    print(f"{'case':38s} {'tinytensor':>10} {'numpy':>10} {'np/tt':>9} {'torch':>10} {'torch/tt':>9}")
    for threads in () if args.overhead else (1, 2):
        with threadpool_limits(limits=threads):
            set_threads(threads)
            elementwise([1 << 20] if args.quick else [1 << 20, 1 << 24], threads)
            reductions(threads)
            matmuls([256, 512, 1024] if args.quick else [256, 512, 1024, 2048], threads)
    set_threads(2)
    overhead()


if __name__ == "__main__":
    main()

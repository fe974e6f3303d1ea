"""Speed of one chapter-03 training step (forward, backward, AdamW) in tinytensor and in PyTorch.

The model is chapter 03's (models/mlp.py) character MLP (Embedding 27x10, context 3, Linear 30->200, tanh,
Linear 200->27, cross-entropy) with its AdamW (weight decay on the matrices only). PyTorch, when
installed, runs the same model from the same initial weights on the same batches (gathered before
timing: a step is forward, backward, the AdamW update and loss.item()). The script first checks that
both give the same losses, then times them in alternating rounds (so that a busy machine slows both
alike) and prints the median time per step and the ratio tinytensor / PyTorch (the target is at most
2x at the chapter's default batch of 1024). A breakdown of tinytensor's step (forward, backward,
optimizer) shows where the time goes.

Run: python bench/bench_mlp.py [--batch-sizes 32,1024] [--threads 1,2] [--steps 50] [--rounds 7]
(about a minute on 2 cores). Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List

import numpy as np

import tinytensor as tt
from models import mlp

try:
    import torch
except ImportError:  # PyTorch is an optional oracle
    torch = None


def tt_setup(config, batch_size: int, n_batches: int, data, seed: int = 0):
    """A tinytensor model, its AdamW and a fixed list of batches; returns step() -> loss and the pieces."""
    tt.manual_seed(seed)
    model = mlp.MLP(config)
    opt = mlp.make_optimizer(model, 1e-3, 0.01)
    g = np.random.default_rng(seed)
    idx = [g.integers(0, data.Y.shape[0], batch_size) for _ in range(n_batches)]
    batches = [(data.X[tt.tensor(i)], data.Y[tt.tensor(i)]) for i in idx]
    state = {"i": 0}

    def step() -> float:
        X, Y = batches[state["i"] % n_batches]
        state["i"] += 1
        _, loss = model(X, Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step, model, opt, batches, idx


def torch_setup(tt_model, config, idx: List[np.ndarray], data):
    """The same model in PyTorch, with tinytensor's initial weights and the same batches."""
    emb = torch.nn.Embedding(config.vocab_size, config.n_embd)
    l1 = torch.nn.Linear(config.block_size * config.n_embd, config.n_hidden)
    l2 = torch.nn.Linear(config.n_hidden, config.vocab_size)
    with torch.no_grad():
        for dst, src in [(emb.weight, tt_model.wte.weight), (l1.weight, tt_model.hidden[0].weight),
                         (l1.bias, tt_model.hidden[0].bias), (l2.weight, tt_model.head.weight),
                         (l2.bias, tt_model.head.bias)]:
            dst.copy_(torch.from_numpy(src.detach().numpy().copy()))
    opt = torch.optim.AdamW([{"params": [l1.weight, l2.weight], "weight_decay": 0.01},
                             {"params": [emb.weight, l1.bias, l2.bias], "weight_decay": 0.0}], lr=1e-3)
    X, Y = torch.from_numpy(data.X.numpy()), torch.from_numpy(data.Y.numpy())
    batches = [(X[torch.from_numpy(i)], Y[torch.from_numpy(i)]) for i in idx]
    state = {"i": 0}

    def step() -> float:
        xb, yb = batches[state["i"] % len(batches)]
        state["i"] += 1
        h = torch.tanh(l1(emb(xb).flatten(1)))               # (B, T*C) -> (B, H)
        loss = torch.nn.functional.cross_entropy(l2(h), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def per_step(step: Callable[[], float], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def breakdown(model, opt, batches, steps: int) -> List[float]:
    """Median milliseconds of tinytensor's forward, backward and optimizer step."""
    times = [[], [], []]
    for i in range(steps):
        X, Y = batches[i % len(batches)]
        t0 = time.perf_counter()
        _, loss = model(X, Y)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        loss.item()
        t3 = time.perf_counter()
        for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            times[k].append(dt * 1e3)
    return [statistics.median(t) for t in times]


def bench(batch_size: int, threads: int, steps: int, rounds: int, data) -> None:
    tt.set_num_threads(threads)
    config = mlp.MLPConfig()
    tt_step, model, opt, batches, idx = tt_setup(config, batch_size, 16, data)
    torch_step = None
    if torch is not None:
        torch.set_num_threads(threads)
        torch_step = torch_setup(model, config, idx, data)
        diff = max(abs(a - b) for a, b in zip([tt_step() for _ in range(5)], [torch_step() for _ in range(5)]))
        if diff > 1e-3:
            print(f"  warning: tinytensor and PyTorch losses differ by {diff:.2e} over 5 steps")
    tt_times, torch_times = [], []
    for _ in range(rounds):                               # alternate, so that load hits both alike
        tt_times.append(per_step(tt_step, steps))
        if torch_step is not None:
            torch_times.append(per_step(torch_step, steps))
    t_tt = statistics.median(tt_times) * 1e3
    fwd, bwd, upd = breakdown(model, opt, batches, steps)
    if torch_step is None:
        print(f"B={batch_size:5d} threads={threads}  tinytensor {t_tt:8.2f} ms/step   PyTorch not installed")
    else:
        t_torch = statistics.median(torch_times) * 1e3
        print(f"B={batch_size:5d} threads={threads}  tinytensor {t_tt:8.2f} ms/step  PyTorch {t_torch:8.2f} ms/step"
              f"  ratio {t_tt / t_torch:5.2f}x   (agree to {diff:.1e})")
    print(f"{'':20s}tinytensor forward {fwd:.2f} ms, backward {bwd:.2f} ms, AdamW {upd:.2f} ms (medians)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-sizes", default="32,1024", help="comma-separated batch sizes (1024: chapter 03's)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts for both libraries")
    ap.add_argument("--steps", type=int, default=50, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds; the median round counts")
    args = ap.parse_args()
    data = mlp.load_splits()["train"]
    print(f"chapter-03 training step: {mlp.MLPConfig()}, AdamW; PyTorch "
          f"{torch.__version__ if torch else 'not installed'}; ratio = tinytensor time / PyTorch time (target <= 2)")
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            bench(batch_size, threads, args.steps, args.rounds, data)


if __name__ == "__main__":
    main()

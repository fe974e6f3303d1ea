"""Chapter 08, device: how fast does tinytensor run, and how close is that to what the hardware can do?

What it teaches: a CPU's peak is arithmetic you can do by hand: cores x SIMD lanes x 2 flops per fused
multiply-add x FMA units per core x clock. This script estimates it from /proc/cpuinfo, then measures
three kinds of work against it on each device and thread count:
- matmul, which is compute-bound: (n, n) @ (n, n) does 2n^3 flops on 3n^2 numbers, so for large n the
  packed, cache-blocked GEMM (ops_c/matmul.cpp) keeps the FMA units busy and gets close to the peak,
  while small n is dominated by Python's per-call overhead, packing, edge tiles and waking threads;
- F.layer_norm and F.cross_entropy, which are memory-bound: a few flops per number read, so they
  reach a few percent of the peak at best and their honest yardstick is GB/s, not GFLOP/s;
- a GPT training step (models/gpt2.py, forward + backward + AdamW), which mixes both, plus Python
  overhead per op: its fraction of peak (nanoGPT's "MFU") is what a training run actually gets.
The same code runs on "cuda" when CuPy and a GPU are present; without them that device is skipped
and the reason printed.

Run:
    python examples/08_device.py                                  # defaults
    python examples/08_device.py --sizes 256 512 1024 2048 4096 --threads 1 2 --steps 5
    python examples/08_device.py --n-layer 6 --n-head 6 --n-embd 384 --block-size 256   # bench/bench_gpt.py's step

Prints: how the peak was estimated (cores, SIMD width, FMA units, clock, and the assumptions made), then
one row per (device, threads, workload): milliseconds per call, GFLOP/s, percent of the peak of that
many cores, and GB/s for the memory-bound kernels. Saves <out>/matmul.png: GFLOP/s against matrix
size per device and thread count, with the estimated peaks dashed.
On the 2-core AVX-512 Xeon this was written on (estimated 160 GFLOP/s per core at 2.5 GHz): matmul
reaches 100-110 GFLOP/s on one thread from n = 256 on (65% of the estimate; AVX-512 code runs at a
lower clock than the nominal one) and 170-190 on two from n = 1024; the fused layer norm and
cross-entropy reach 2-7% of the peak (layer norm moves 12-14 GB/s); the GPT step gets 25-40%.
Takes 15-30 seconds on a 2-core CPU (longer when other work shares the cores).
"""
import argparse
import os
import re
import time
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.nn.functional as F
from models.gpt2 import GPT, GPTConfig

MAX_FREQ = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


# ---- the peak -------------------------------------------------------------------------------------

class Peak(NamedTuple):
    cores: int          # physical cores
    simd: str           # widest vector unit with FMA: "AVX-512", "AVX2" or "SSE"
    lanes: int          # fp32 numbers per vector
    fma_units: int      # vector FMA instructions a core can start per cycle (an assumption, see `how`)
    ghz: float
    how: List[str]      # where each number came from, to print

    @property
    def per_core(self) -> float:
        """fp32 GFLOP/s of one core: an FMA is 2 flops on every lane."""
        return self.lanes * 2 * self.fma_units * self.ghz

    def gflops(self, threads: int) -> float:
        """The peak of `threads` threads: one core each, at most all cores."""
        return self.per_core * min(threads, self.cores)


def estimate_peak(cpuinfo: str, max_freq_khz: Optional[float] = None) -> Peak:
    """The fp32 peak from the text of /proc/cpuinfo (and the max clock in kHz from sysfs, when known)."""
    blocks = [b for b in cpuinfo.split("\n\n") if "processor" in b]
    fields = [dict((k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in b.splitlines())) for b in blocks]
    if not fields:
        raise ValueError("estimate_peak: no 'processor' entries in this cpuinfo text")
    cores_ids = {(f.get("physical id", "0"), f["core id"]) for f in fields if "core id" in f}
    cores = len(cores_ids) or len(fields)   # a VM may list no core ids: then every processor is a core
    how = [f"cores: {cores} ({len(fields)} processors listed, {len(cores_ids) or len(fields)} distinct cores)"]
    flags = set(fields[0].get("flags", "").split())
    if "avx512f" in flags:
        simd, lanes, units = "AVX-512", 16, 2
        how.append("SIMD: avx512f -> 512-bit vectors, 16 fp32 lanes; assuming 2 FMA units per core "
                   "(Xeon Gold/Platinum; Silver/Bronze and most client parts have 1)")
    elif "avx2" in flags and "fma" in flags:
        simd, lanes, units = "AVX2", 8, 2
        how.append("SIMD: avx2 + fma -> 256-bit vectors, 8 fp32 lanes; assuming 2 FMA units per core "
                   "(Haswell and later)")
    else:
        simd, lanes, units = "SSE", 4, 1
        how.append("SIMD: no AVX2/FMA -> 128-bit vectors, 4 fp32 lanes, counting a mul + an add as 1 FMA per cycle")
    mhz = float(fields[0].get("cpu MHz", "0") or 0)
    if max_freq_khz:
        ghz = max_freq_khz / 1e6
        how.append(f"clock: {ghz:.2f} GHz, the max frequency in {MAX_FREQ}")
    elif mhz:
        ghz = mhz / 1e3
        how.append(f"clock: {ghz:.2f} GHz, 'cpu MHz' in /proc/cpuinfo (turbo may be higher; heavy AVX-512 "
                   "lowers it)")
    else:
        match = re.search(r"@\s*([\d.]+)\s*GHz", fields[0].get("model name", ""))
        ghz = float(match.group(1)) if match else 1.0
        how.append(f"clock: {ghz:.2f} GHz, from the model name" if match else "clock: unknown, assuming 1 GHz")
    peak = Peak(cores, simd, lanes, units, ghz, how)
    how.append(f"peak = {lanes} lanes x 2 flops/FMA x {units} FMA units x {ghz:.2f} GHz = {peak.per_core:.0f} "
               f"GFLOP/s per core, {peak.gflops(cores):.0f} on {cores} cores")
    return peak


def machine_peak() -> Peak:
    """estimate_peak() on this machine's /proc/cpuinfo (falling back to os.cpu_count() and AVX2 guesses)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = "\n".join(f"processor\t: {i}\nflags\t\t: avx2 fma\n" for i in range(os.cpu_count() or 1))
    try:
        with open(MAX_FREQ, encoding="utf-8") as f:
            khz = float(f.read().strip())
    except (OSError, ValueError):
        khz = None
    return estimate_peak(text, khz)


# ---- timing ---------------------------------------------------------------------------------------

class Row(NamedTuple):
    device: str
    threads: Optional[int]   # None on cuda
    workload: str
    size: int                # matrix size n for matmul, else 0
    seconds: float           # best time per call
    flops: float             # per call
    bytes: float             # the least memory traffic per call (read inputs once, write outputs once)

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9


def best_time(fn: Callable[[], object], rounds: int = 3, min_time: float = 0.05) -> float:
    """Best seconds per call over `rounds`, each looping for at least min_time (machines are noisy)."""
    fn()  # warm-up: allocations, packing buffers, thread start
    best = float("inf")
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / n)
    return best


def sync(t: tt.Tensor) -> tt.Tensor:
    """Waits for the device: reading one number back is enough (CPU kernels are synchronous anyway)."""
    if t.device != "cpu":
        t.reshape(-1)[0].item()
    return t


def time_matmul(n: int, device: str, threads: Optional[int]) -> Row:
    g = np.random.default_rng(n)
    a = tt.tensor(g.standard_normal((n, n), dtype=np.float32), device=device)
    b = tt.tensor(g.standard_normal((n, n), dtype=np.float32), device=device)
    sec = best_time(lambda: sync(a @ b))
    return Row(device, threads, f"matmul {n}", n, sec, 2.0 * n ** 3, 3 * 4.0 * n * n)


def time_fused(device: str, threads: Optional[int], rows: int, width: int, vocab: int) -> List[Row]:
    """Forward layer norm of (rows, width) and cross-entropy of (rows, vocab) logits, as in a GPT."""
    g = np.random.default_rng(1)
    x = tt.tensor(g.standard_normal((rows, width), dtype=np.float32), device=device)
    w, b = tt.ones(width, device=device), tt.zeros(width, device=device)
    logits = tt.tensor(g.standard_normal((rows, vocab), dtype=np.float32), device=device)
    target = tt.tensor(g.integers(0, vocab, rows), device=device)
    with tt.no_grad():
        t_ln = best_time(lambda: sync(F.layer_norm(x, (width,), w, b)))
        t_ce = best_time(lambda: sync(F.cross_entropy(logits, target)))
    # flops per element: layer norm 7 (mean, centre, square + sum, scale, weight, bias); cross-entropy 4
    # (max, subtract, exp counted as one, sum). Traffic: layer norm reads x and writes y, cross-entropy reads logits.
    return [Row(device, threads, f"layer_norm {rows}x{width}", 0, t_ln, 7.0 * rows * width, 8.0 * rows * width),
            Row(device, threads, f"cross_entropy {rows}x{vocab}", 0, t_ce, 4.0 * rows * vocab, 4.0 * rows * vocab)]


def time_gpt_step(args, device: str, threads: Optional[int]) -> Row:
    """Seconds per training step (forward + backward + AdamW) of a GPT, and nanoGPT's flops estimate."""
    tt.manual_seed(args.seed)
    config = GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, bias=False)
    model = GPT(config).to(device)
    opt = model.configure_optimizers(0.1, 1e-4)
    g = np.random.default_rng(args.seed)
    B, T = args.batch_size, args.block_size
    x = tt.tensor(g.integers(0, args.vocab_size, (B, T)), device=device)
    y = tt.tensor(g.integers(0, args.vocab_size, (B, T)), device=device)

    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up
    sec = min(_timed(step) for _ in range(args.steps))
    # nanoGPT's estimate_mfu: 6 flops per parameter per token (2 forward, 4 backward) plus attention's
    # 12 * L * T * C per token (QK^T and AV, forward and backward, the full T x T as if not causal)
    L, C = config.n_layer, config.n_embd
    flops = (6 * model.get_num_params() + 12 * L * T * C) * B * T
    return Row(device, threads, f"GPT step L{L} C{C} T{T} B{B}", 0, sec, float(flops), 0.0)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cuda_status() -> Optional[str]:
    """None when tinytensor can make a cuda tensor, else the reason it cannot."""
    try:
        tt.zeros(1, device="cuda")
        return None
    except RuntimeError as e:
        return str(e)


# ---- report ---------------------------------------------------------------------------------------

def print_table(rows: List[Row], peak: Peak) -> None:
    print(f"\n{'device':7s} {'threads':>7s}  {'workload':30s} {'ms':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'GB/s':>7s}")
    for r in rows:
        pct = f"{100 * r.gflops / peak.gflops(r.threads):6.1f}%" if r.device == "cpu" else f"{'-':>7s}"
        gbs = f"{r.bytes / r.seconds / 1e9:7.1f}" if r.bytes and not r.size else f"{'':7s}"
        print(f"{r.device:7s} {r.threads or '-':>7}  {r.workload:30s} {r.seconds * 1e3:9.2f} {r.gflops:8.1f} "
              f"{pct} {gbs}")


def plot(rows: List[Row], peak: Peak, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines: Dict[tuple, List[Row]] = {}
    for r in rows:
        if r.size:
            lines.setdefault((r.device, r.threads), []).append(r)
    for i, ((device, threads), rs) in enumerate(sorted(lines.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))):
        label = f"{device}, {threads} thread{'s' if threads != 1 else ''}" if threads else device
        line, = ax.plot([r.size for r in rs], [r.gflops for r in rs], "o-", label=label)
        if device == "cpu":
            ax.axhline(peak.gflops(threads), color=line.get_color(), ls="--", lw=1,
                       label=f"estimated peak, {min(threads, peak.cores)} core{'s' if threads > 1 else ''}")
    ax.set(xscale="log", xlabel="matrix size n of (n, n) @ (n, n)", ylabel="GFLOP/s (fp32)",
           title="tinytensor matmul against the estimated peak")
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- the chapter ----------------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ncpu = os.cpu_count() or 1
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048],
                    help="matrix sizes n to time: each times (n, n) @ (n, n); the plot draws GFLOP/s against n")
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, ncpu}),
                    help="CPU thread counts to time every workload with (the default is 1 and this machine's "
                    "core count)")
    ap.add_argument("--steps", type=int, default=5,
                    help="how many GPT training steps are timed after one warm-up step; the fastest one counts")
    ap.add_argument("--n-layer", type=int, default=4, help="transformer blocks of the GPT whose step is timed")
    ap.add_argument("--n-head", type=int, default=4, help="attention heads per block of that GPT")
    ap.add_argument("--n-embd", type=int, default=256,
                    help="width of that GPT's vectors, also the width of the timed layer norm")
    ap.add_argument("--block-size", type=int, default=128, help="context length T: tokens per sequence of that GPT")
    ap.add_argument("--batch-size", type=int, default=8, help="sequences per GPT training step (B)")
    ap.add_argument("--vocab-size", type=int, default=4096,
                    help="vocabulary of that GPT, also the number of classes of the timed cross-entropy")
    ap.add_argument("--fused-rows", type=int, default=2048,
                    help="rows (like B*T tokens) of the inputs of the timed layer norm and cross-entropy")
    ap.add_argument("--seed", type=int, default=0, help="random seed for the GPT's weights and its random inputs")
    ap.add_argument("--out", default=os.path.join("out", "08_device"),
                    help="folder for matmul.png (a relative path starts from the current directory; created if "
                    "missing)")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar (for logs and scripts)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    peak = machine_peak()
    print("estimated fp32 peak of this CPU:")
    for line in peak.how:
        print(f"  {line}")
    reason = cuda_status()
    devices = [("cpu", t) for t in args.threads]
    if reason is None:
        devices.append(("cuda", None))
    else:
        print(f"cuda: skipped ({reason})")

    jobs = []
    for device, threads in devices:
        jobs += [(device, threads, f"matmul {n}", lambda d, t, n=n: [time_matmul(n, d, t)]) for n in args.sizes]
        jobs.append((device, threads, "layer_norm, cross_entropy",
                     lambda d, t: time_fused(d, t, args.fused_rows, args.n_embd, args.vocab_size)))
        jobs.append((device, threads, "GPT step", lambda d, t: [time_gpt_step(args, d, t)]))
    saved_threads = tt.get_num_threads()
    rows: List[Row] = []
    bar = tqdm(jobs, desc="timing", dynamic_ncols=True, disable=args.no_progress)
    try:
        for device, threads, name, job in bar:
            bar.set_postfix_str(f"{device} x{threads or '-'} {name}")
            if threads:
                tt.set_num_threads(threads)
            rows += job(device, threads)
    finally:
        tt.set_num_threads(saved_threads)
    print_table(rows, peak)
    path = plot(rows, peak, os.path.join(args.out, "matmul.png"))
    print(f"saved {path}")
    return {"peak": peak, "rows": rows, "plot": path, "cuda_skipped": reason}


if __name__ == "__main__":
    main()

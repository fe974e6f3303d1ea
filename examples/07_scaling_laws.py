"""Chapter 07 (scaling laws): train a grid of small storytellers, fit L(N, D), and let the fit choose a model.

What it teaches: how the loss of a language model falls with its size N (parameters) and with the data D
(training tokens) it sees, and how a fit to a few cheap runs tells you how to spend a bigger budget.
It trains GPTs (models/gpt2.py) of several widths and depths on the TinyStories sample, each for several
token budgets D, each run with its own AdamW + warmup/cosine schedule that ends exactly at its budget,
and records the final val loss on one fixed set of held-out batches. Then it fits Chinchilla's law

    L(N, D) = E + A / N^alpha + B / D^beta

(E: the loss no model can beat; the other terms: what finite size and finite data cost) with NumPy alone:
for each (alpha, beta) on a grid the law is linear in (E, A, B), so a least-squares solve with E, A, B >= 0
(every subset of free coefficients tried, exact) gives the best (E, A, B); the best grid point is then
refined on finer grids around it. From the fit it derives the compute-optimal split of a budget
C = 6 N D FLOPs in closed form, checks the fit on ONE extra run that it never saw (bigger than the grid),
and recommends a model (N, D, n_layer, n_embd) for a budget of --minutes of training at the measured speed.

N counts ALL parameters, as Chinchilla does (model.num_parameters(): the token matrix once, since the
language-model head shares it, and the position embeddings). Kaplan et al. count only the non-embedding
ones. Here the vocabulary (4096) is large next to the widths (32-256), so the token matrix is 26% to 92%
of the model, and it is not free: as the output layer it costs 2 * vocab * n_embd FLOPs per token, like
any matrix. Leaving it out would make C = 6 N D wrong by up to 12x. results.json keeps both counts.

Run:
    python examples/07_scaling_laws.py --threads 2      # the default grid: 18 runs + 1 check
    python examples/07_scaling_laws.py --quick          # a CI-sized grid (tiny models, tiny budgets), same code

The default grid trains 34.7M tokens in all: about 22 minutes on one quiet core (less on two), 61 minutes on
this 2-core machine while it was busy with other work (use --threads 1 then: two threads lose time waiting
for each other). That run fitted E 0.000, A 87.73, alpha 0.317, B 78.31, beta 0.240 (rms 0.085 nats) and
predicted the check run (4x256, 4.2M parameters, 500K tokens) at 4.061 against a measured 4.130; see
docs/07_scaling_laws.md. --quick takes about 10 seconds.

Rerunning with the same settings and --out trains nothing again: it refits and replots from --out/runs.json.

Prints: the data, each run's N, D, val loss and tokens/s (a progress bar per run), the fitted E, A, alpha,
B, beta, the compute-optimal N and D for a few budgets, the extra run's predicted and measured val loss,
and the recommended configuration for --minutes of training. Saves under --out (default
out/07_scaling_laws/): data/ (token shards), runs.json (every finished run, so a rerun skips them; --fresh
starts over), results.json (runs, fit, check, recommendation) and scaling_fit.png.
"""
import argparse
import itertools
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor.data import DataLoader, load_index, prepare_shards
from tinytensor.optim.lr_scheduler import WarmupCosineLR
from tinytensor.tokenizer import Tokenizer
from models.gpt2 import GPT, GPTConfig

HERE = os.path.dirname(os.path.abspath(__file__))
GRID_SHAPES = ["1x32", "2x64", "2x96", "2x128", "3x160", "4x192"]     # n_layer x n_embd
GRID_TOKENS = [200_000, 500_000, 1_200_000]
EXTRA = "4x256:500000"                                                # shape:tokens of the check run
QUICK = dict(shapes=["1x16", "1x32", "2x48"], tokens=[8_192, 16_384, 32_768], extra="2x64:16384",
             batch_size=8, block_size=64, head_size=16, eval_batches=8, warmup_fraction=0.1)


# ---- the law and its fit (NumPy only) ----------------------------------------------------------------

def scaling_law(fit: Dict[str, float], N, D):
    """L(N, D) = E + A / N^alpha + B / D^beta."""
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    return fit["E"] + fit["A"] * N ** -fit["alpha"] + fit["B"] * D ** -fit["beta"]


def nonneg_lstsq(X: np.ndarray, y: np.ndarray):
    """min ||X c - y||^2 over c >= 0, exactly: the optimum is the plain least-squares solution on some subset
    of the columns (the others held at 0), so try every subset, keep those with c >= 0, take the best.
    Fine for the 3 columns here (8 subsets). Returns (c, sum of squared residuals)."""
    k = X.shape[1]
    best_c, best_sse = np.zeros(k), float(y @ y)
    for r in range(1, k + 1):
        for cols in itertools.combinations(range(k), r):
            sub = X[:, cols]
            c_sub = np.linalg.lstsq(sub, y, rcond=None)[0]
            if np.all(c_sub >= 0):
                sse = float(np.sum((sub @ c_sub - y) ** 2))
                if sse < best_sse:
                    best_c, best_sse = np.zeros(k), sse
                    best_c[list(cols)] = c_sub
    return best_c, best_sse


def solve_linear_part(N, D, L, alpha: float, beta: float):
    """For fixed exponents the law is linear in (E, A, B): columns 1, N^-alpha, D^-beta. Each column is scaled
    to unit length before the solve (N^-alpha can be 1e-9), and the coefficients scaled back after."""
    X = np.stack([np.ones_like(N), N ** -alpha, D ** -beta], axis=1)
    scale = np.linalg.norm(X, axis=0)
    c, sse = nonneg_lstsq(X / scale, L)
    return c / scale, sse


def fit_scaling_law(N: Sequence[float], D: Sequence[float], L: Sequence[float],
                    alpha_range=(0.02, 1.5), beta_range=(0.02, 1.5), points: int = 50, refinements: int = 4) -> dict:
    """Least-squares fit of L(N, D) = E + A/N^alpha + B/D^beta with E, A, B >= 0: a grid over (alpha, beta),
    an exact non-negative solve for (E, A, B) at each grid point, then `refinements` finer grids around the best
    point so far (each spans one step of the grid before on either side, with `points`//4 points per side)."""
    N, D, L = (np.asarray(v, dtype=np.float64) for v in (N, D, L))
    alphas, betas = np.linspace(*alpha_range, points), np.linspace(*beta_range, points)
    best = (math.inf, None, None, None)
    for _ in range(refinements + 1):
        for a in alphas:
            for b in betas:
                c, sse = solve_linear_part(N, D, L, a, b)
                if sse < best[0]:
                    best = (sse, a, b, c)
        _, a0, b0, _ = best
        step_a, step_b = alphas[1] - alphas[0], betas[1] - betas[0]
        alphas = np.clip(np.linspace(a0 - step_a, a0 + step_a, max(5, points // 4)), 1e-3, None)
        betas = np.clip(np.linspace(b0 - step_b, b0 + step_b, max(5, points // 4)), 1e-3, None)
    sse, alpha, beta, (E, A, B) = best
    fit = {"E": float(E), "A": float(A), "alpha": float(alpha), "B": float(B), "beta": float(beta)}
    fit["rmse"] = float(math.sqrt(sse / len(L)))
    coarse = [(hi - lo) / (points - 1) for lo, hi in (alpha_range, beta_range)]  # within a coarse step of a bound
    fit["at_edge"] = bool(any(v <= lo + h or v >= hi - h for v, (lo, hi), h in
                              zip((alpha, beta), (alpha_range, beta_range), coarse)))
    return fit


def compute_optimal(fit: Dict[str, float], C: float):
    """(N, D) that minimise L(N, D) under C = 6 N D. Setting dL/dN = 0 along D = C / (6N) gives
    N^(alpha+beta) = (alpha A / (beta B)) (C/6)^beta, so N = G (C/6)^(beta/(alpha+beta)) and
    D = (C/6)^(alpha/(alpha+beta)) / G with G = (alpha A / (beta B))^(1/(alpha+beta))."""
    a, b = fit["alpha"], fit["beta"]
    if fit["A"] <= 0 or fit["B"] <= 0:
        raise ValueError("compute_optimal: the fit needs A > 0 and B > 0 (else more N, or more D, never helps)")
    G = (a * fit["A"] / (b * fit["B"])) ** (1 / (a + b))
    return G * (C / 6) ** (b / (a + b)), (C / 6) ** (a / (a + b)) / G


# ---- models and their sizes ----------------------------------------------------------------------------

def parse_shape(text: str):
    """'2x128' -> (n_layer=2, n_embd=128)."""
    try:
        n_layer, n_embd = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"shape {text!r}: expected n_layer x n_embd such as 2x128") from None
    return n_layer, n_embd


def gpt_params(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    """Parameters of models/gpt2.py's GPT without biases: the tied token matrix V*C, positions T*C, per block
    12 C^2 (qkv 3C^2, attention projection C^2, MLP 8C^2) + 2C (two LayerNorm weights), a final LayerNorm C."""
    return vocab_size * n_embd + block_size * n_embd + n_layer * (12 * n_embd ** 2 + 2 * n_embd) + n_embd


def shape_for_params(target: float, vocab_size: int, block_size: int, head_size: int, aspect: float = 64.0):
    """(n_layer, n_embd) with about `target` parameters, n_embd a multiple of head_size, and width/depth
    closest to `aspect` (64 is GPT-2 small's 768/12 and the storyteller's 128/2) among the depths whose
    nearest width lands within 15% of the target."""
    options = []
    for n_layer in range(1, 25):
        widths = [head_size * k for k in range(1, 257)]
        n_embd = min(widths, key=lambda c: abs(gpt_params(n_layer, c, vocab_size, block_size) - target))
        if abs(gpt_params(n_layer, n_embd, vocab_size, block_size) / target - 1) <= 0.15:
            options.append((abs(math.log(n_embd / n_layer / aspect)), n_layer, n_embd))
    if not options:  # a target too small for any depth: the closest one-layer model
        widths = [head_size * k for k in range(1, 257)]
        return 1, min(widths, key=lambda c: abs(gpt_params(1, c, vocab_size, block_size) - target))
    return min(options)[1:]


def build_model(n_layer: int, n_embd: int, args, vocab_size: int) -> GPT:
    if n_embd % args.head_size:
        raise ValueError(f"n_embd {n_embd} is not a multiple of --head-size {args.head_size}")
    return GPT(GPTConfig(block_size=args.block_size, vocab_size=vocab_size, n_layer=n_layer,
                         n_head=n_embd // args.head_size, n_embd=n_embd, dropout=0.0, bias=False))


# ---- data and training ---------------------------------------------------------------------------------

def get_shards(args, tok: Tokenizer) -> str:
    """The token shards of --data in --out/data, made once with the shipped tokenizer (again if either changed)."""
    data_dir = os.path.join(args.out, "data")
    meta = {"source": os.path.abspath(args.data), "source_bytes": os.path.getsize(args.data),
            "tokenizer": os.path.abspath(args.tokenizer), "merges": len(tok.merges), "val_fraction": args.val_fraction}
    try:
        if load_index(data_dir)["meta"] == meta:
            return data_dir
    except (FileNotFoundError, ValueError):
        pass
    prepare_shards(args.data, tok, data_dir, args.val_fraction, meta=meta, progress=False)
    return data_dir


@tt.no_grad()
def val_loss(model: GPT, batches) -> float:
    """Mean loss per token over the fixed val batches."""
    model.eval()
    total = count = 0
    for x, y in batches:
        _, loss = model(x, y)
        total, count = total + loss.item() * x.numel(), count + x.numel()
    model.train()
    return total / count


def train_one(shape: str, tokens: int, data_dir: str, val_batches, args, vocab_size: int) -> dict:
    """Train one model for `tokens` tokens (rounded to whole steps) with its own warmup + cosine schedule."""
    n_layer, n_embd = parse_shape(shape)
    tt.manual_seed(args.seed)
    model = build_model(n_layer, n_embd, args, vocab_size)
    tokens_per_step = args.batch_size * args.block_size
    steps = max(1, round(tokens / tokens_per_step))
    opt = model.configure_optimizers(args.weight_decay, args.lr, betas=(0.9, 0.95))
    sched = WarmupCosineLR(opt, max(1, round(args.warmup_fraction * steps)), steps, args.min_lr_ratio)
    loader = DataLoader(data_dir, "train", args.batch_size, args.block_size, seed=args.seed)
    bar = tqdm(range(steps), desc=f"L{n_layer} C{n_embd} D={steps * tokens_per_step:,}", leave=False,
               dynamic_ncols=True, mininterval=1.0)
    start = time.perf_counter()
    for _ in bar:
        x, y = loader.next_batch()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        tt.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    seconds = time.perf_counter() - start
    bar.close()
    n_all = model.num_parameters()
    n_emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    return {"shape": shape, "n_layer": n_layer, "n_embd": n_embd, "N": n_all, "N_non_embedding": n_all - n_emb,
            "D": steps * tokens_per_step, "steps": steps, "val_loss": round(val_loss(model, val_batches), 5),
            "train_loss_last": round(loss.item(), 5), "seconds": round(seconds, 2),
            "tokens_per_s": round(steps * tokens_per_step / seconds, 1)}


def run_key(shape: str, tokens: int, args) -> str:
    """Everything that changes a run's result: a finished run with the same key is reused, not retrained."""
    return (f"{shape}|{tokens}|B{args.batch_size}|T{args.block_size}|hs{args.head_size}|lr{args.lr}|"
            f"min{args.min_lr_ratio}|wu{args.warmup_fraction}|wd{args.weight_decay}|clip{args.grad_clip}|"
            f"seed{args.seed}|eval{args.eval_batches}|{os.path.basename(args.data)}|{args.val_fraction}")


def load_cache(path: str, fresh: bool) -> dict:
    if fresh or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_json(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)  # a crash mid-write leaves the old file whole


def run_all(jobs: List[tuple], data_dir: str, args, vocab_size: int) -> List[dict]:
    """Train every (shape, tokens) job not already in --out/runs.json, saving after each one."""
    cache_path = os.path.join(args.out, "runs.json")
    cache = load_cache(cache_path, args.fresh)
    val_batches = list(DataLoader(data_dir, "val", args.batch_size, args.block_size, shuffle=False).epoch_batches())
    val_batches = val_batches[:args.eval_batches] if args.eval_batches else val_batches
    results = []
    for shape, tokens in tqdm(jobs, desc="runs", dynamic_ncols=True, position=0):
        key = run_key(shape, tokens, args)
        if key not in cache:
            cache[key] = train_one(shape, tokens, data_dir, val_batches, args, vocab_size)
            save_json(cache, cache_path)
        r = cache[key]
        tqdm.write(f"  {r['shape']:>6}  N={r['N']:>9,}  D={r['D']:>10,}  val loss {r['val_loss']:.4f}  "
                   f"({r['tokens_per_s']:,.0f} tokens/s, {r['seconds']:.0f} s)")
        results.append(r)
    return results


# ---- report ------------------------------------------------------------------------------------------

def flop_rate(runs: List[dict]) -> float:
    """Training FLOP/s (6 N per token) of the largest model run: small models waste more time on overhead,
    so the largest one is the best guess for the speed of a bigger model."""
    biggest = max(runs, key=lambda r: (r["N"], r["D"]))
    return 6 * biggest["N"] * biggest["tokens_per_s"]


def recommend(fit: dict, runs: List[dict], args, vocab_size: int, train_tokens: int) -> dict:
    """The fit's compute-optimal model for --minutes of training at the measured FLOP rate; and, when that D
    repeats the train split more than --max-epochs times, the best model whose D stays within that cap (along
    an iso-compute curve the fitted loss falls towards the optimum, so the cap itself is then best)."""
    rate = args.flops_per_s or flop_rate(runs)
    C = rate * args.minutes * 60
    N, D = compute_optimal(fit, C)
    rec = {"minutes": args.minutes, "flops_per_s": rate, "C": C, "N": N, "D": D, "tokens_per_param": D / N,
           "rate_from": "--flops-per-s" if args.flops_per_s else "measured on the largest model",
           "predicted_val_loss": float(scaling_law(fit, N, D)), "epochs_of_train_split": D / train_tokens}
    rec.update(shape_summary(N, C, args, vocab_size))
    D_cap = args.max_epochs * train_tokens
    if D > D_cap:
        N_capped = C / (6 * D_cap)
        capped = {"max_epochs": args.max_epochs, "N": N_capped, "D": D_cap,
                  "predicted_val_loss": float(scaling_law(fit, N_capped, D_cap))}
        capped.update(shape_summary(N_capped, C, args, vocab_size))
        rec["data_capped"] = capped
    return rec


def shape_summary(N: float, C: float, args, vocab_size: int) -> dict:
    """A GPT shape with about N parameters, and what C buys it: tokens, and tokens/s in --minutes."""
    n_layer, n_embd = shape_for_params(N, vocab_size, args.block_size, args.head_size)
    N_shape = gpt_params(n_layer, n_embd, vocab_size, args.block_size)
    return {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_embd // args.head_size, "N_of_shape": N_shape,
            "D_for_shape": C / (6 * N_shape), "tokens_per_s_for_shape": C / (6 * N_shape) / (args.minutes * 60)}


def print_fit(fit: dict, n_runs: int) -> None:
    edge = "   [an exponent sits at the edge of its search range]" if fit["at_edge"] else ""
    edge += "   [E at its bound 0: these points do not pin the floor down]" if fit["E"] == 0 else ""
    print(f"\nfit over {n_runs} runs: L(N, D) = {fit['E']:.3f} + {fit['A']:.4g} / N^{fit['alpha']:.3f} + "
          f"{fit['B']:.4g} / D^{fit['beta']:.3f}   (rms error {fit['rmse']:.4f} nats)")
    print(f"  E = {fit['E']:.4f}, A = {fit['A']:.4g}, alpha = {fit['alpha']:.4f}, B = {fit['B']:.4g}, "
          f"beta = {fit['beta']:.4f}{edge}")
    if fit["A"] > 0 and fit["B"] > 0:
        a, b = fit["alpha"], fit["beta"]
        print(f"  compute-optimal: N grows as C^{b / (a + b):.2f}, D as C^{a / (a + b):.2f}")
        for C in (1e13, 1e14, 1e15):
            N, D = compute_optimal(fit, C)
            print(f"  C = {C:.0e} FLOPs: N = {N:,.0f}, D = {D:,.0f} ({D / N:.1f} tokens per parameter), "
                  f"L = {float(scaling_law(fit, N, D)):.3f}")


def print_check(extra: dict) -> None:
    print(f"\ncheck run (not in the fit) {extra['shape']} N={extra['N']:,} D={extra['D']:,}: predicted "
          f"{extra['predicted_val_loss']:.4f}, measured {extra['val_loss']:.4f} "
          f"(error {extra['val_loss'] - extra['predicted_val_loss']:+.4f} nats)")


def print_recommendation(rec: dict) -> None:
    print(f"\n{rec['minutes']:.0f} minutes at {rec['flops_per_s'] / 1e9:.1f} GFLOP/s ({rec['rate_from']}) is "
          f"C = {rec['C']:.3g} FLOPs; the fit recommends N = {rec['N']:,.0f} parameters and "
          f"D = {rec['D']:,.0f} tokens ({rec['tokens_per_param']:.1f} per parameter, "
          f"{rec['epochs_of_train_split']:.1f} epochs of the train split), predicted val loss "
          f"{rec['predicted_val_loss']:.3f}")
    print_shape(rec)
    capped = rec.get("data_capped")
    if capped:
        print(f"  that repeats the data more than any run of the fit did (expect a worse loss). Capped at "
              f"{capped['max_epochs']:g} epochs: N = {capped['N']:,.0f}, D = {capped['D']:,.0f}, predicted val "
              f"loss {capped['predicted_val_loss']:.3f} (an extrapolation in N)")
        print_shape(capped)


def print_shape(rec: dict) -> None:
    print(f"  a shape with about that N: n_layer {rec['n_layer']}, n_embd {rec['n_embd']}, n_head {rec['n_head']} "
          f"({rec['N_of_shape']:,} parameters): {rec['D_for_shape']:,.0f} tokens at "
          f"~{rec['tokens_per_s_for_shape']:,.0f} tokens/s")


# ---- plot --------------------------------------------------------------------------------------------

def plot(fit: dict, runs: List[dict], extra: Optional[dict], rec: dict, path: str) -> None:
    """Left: val loss against D per model size, the points and the fitted curves (the check run starred).
    Right: iso-compute curves, L against N along C = 6 N D, with the fit's optimum on each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    sizes = sorted({(r["N"], r["shape"]) for r in runs})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    Ds = np.geomspace(min(r["D"] for r in runs) / 1.5, max(r["D"] for r in runs + ([extra] if extra else [])) * 1.5)
    for (N, shape), color in zip(sizes, colors):
        pts = [r for r in runs if r["N"] == N]
        left.plot([r["D"] for r in pts], [r["val_loss"] for r in pts], "o", color=color,
                  label=f"{shape} N={N / 1e6:.2f}M")
        left.plot(Ds, scaling_law(fit, N, Ds), "-", color=color, lw=1)
    if extra:
        left.plot(Ds, scaling_law(fit, extra["N"], Ds), "--", color="crimson", lw=1)
        left.plot([extra["D"]], [extra["val_loss"]], "*", ms=14, color="crimson",
                  label=f"check {extra['shape']} N={extra['N'] / 1e6:.2f}M: measured")
        left.plot([extra["D"]], [extra["predicted_val_loss"]], "o", ms=9, mfc="none", color="crimson",
                  label="check: predicted")
    left.set_xscale("log")
    left.set_xlabel("training tokens D")
    left.set_ylabel("val loss (nats/token)")
    left.set_title(f"L = {fit['E']:.2f} + {fit['A']:.3g}/N^{fit['alpha']:.2f} + {fit['B']:.3g}/D^{fit['beta']:.2f}",
                   fontsize=10)
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    plot_iso_compute(right, fit, runs, rec)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_iso_compute(ax, fit: dict, runs: List[dict], rec: dict) -> None:
    import matplotlib.pyplot as plt
    Cs = [6 * r["N"] * r["D"] for r in runs]
    budgets = list(np.geomspace(min(Cs), max(Cs), 4)) + ([rec["C"]] if rec else [])
    Ns = np.geomspace(min(r["N"] for r in runs) / 4, max(r["N"] for r in runs) * 30, 300)
    colors = plt.cm.plasma(np.linspace(0, 0.85, len(budgets)))
    for C, color in zip(budgets, colors):
        ax.plot(Ns, scaling_law(fit, Ns, C / (6 * Ns)), color=color, lw=1.2,
                label=f"C = {C:.2g}" + (f" ({rec['minutes']:.0f} min)" if rec and C == rec["C"] else ""))
        if fit["A"] > 0 and fit["B"] > 0:
            N_opt, D_opt = compute_optimal(fit, C)
            ax.plot([N_opt], [scaling_law(fit, N_opt, D_opt)], "o", color=color)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N (D = C / 6N)")
    ax.set_ylabel("fitted val loss")
    ax.set_title("iso-compute curves (FLOPs C), dots: the compute-optimal N", fontsize=10)
    lows = [float(scaling_law(fit, *compute_optimal(fit, C))) for C in budgets] if fit["A"] > 0 < fit["B"] else [2]
    ax.set_ylim(min(lows) - 0.2, max(r["val_loss"] for r in runs) + 0.5)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


# ---- main --------------------------------------------------------------------------------------------

def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a CI-sized grid: " + ", ".join(
        f"{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in QUICK.items()) +
        " (flags given explicitly still win)")
    ap.add_argument("--shapes", nargs="+", default=GRID_SHAPES, help="the grid's models, n_layer x n_embd")
    ap.add_argument("--tokens", nargs="+", type=int, default=GRID_TOKENS, help="the grid's token budgets D "
                    "(each rounded to whole steps of batch-size x block-size tokens)")
    ap.add_argument("--extra", default=EXTRA, help="the check run left out of the fit, shape:tokens ('' for none)")
    ap.add_argument("--data", default=os.path.join(HERE, "data", "tinystories_sample.txt"),
                    help="the stories to train on, separated by <|endoftext|>")
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "checkpoints", "storyteller", "tokenizer.bpe"),
                    help="the BPE tokenizer (the storyteller's 4096 tokens)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="the last stories kept for validation")
    ap.add_argument("--block-size", type=int, default=128, help="context length T")
    ap.add_argument("--batch-size", type=int, default=16, help="sequences per step B")
    ap.add_argument("--head-size", type=int, default=32, help="n_head = n_embd / head-size")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, the same for every run")
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of the peak")
    ap.add_argument("--warmup-fraction", type=float, default=0.05, help="linear warmup, a fraction of each run")
    ap.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decoupled decay of the matrices")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm")
    ap.add_argument("--eval-batches", type=int, default=0, help="val batches, the same for every run (0: all)")
    ap.add_argument("--minutes", type=float, default=90.0, help="training time to recommend a model for")
    ap.add_argument("--flops-per-s", type=float, default=0.0, help="the training speed the recommendation "
                    "assumes, in FLOP/s (0: 6 N tokens/s measured on the largest model run, which counts any other "
                    "load on the machine)")
    ap.add_argument("--max-epochs", type=float, default=4.0, help="also recommend a model whose D repeats the "
                    "train split at most this often, when the compute-optimal D would repeat it more")
    ap.add_argument("--fresh", action="store_true", help="retrain every run (else runs in --out/runs.json are reused)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the default)")
    ap.add_argument("--seed", type=int, default=1337, help="model init and data order (the same for every run)")
    ap.add_argument("--out", default=os.path.join("out", "07_scaling_laws"),
                    help="folder for runs.json (the cache of finished runs), results.json and the plot")
    quick = ap.parse_known_args(argv)[0].quick
    if quick:
        ap.set_defaults(**QUICK)
    return ap.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        tt.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    tok = Tokenizer.load(args.tokenizer)
    data_dir = get_shards(args, tok)
    splits = load_index(data_dir)["splits"]
    print(f"data: {splits['train']['tokens']:,} train tokens, {splits['val']['tokens']:,} val tokens, "
          f"vocabulary {tok.vocab_size}; {tt.get_num_threads()} threads")
    jobs = [(shape, tokens) for shape in args.shapes for tokens in args.tokens]
    if args.extra:
        shape, tokens = args.extra.split(":")
        jobs.append((shape, int(tokens)))
    runs = run_all(jobs, data_dir, args, tok.vocab_size)
    grid, extra = (runs[:-1], dict(runs[-1])) if args.extra else (runs, None)
    fit = fit_scaling_law([r["N"] for r in grid], [r["D"] for r in grid], [r["val_loss"] for r in grid])
    if extra:
        extra["predicted_val_loss"] = float(scaling_law(fit, extra["N"], extra["D"]))
    rec = recommend(fit, runs, args, tok.vocab_size, splits["train"]["tokens"]) if fit["A"] > 0 < fit["B"] else {}
    print_fit(fit, len(grid))
    if extra:
        print_check(extra)
    if rec:
        print_recommendation(rec)
    plot(fit, grid, extra, rec, os.path.join(args.out, "scaling_fit.png"))
    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("fresh", "out")},
               "N_counts": "all parameters (tied token matrix once, position embeddings included)",
               "train_tokens": splits["train"]["tokens"], "val_tokens": splits["val"]["tokens"],
               "runs": grid, "fit": fit, "extra": extra, "recommendation": rec}
    save_json(results, os.path.join(args.out, "results.json"))
    print(f"wrote {os.path.join(args.out, 'results.json')} and {os.path.join(args.out, 'scaling_fit.png')}")
    return results


if __name__ == "__main__":
    main()

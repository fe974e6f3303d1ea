"""Chapter 07, optimization: initialisation, optimizers, learning-rate schedules and clipping on chapter 03's MLP.

What it teaches, in two experiments on chapter 03's character MLP (examples/03_mlp.py):

1. Initialisation. A stack of tanh layers keeps its signal only if each layer keeps the variance of
   what passes through. Weights drawn from N(0, 1) make every pre-activation huge, so tanh saturates
   at +-1 and its gradient (1 - tanh^2) vanishes; PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
   has std 1/sqrt(3 fan_in) and shrinks the signal layer by layer; Kaiming's N(0, gain^2 / fan_in)
   with tanh's gain 5/3 keeps it steady; and BatchNorm1d re-standardises every pre-activation, which
   rescues even N(0, 1) weights. We build the model with --init-layers hidden layers, run one batch
   forward and backward, and print and plot per layer: the activations (mean, std, % saturated) and
   their gradients; then train each variant briefly to see what the statistics cost.
2. Optimizers. From the same initial weights and the same batches: plain SGD, SGD with momentum
   (a running average of gradients), Adam (a per-parameter step size from running gradient moments),
   AdamW (Adam with weight decay taken out of the gradient), AdamW with linear warmup and cosine decay
   of the learning rate, and the same with gradient-norm clipping.

Run:
    python examples/07_optimization.py                          # defaults: 4 x 200 + 6 x 600 steps
    python examples/07_optimization.py --steps 500 --skip-init --runs sgd,adamw_cosine

Prints: a table of per-layer statistics for every initialisation with its loss at step 0 and its val
loss after --init-steps, then a table of the final train and val loss of every optimizer run (and how
often clipping triggered). Saves `<out>/init_<scheme>.png` (histograms of activations, activation
gradients and weight gradients per layer), `<out>/init_loss.png` and `<out>/loss.png` (training loss,
learning rate and gradient norm of every optimizer run).
With the defaults: N(0, 1) saturates 67-88% of the tanh units and PyTorch's default shrinks the
activation std from 0.43 to 0.09 over 4 layers, while Kaiming and BatchNorm hold it near 0.65 (the
loss at step 0 is log 27 for all four: the output layer starts small in every scheme). After 200
steps Kaiming is best (val 2.17; BatchNorm 2.19, default 2.25, N(0, 1) 2.28). After 600 steps: SGD
2.28, momentum 2.26, Adam and AdamW 2.20, AdamW + warmup/cosine 2.17. At this size weight decay
and clipping (3% of steps, all early) change little: clipping is insurance against rare spikes.
Takes about 2 minutes on a 2-core CPU.
"""
import argparse
import math
import os
from dataclasses import replace
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np

from models import mlp   # chapter 03's model, names data and training loop
import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import nn
from tinytensor.nn import init


INIT_SCHEMES = {
    "unscaled": "hidden weights ~ N(0, 1)",
    "default": "PyTorch's Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
    "kaiming": "Kaiming: N(0, (5/3)^2 / fan_in), tanh's gain",
    "batchnorm": "N(0, 1) weights, BatchNorm1d before each tanh",
}

# name -> how to build the run: optimizer, learning rate, schedule, clipping
RUNS = {
    "sgd": dict(label="SGD", opt="sgd", momentum=0.0),
    "momentum": dict(label="SGD + momentum 0.9", opt="sgd", momentum=0.9),
    "adam": dict(label="Adam", opt="adam"),
    "adamw": dict(label="AdamW", opt="adamw"),
    "adamw_cosine": dict(label="AdamW + warmup/cosine", opt="adamw", schedule=True),
    "adamw_cosine_clip": dict(label="AdamW + warmup/cosine + clip", opt="adamw", schedule=True, clip=True),
}


class LayerStats(NamedTuple):
    act_mean: float
    act_std: float
    saturated: float      # fraction of |tanh| > 0.97, where the local gradient 1 - tanh^2 is below 0.06
    grad_std: float       # std of d loss / d activation
    weight_ratio: float   # std(d loss / d W) / std(W) of the Linear feeding this layer


class InitResult(NamedTuple):
    loss0: float                   # loss of the first batch, before any update
    stats: List[LayerStats]        # one per hidden layer
    acts: List[np.ndarray]         # the activations (B, H) of each hidden layer
    act_grads: List[np.ndarray]    # their gradients
    weight_grads: List[np.ndarray]
    val: Optional[float]           # val loss after the short training (None if not trained)
    losses: List[float]


class RunResult(NamedTuple):
    label: str
    lr: float
    train_loss: float              # mean minibatch loss of the last 10% of steps
    val: float
    log: "mlp.TrainLog"
    clip: Optional[float]


# ---- 1. initialisation --------------------------------------------------------------------------

def build_model(config: "mlp.MLPConfig", scheme: str, seed: int, device: str = "cpu") -> "mlp.MLP":
    """Chapter 03's MLP with the hidden Linear weights drawn by `scheme` (the head keeps its small init)."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose from {sorted(INIT_SCHEMES)}")
    tt.manual_seed(seed)
    model = mlp.MLP(replace(config, batchnorm=scheme == "batchnorm"))
    for layer in model.hidden:
        if not isinstance(layer, nn.Linear) or scheme == "default":
            continue
        if scheme == "kaiming":
            init.kaiming_normal_(layer.weight, nonlinearity="tanh")    # std = (5/3) / sqrt(fan_in)
        else:
            init.normal_(layer.weight, 0.0, 1.0)
        if layer.bias is not None:
            init.zeros_(layer.bias)
    return model.to(device)


def layer_statistics(model: "mlp.MLP", X: tt.Tensor, Y: tt.Tensor) -> InitResult:
    """One forward and backward pass, keeping every hidden activation and its gradient."""
    model.train()
    model.zero_grad()
    acts, linears = [], []
    x = model.wte(X).flatten(1)                         # (B, T*C)
    for layer in model.hidden:
        x = layer(x)
        if isinstance(layer, nn.Linear):
            linears.append(layer)
        if isinstance(layer, (nn.Tanh, nn.GELU)):
            x.retain_grad()                             # keep d loss / d x of a non-leaf tensor
            acts.append(x)
    loss = F.cross_entropy(model.head(x), Y)
    loss.backward()
    stats, a_np, g_np, w_np = [], [], [], []
    for a, lin in zip(acts, linears):
        a_np.append(a.detach().numpy())
        g_np.append(a.grad.numpy())
        w_np.append(lin.weight.grad.numpy())
        stats.append(LayerStats(float(a_np[-1].mean()), float(a_np[-1].std()), float((np.abs(a_np[-1]) > 0.97).mean()),
                                float(g_np[-1].std()), float(w_np[-1].std() / lin.weight.detach().numpy().std())))
    model.zero_grad()
    return InitResult(loss.item(), stats, a_np, g_np, w_np, None, [])


def init_study(data: Dict[str, "mlp.Split"], config: "mlp.MLPConfig", schemes: List[str], train_steps: int,
               batch_size: int, lr: float, seed: int, progress: bool = True,
               log: Callable[[str], None] = print) -> Dict[str, InitResult]:
    """Statistics at step 0 for each scheme, then `train_steps` of chapter 03's recipe from that start."""
    g = tt.Generator(seed)
    ix = tt.randint(0, data["train"].Y.shape[0], (batch_size,), generator=g)
    X, Y = data["train"].X[ix], data["train"].Y[ix]
    results = {}
    log(f"initialisation, {config.n_layer} hidden layers of {config.n_hidden} ({config.activation}), "
        f"one batch of {batch_size}; uniform guess loss log(27) = {math.log(27):.4f}")
    log(f"{'scheme':10s} {'layer':>5s} {'act mean':>9s} {'act std':>8s} {'saturated':>9s} {'grad std':>9s} "
        f"{'|dW|/|W|':>9s}")
    for scheme in schemes:
        model = build_model(config, scheme, seed, X.device.type)
        res = layer_statistics(model, X, Y)
        for i, s in enumerate(res.stats):
            log(f"{scheme if i == 0 else '':10s} {i + 1:5d} {s.act_mean:+9.3f} {s.act_std:8.3f} {s.saturated:9.1%} "
                f"{s.grad_std:9.2e} {s.weight_ratio:9.2e}")
        val, losses = None, []
        if train_steps:
            opt = mlp.make_optimizer(model, lr, 0.01)
            sched = tt.optim.lr_scheduler.WarmupCosineLR(opt, min(100, train_steps // 5), train_steps, 0.05)
            losses = mlp.train(model, data["train"], opt, train_steps, batch_size, tt.Generator(seed + 1), sched,
                               desc=scheme, progress=progress).losses
            val = mlp.evaluate(model, data["val"])
        results[scheme] = res._replace(val=val, losses=losses)
    log(f"{'scheme':10s} {'loss at step 0':>15s} {'val after ' + str(train_steps) + ' steps':>22s}")
    for scheme, res in results.items():
        val = "-" if res.val is None else f"{res.val:.4f}"
        log(f"{scheme:10s} {res.loss0:15.4f} {val:>22s}   ({INIT_SCHEMES[scheme]})")
    return results


# ---- 2. optimizers, schedules and clipping --------------------------------------------------------

def make_run_optimizer(model: "mlp.MLP", spec: dict, lrs: Dict[str, float], weight_decay: float):
    if spec["opt"] == "sgd":
        lr = lrs["momentum"] if spec["momentum"] else lrs["sgd"]
        return tt.optim.SGD(model.parameters(), lr=lr, momentum=spec["momentum"])
    if spec["opt"] == "adam":
        return tt.optim.Adam(model.parameters(), lr=lrs["adam"])
    return mlp.make_optimizer(model, lrs["adam"], weight_decay)     # AdamW, decaying matrices only


def optimizer_study(data: Dict[str, "mlp.Split"], config: "mlp.MLPConfig", runs: List[str], steps: int,
                    batch_size: int, lrs: Dict[str, float], warmup: int, min_lr_ratio: float, weight_decay: float,
                    clip: float, seed: int, progress: bool = True,
                    log: Callable[[str], None] = print) -> Dict[str, RunResult]:
    """Train one fresh model per run: same initial weights (seed), same batches (generator seed)."""
    results = {}
    for name in runs:
        spec = RUNS[name]
        tt.manual_seed(seed)
        model = mlp.MLP(config).to(data["train"].X.device.type)
        opt = make_run_optimizer(model, spec, lrs, weight_decay)
        sched = tt.optim.lr_scheduler.WarmupCosineLR(opt, min(warmup, steps), steps, min_lr_ratio) \
            if spec.get("schedule") else None
        run_clip = clip if spec.get("clip") else None
        train_log = mlp.train(model, data["train"], opt, steps, batch_size, tt.Generator(seed), sched, run_clip,
                              measure_grad_norm=True, desc=name, progress=progress)
        tail = train_log.losses[-max(1, steps // 10):]
        results[name] = RunResult(spec["label"], opt.param_groups[0]["initial_lr"] if sched else train_log.lrs[0],
                                  float(np.mean(tail)), mlp.evaluate(model, data["val"]), train_log, run_clip)
        log(f"  {spec['label']:30s} val {results[name].val:.4f}")
    return results


def print_table(results: Dict[str, RunResult], steps: int, log: Callable[[str], None] = print) -> None:
    log(f"\nfinal losses after {steps} steps (train: mean of the last 10% of minibatches)")
    log(f"{'run':32s} {'peak lr':>8s} {'train':>7s} {'val':>7s} {'clipped':>8s}")
    for r in results.values():
        clipped = "-" if r.clip is None else f"{np.mean(np.array(r.log.grad_norms) > r.clip):.0%}"
        log(f"{r.label:32s} {r.lr:8.3g} {r.train_loss:7.4f} {r.val:7.4f} {clipped:>8s}")


# ---- plots ---------------------------------------------------------------------------------------------

def _hist(ax, arrays: List[np.ndarray], title: str, labels: List[str]) -> None:
    for a, label in zip(arrays, labels):
        counts, edges = np.histogram(a.ravel(), bins=60, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, counts, label=label)
    ax.set(title=title)
    ax.legend(fontsize=7)


def save_init_plots(out: str, results: Dict[str, InitResult]) -> List[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for scheme, res in results.items():
        fig, axes = plt.subplots(1, 3, figsize=(16, 4))
        _hist(axes[0], res.acts, "activations (tanh output)",
              [f"layer {i + 1}: std {s.act_std:.2f}, saturated {s.saturated:.0%}" for i, s in enumerate(res.stats)])
        _hist(axes[1], res.act_grads, "activation gradients",
              [f"layer {i + 1}: std {s.grad_std:.1e}" for i, s in enumerate(res.stats)])
        _hist(axes[2], res.weight_grads, "weight gradients",
              [f"layer {i + 1}: std(dW)/std(W) {s.weight_ratio:.1e}" for i, s in enumerate(res.stats)])
        fig.suptitle(f"init '{scheme}': {INIT_SCHEMES[scheme]} (loss at step 0: {res.loss0:.3f})")
        fig.tight_layout()
        paths.append(os.path.join(out, f"init_{scheme}.png"))
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    if any(res.losses for res in results.values()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for scheme, res in results.items():
            window = max(1, len(res.losses) // 30)
            ax.plot(np.arange(window - 1, len(res.losses)), mlp.smooth(res.losses, window), label=scheme)
        ax.set(xlabel="step", ylabel="training loss (moving average)", yscale="log", title="training by init")
        ax.legend()
        fig.tight_layout()
        paths.append(os.path.join(out, "init_loss.png"))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def save_optimizer_plot(out: str, results: Dict[str, RunResult]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for r in results.values():
        losses = r.log.losses
        window = max(1, len(losses) // 30)
        axes[0].plot(np.arange(window - 1, len(losses)), mlp.smooth(losses, window), label=f"{r.label} ({r.val:.3f})")
        axes[1].plot(np.array(r.log.lrs) / r.lr, label=r.label)
        axes[2].plot(r.log.grad_norms, lw=0.5, label=r.label)
    axes[0].set(xlabel="step", ylabel="training loss (moving average)", ylim=(2.0, 3.0),
                title="training loss (legend: final val loss)")
    axes[1].set(xlabel="step", ylabel="lr / peak lr", title="learning-rate schedule")
    clips = {r.clip for r in results.values() if r.clip is not None}
    for clip in clips:
        axes[2].axhline(clip, color="k", ls="--", lw=1, label=f"clip at {clip:g}")
    axes[2].set(xlabel="step", ylabel="total gradient norm (before clipping)", yscale="log", title="gradient norm")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "loss.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- the chapter -------------------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--steps", type=int, default=600,
                    help="training steps of every optimizer run; each step updates the weights from one minibatch")
    ap.add_argument("--batch-size", type=int, default=1024,
                    help="examples per minibatch, in both studies (chapter 03's default)")
    ap.add_argument("--runs", default=",".join(RUNS),
                    help="which optimizer runs to train: names joined by commas without spaces, chosen from "
                    + ", ".join(RUNS))
    ap.add_argument("--sgd-lr", type=float, default=1.0,
                    help="learning rate of plain SGD (the best of 0.1, 0.3 and 1.0 at the default settings)")
    ap.add_argument("--momentum-lr", type=float, default=0.1, help="learning rate of SGD with momentum 0.9")
    ap.add_argument("--adam-lr", type=float, default=1e-2,
                    help="learning rate of Adam and AdamW (the peak one in the warmup/cosine runs); the "
                    "initialisation study trains with it too")
    ap.add_argument("--weight-decay", type=float, default=0.01,
                    help="AdamW's weight decay: each step shrinks the weight matrices a little towards zero "
                    "(biases and embeddings are left alone)")
    ap.add_argument("--warmup", type=int, default=100,
                    help="steps over which the scheduled runs raise the learning rate linearly from near 0 to "
                    "its peak")
    ap.add_argument("--min-lr-ratio", type=float, default=0.05,
                    help="learning rate at the last step of the scheduled runs, as a fraction of the peak (the end "
                    "of the cosine decay)")
    ap.add_argument("--clip", type=float, default=0.5,
                    help="in the clipped run, gradients whose total norm exceeds this are scaled down to it, "
                    "which guards against rare huge steps")
    ap.add_argument("--skip-init", action="store_true",
                    help="skip the initialisation study and go straight to the optimizer runs")
    ap.add_argument("--init-schemes", default=",".join(INIT_SCHEMES),
                    help="which weight initialisations to study: names joined by commas without spaces, chosen "
                    "from " + ", ".join(INIT_SCHEMES))
    ap.add_argument("--init-layers", type=int, default=4,
                    help="hidden layers of the deeper MLP used in the initialisation study")
    ap.add_argument("--init-steps", type=int, default=200,
                    help="training steps after measuring each initialisation, to see what it costs later "
                    "(0 measures the statistics only)")
    ap.add_argument("--n-hidden", type=int, default=200, help="units per hidden layer, in both studies")
    ap.add_argument("--seed", type=int, default=0,
                    help="random seed for the initial weights and the order of the minibatches; every run starts "
                    "from the same weights and sees the same batches")
    ap.add_argument("--device", default="cpu",
                    help="where the tensors live: cpu, or cuda when CuPy and an NVIDIA GPU are present")
    ap.add_argument("--out", default=os.path.join("out", "07_optimization"),
                    help="folder for the plots (a relative path starts from the current directory; created if "
                    "missing)")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bars (for logs and scripts)")
    args = ap.parse_args(argv)
    for name in args.runs.split(","):
        if name not in RUNS:
            ap.error(f"unknown run {name!r}; choose from {','.join(RUNS)}")
    for name in args.init_schemes.split(","):
        if name not in INIT_SCHEMES:
            ap.error(f"unknown init scheme {name!r}; choose from {','.join(INIT_SCHEMES)}")

    data = mlp.load_splits(device=args.device)
    config = mlp.MLPConfig(n_hidden=args.n_hidden)
    os.makedirs(args.out, exist_ok=True)
    out = {}
    if not args.skip_init:
        schemes = args.init_schemes.split(",")
        out["init"] = init_study(data, replace(config, n_layer=args.init_layers), schemes, args.init_steps,
                                 args.batch_size, args.adam_lr, args.seed, not args.no_progress)
        for path in save_init_plots(args.out, out["init"]):
            print(f"saved {path}")
    print(f"\noptimizers: chapter 03's MLP, {args.steps} steps of {args.batch_size} examples each")
    lrs = {"sgd": args.sgd_lr, "momentum": args.momentum_lr, "adam": args.adam_lr}
    out["runs"] = optimizer_study(data, config, args.runs.split(","), args.steps, args.batch_size, lrs, args.warmup,
                                  args.min_lr_ratio, args.weight_decay, args.clip, args.seed, not args.no_progress)
    print_table(out["runs"], args.steps)
    print(f"saved {save_optimizer_plot(args.out, out['runs'])}")
    return out


if __name__ == "__main__":
    main()

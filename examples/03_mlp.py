"""Chapter 03, n-gram MLP: Bengio et al. (2003)'s neural language model of names, one character at a time.

What it teaches: the bigram table of chapter 01 cannot grow: with 3 characters of context it would
need 27^3 rows, most never seen. Bengio et al. give every character a learned vector (an embedding),
concatenate the vectors of the last `block_size` characters and feed them through a hidden layer, so
that similar characters share what they learn. The model is trained on random minibatches with AdamW
and a warmup + cosine learning-rate schedule, and judged on names it never saw: the names are split
80/10/10 into train/val/test by a fixed seed, the validation NLL picks settings, and the test NLL is
printed once at the end.

    idx (B, T) -> Embedding -> (B, T, C) -> flatten -> (B, T*C) -> Linear -> tanh -> (B, H) -> Linear -> (B, V)

Run:
    python examples/03_mlp.py                               # defaults: 1000 steps of 1024 examples
    python examples/03_mlp.py --steps 3000 --batch-size 256 --n-hidden 300 --activation gelu

Prints: the sizes of the splits and of the model, then train/val NLL every --eval-interval steps and
at the end (the uniform guess is log 27 = 3.2958, chapter 01's bigram about 2.45; the defaults reach
a val NLL of about 2.14), the test NLL and sampled names. Saves `<out>/loss.png`.
Takes about half a minute to a minute on a 2-core CPU. Why 1024 examples per step, not makemore's
32: every step pays a fixed cost of Python bookkeeping (over 10 ms here), so on a CPU fewer, larger
batches reach the same loss sooner.
"""
import argparse
import math
import os
from typing import Callable, List, Optional, Tuple

import numpy as np

import tinytensor as tt
from models.mlp import (CHARS, MLP, NAMES, MLPConfig, Split, TrainLog, build_dataset,  # noqa: F401 (the chapter's API)
                        evaluate, load_splits, load_words, make_optimizer, sample_names, smooth, split_words, train)


def save_loss_plot(path: str, losses: List[float], evals: List[Tuple[int, float, float]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    window = max(1, len(losses) // 50)
    ax.plot(np.arange(len(losses)), losses, color="C0", alpha=0.2, lw=0.5)
    ax.plot(np.arange(window - 1, len(losses)), smooth(losses, window), color="C0", label="train (minibatch)")
    if evals:
        steps, tr, va = zip(*evals)
        ax.plot(steps, tr, "o-", color="C2", label="train (full split)")
        ax.plot(steps, va, "o-", color="C1", label="val")
    ax.axhline(math.log(27), color="gray", ls=":", label="uniform guess")
    ax.set(xlabel="step", ylabel="NLL (nats)", ylim=(1.9, 3.5), title="character MLP on names")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(config: Optional[MLPConfig] = None, steps: int = 1000, batch_size: int = 1024, lr: float = 1e-2,
        warmup: int = 100, min_lr_ratio: float = 0.05, weight_decay: float = 0.01, eval_interval: int = 250,
        samples: int = 10, seed: int = 0, split_seed: int = 42, device: str = "cpu", out: Optional[str] = None,
        words: Optional[List[str]] = None, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """The whole chapter; returns the numbers it prints (the tests call this)."""
    config = MLPConfig() if config is None else config
    data = load_splits(config.block_size, split_seed, device, words)
    log("examples (context, next): " + ", ".join(f"{k} {v.Y.shape[0]:,}" for k, v in data.items()))
    tt.manual_seed(seed)
    model = MLP(config).to(device)
    log(f"model: {model.num_parameters():,} parameters, {config}")
    opt = make_optimizer(model, lr, weight_decay)
    sched = tt.optim.lr_scheduler.WarmupCosineLR(opt, min(warmup, steps), steps, min_lr_ratio)
    evals = []

    def on_step(step: int, loss: float) -> None:
        if (step + 1) % eval_interval == 0 and step + 1 < steps:
            evals.append((step + 1, evaluate(model, data["train"]), evaluate(model, data["val"])))
            log(f"step {step + 1:5d}: train {evals[-1][1]:.4f}, val {evals[-1][2]:.4f}")

    losses = train(model, data["train"], opt, steps, batch_size, tt.Generator(seed), sched, on_step=on_step,
                   progress=progress).losses
    result = {name: evaluate(model, split) for name, split in data.items()}
    evals.append((steps, result["train"], result["val"]))
    log(f"step {steps:5d}: train {result['train']:.4f}, val {result['val']:.4f}; test {result['test']:.4f}")
    result["samples"] = sample_names(model, samples, tt.Generator(seed))
    log("samples: " + " ".join(result["samples"]))
    if out:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, "loss.png")
        save_loss_plot(path, losses, evals)
        log(f"saved {path}")
    result.update(losses=losses, model=model)
    return result


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000,
                    help="training steps; each step updates the weights once from one random minibatch")
    ap.add_argument("--batch-size", type=int, default=1024,
                    help="examples (context, next character) per minibatch; larger batches give less noisy "
                    "gradients and, on a CPU, fewer steps' worth of Python overhead")
    ap.add_argument("--lr", type=float, default=1e-2,
                    help="peak learning rate of AdamW, reached at the end of the warmup, then lowered by a "
                    "cosine curve")
    ap.add_argument("--warmup", type=int, default=100,
                    help="steps over which the learning rate rises linearly from near 0 to --lr, so the first "
                    "updates of a fresh model stay small")
    ap.add_argument("--min-lr-ratio", type=float, default=0.05,
                    help="learning rate at the last step, as a fraction of --lr (the end of the cosine decay)")
    ap.add_argument("--weight-decay", type=float, default=0.01,
                    help="AdamW's weight decay: each step shrinks the weight matrices a little towards zero "
                    "(biases and embeddings are left alone), which discourages overfitting")
    ap.add_argument("--block-size", type=int, default=3,
                    help="how many previous characters the model sees to predict the next one")
    ap.add_argument("--n-embd", type=int, default=10,
                    help="length of the learned vector (embedding) that stands for each character")
    ap.add_argument("--n-hidden", type=int, default=200, help="number of units in each hidden layer")
    ap.add_argument("--n-layer", type=int, default=1,
                    help="number of hidden layers (Bengio et al.'s model has one)")
    ap.add_argument("--activation", choices=["tanh", "gelu"], default="tanh",
                    help="the nonlinearity applied after each hidden layer")
    ap.add_argument("--eval-interval", type=int, default=250,
                    help="every this many steps, measure and print the loss on the whole train and val splits")
    ap.add_argument("--samples", type=int, default=10, help="how many new names to sample from the trained model")
    ap.add_argument("--seed", type=int, default=0,
                    help="random seed for the initial weights, the order of the minibatches and the sampler")
    ap.add_argument("--split-seed", type=int, default=42,
                    help="random seed that shuffles the names before they are cut 80/10/10 into train/val/test; "
                    "keep it fixed so runs are compared on the same names")
    ap.add_argument("--device", default="cpu",
                    help="where the tensors live: cpu, or cuda when CuPy and an NVIDIA GPU are present")
    ap.add_argument("--out", default=os.path.join("out", "03_mlp"),
                    help="folder for loss.png (a relative path starts from the current directory; created if "
                    "missing; an empty string skips the plot)")
    args = ap.parse_args(argv)
    config = MLPConfig(block_size=args.block_size, n_embd=args.n_embd, n_hidden=args.n_hidden, n_layer=args.n_layer,
                       activation=args.activation)
    run(config, args.steps, args.batch_size, args.lr, args.warmup, args.min_lr_ratio, args.weight_decay,
        args.eval_interval, args.samples, args.seed, args.split_seed, args.device, args.out)


if __name__ == "__main__":
    main()

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
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import nn

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = os.path.join(HERE, "data", "names.txt")
CHARS = ".abcdefghijklmnopqrstuvwxyz"   # '.' (index 0) marks the start and the end of a name


@dataclass
class MLPConfig:
    block_size: int = 3         # characters of context
    vocab_size: int = 27        # '.' + a-z
    n_embd: int = 10            # embedding size per character
    n_hidden: int = 200         # width of each hidden layer
    n_layer: int = 1            # hidden layers (Bengio's model has one; chapter 07 stacks more)
    activation: str = "tanh"    # "tanh" (Bengio's) or "gelu"
    batchnorm: bool = False     # BatchNorm1d between each hidden Linear and its activation (chapter 07)


class MLP(nn.Module):
    """Embedding -> n_layer x (Linear [-> BatchNorm1d] -> tanh/GELU) -> Linear to logits."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        if config.activation not in ("tanh", "gelu"):
            raise ValueError(f"MLP: activation must be 'tanh' or 'gelu', got {config.activation!r}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        layers, fan_in = [], config.block_size * config.n_embd
        for _ in range(config.n_layer):
            layers.append(nn.Linear(fan_in, config.n_hidden, bias=not config.batchnorm))  # BN's shift replaces it
            if config.batchnorm:
                layers.append(nn.BatchNorm1d(config.n_hidden))
            layers.append(nn.Tanh() if config.activation == "tanh" else nn.GELU())
            fan_in = config.n_hidden
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(fan_in, config.vocab_size)
        # Start from (nearly) uniform predictions, loss ~ log(27): large random logits would make the
        # model confidently wrong, and the first hundreds of steps would only undo that (chapter 07).
        with tt.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, idx: tt.Tensor, targets: Optional[tt.Tensor] = None) -> Tuple[tt.Tensor, Optional[tt.Tensor]]:
        x = self.wte(idx).flatten(1)               # (B, T) -> (B, T, C) -> (B, T*C)
        logits = self.head(self.hidden(x))         # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


class TrainLog(NamedTuple):
    losses: List[float]        # training loss of every step (before its update)
    lrs: List[float]           # learning rate of every step (of the first parameter group)
    grad_norms: List[float]    # total gradient norm of every step, before clipping (empty unless measured)


class Split(NamedTuple):
    X: tt.Tensor    # (N, block_size) int64 context
    Y: tt.Tensor    # (N,) int64 next character


def load_words(path: str = NAMES) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def split_words(words: List[str], seed: int = 42, fractions=(0.8, 0.1)) -> Dict[str, List[str]]:
    """Shuffle the names with a fixed seed, then cut 80/10/10 into train/val/test (whole names, no leaks)."""
    order = np.random.default_rng(seed).permutation(len(words))
    n1 = int(fractions[0] * len(words))
    n2 = int((fractions[0] + fractions[1]) * len(words))
    shuffled = [words[i] for i in order]
    return {"train": shuffled[:n1], "val": shuffled[n1:n2], "test": shuffled[n2:]}


def build_dataset(words: List[str], block_size: int, device: str = "cpu") -> Split:
    """Every (context, next) pair of '...name.': 'emma' with block 3 gives ... -> e, ..e -> m, ..., mma -> ."""
    stoi = {c: i for i, c in enumerate(CHARS)}
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    X = np.array(X, dtype=np.int64).reshape(-1, block_size)
    return Split(tt.tensor(X, device=device), tt.tensor(np.array(Y, dtype=np.int64), device=device))


def load_splits(block_size: int = 3, split_seed: int = 42, device: str = "cpu",
                words: Optional[List[str]] = None) -> Dict[str, Split]:
    parts = split_words(load_words() if words is None else words, split_seed)
    return {name: build_dataset(ws, block_size, device) for name, ws in parts.items()}


@tt.no_grad()
def evaluate(model: MLP, split: Split, batch_size: int = 8192) -> float:
    """Mean NLL over a whole split, in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    total, n = 0.0, split.Y.shape[0]
    for i in range(0, n, batch_size):
        _, loss = model(split.X[i:i + batch_size], split.Y[i:i + batch_size])
        total += loss.item() * min(batch_size, n - i)
    model.train(was_training)
    return total / n


def make_optimizer(model: MLP, lr: float, weight_decay: float) -> tt.optim.AdamW:
    """AdamW that decays the matrices only: biases, embeddings and norm parameters keep their scale."""
    decay = [p for name, p in model.named_parameters() if p.ndim >= 2 and not name.startswith("wte")]
    no_decay = [p for name, p in model.named_parameters() if p.ndim < 2 or name.startswith("wte")]
    return tt.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def train(model: MLP, train_split: Split, optimizer, steps: int, batch_size: int, generator: tt.Generator,
          scheduler=None, clip: Optional[float] = None, measure_grad_norm: bool = False,
          on_step: Optional[Callable[[int, float], None]] = None, desc: str = "train",
          progress: bool = True) -> TrainLog:
    """Minibatch training: sample a batch, forward, backward, (clip,) update, (schedule,) repeat.

    Batches are drawn with replacement by `generator`, so two runs with the same seed see the same
    examples in the same order (chapter 07 compares optimizers this way). `clip` is a max gradient norm.
    """
    model.train()
    log = TrainLog([], [], [])
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    n = train_split.Y.shape[0]
    for step in bar:
        ix = tt.randint(0, n, (batch_size,), generator=generator)
        _, loss = model(train_split.X[ix], train_split.Y[ix])
        optimizer.zero_grad()
        loss.backward()
        if clip is not None or measure_grad_norm:   # max_norm=inf measures without clipping
            norm = nn.utils.clip_grad_norm_(model.parameters(), math.inf if clip is None else clip)
            log.grad_norms.append(norm.item())
        log.lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        log.losses.append(loss.item())
        bar.set_postfix(step=step, loss=f"{log.losses[-1]:.4f}")
        if on_step is not None:
            on_step(step, log.losses[-1])
    return log


@tt.no_grad()
def sample_names(model: MLP, n: int, generator: tt.Generator, max_len: int = 30) -> List[str]:
    """Start from '...', draw each next character from softmax(logits), stop at '.'."""
    model.eval()
    names = []
    for _ in range(n):
        context, out = [0] * model.config.block_size, []
        while len(out) < max_len:
            logits, _ = model(tt.tensor([context]))             # (1, V)
            ix = tt.multinomial(logits.softmax(1), 1, generator=generator).item()
            if ix == 0:
                break
            out.append(CHARS[ix])
            context = context[1:] + [ix]
        names.append("".join(out))
    model.train()
    return names


def smooth(values: List[float], window: int) -> np.ndarray:
    """Moving average (the minibatch loss is noisy); shorter than the input by window - 1."""
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="training steps (minibatches)")
    ap.add_argument("--batch-size", type=int, default=1024, help="examples per minibatch")
    ap.add_argument("--lr", type=float, default=1e-2, help="peak learning rate of AdamW")
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear learning-rate warmup")
    ap.add_argument("--min-lr-ratio", type=float, default=0.05, help="final learning rate as a fraction of the peak")
    ap.add_argument("--weight-decay", type=float, default=0.01, help="AdamW's decoupled weight decay (matrices only)")
    ap.add_argument("--block-size", type=int, default=3, help="characters of context")
    ap.add_argument("--n-embd", type=int, default=10, help="embedding size per character")
    ap.add_argument("--n-hidden", type=int, default=200, help="hidden layer width")
    ap.add_argument("--n-layer", type=int, default=1, help="number of hidden layers")
    ap.add_argument("--activation", choices=["tanh", "gelu"], default="tanh", help="hidden nonlinearity")
    ap.add_argument("--eval-interval", type=int, default=250, help="steps between train/val evaluations")
    ap.add_argument("--samples", type=int, default=10, help="names to sample at the end")
    ap.add_argument("--seed", type=int, default=0, help="seed for the weights, the batches and the sampler")
    ap.add_argument("--split-seed", type=int, default=42, help="seed of the train/val/test split of the names")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda when CuPy and a GPU are present")
    ap.add_argument("--out", default=os.path.join("out", "03_mlp"), help="directory for the plot")
    args = ap.parse_args(argv)
    config = MLPConfig(block_size=args.block_size, n_embd=args.n_embd, n_hidden=args.n_hidden, n_layer=args.n_layer,
                       activation=args.activation)
    run(config, args.steps, args.batch_size, args.lr, args.warmup, args.min_lr_ratio, args.weight_decay,
        args.eval_interval, args.samples, args.seed, args.split_seed, args.device, args.out)


if __name__ == "__main__":
    main()

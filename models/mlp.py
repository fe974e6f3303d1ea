"""Chapter 03's character-level MLP (Bengio et al. 2003): the model, the names dataset it reads, its training loop.

Chapter 03 (examples/03_mlp.py) trains it; chapter 07 (examples/07_optimization.py) studies its
initialisation and optimizers; bench/bench_mlp.py times its training step. Plotting and the command
line stay in the chapter scripts.

    idx (B, T) -> Embedding -> (B, T, C) -> flatten -> (B, T*C) -> Linear -> tanh -> (B, H) -> Linear -> (B, V)
"""
import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import nn

NAMES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data", "names.txt")
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

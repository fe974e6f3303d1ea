"""Chapter 01, bigram: a character-level language model of names, first by counting, then by gradient descent.

What it teaches: a language model assigns a probability to the next token given the previous ones,
and it is scored by the negative log-likelihood (NLL) of real text: the average of -log p(next | prev).
The simplest model looks at one previous character. Counting how often each pair of characters
occurs in 32,033 names (with '.' marking the start and the end of a name) and normalising each row
gives the maximum-likelihood bigram table; adding 1 to every count ("add-one smoothing") keeps pairs
never seen from getting probability zero. The same table can be *learned*: one Embedding layer maps
the previous character to 27 logits, softmax turns them into probabilities, and gradient descent on
the NLL (cross-entropy) lands on nearly the same table. That second recipe is the one that scales: in
chapter 03 the lookup table becomes a neural network.

Run:
    python examples/01_bigram.py                       # defaults: 100 full-batch steps, lr 50, momentum 0.9
    python examples/01_bigram.py --steps 50 --samples 20 --seed 3

Prints: the number of names and bigrams, the NLL over the whole dataset of the counting model and
of the trained model (and of the uniform guess, log 27 = 3.2958), then names sampled from each
model with the same seeded generator (tt.multinomial). Saves `<out>/loss.png` (training NLL
against the counting model's) and `<out>/counts.png` (the 27x27 bigram count table).
Takes about 30 seconds on a 2-core CPU (each step is a full pass over all 228,146 bigrams).
"""
import argparse
import math
import os
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.nn.functional as F
from tinytensor import nn

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = os.path.join(HERE, "data", "names.txt")
BOUNDARY = "."  # marks both the start and the end of a name


class Vocab(NamedTuple):
    stoi: Dict[str, int]  # '.' -> 0, 'a' -> 1, ..., 'z' -> 26
    itos: List[str]


class TrainResult(NamedTuple):
    model: nn.Embedding   # row i: the logits of the character after character i
    losses: List[float]   # training NLL before each step


def load_words(path: str = NAMES) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def build_vocab(words: List[str]) -> Vocab:
    itos = [BOUNDARY] + sorted(set("".join(words)))
    return Vocab({c: i for i, c in enumerate(itos)}, itos)


def bigrams(words: List[str], vocab: Vocab) -> Tuple[np.ndarray, np.ndarray]:
    """Every (previous, next) character pair of '.name.', as two int64 arrays of equal length."""
    xs, ys = [], []
    for w in words:
        ids = [0] + [vocab.stoi[c] for c in w] + [0]
        xs += ids[:-1]
        ys += ids[1:]
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def count_table(xs: tt.Tensor, ys: tt.Tensor, V: int) -> tt.Tensor:
    """(V, V) float32 counts N[i, j] = how often j follows i, built with one index_add."""
    flat = tt.zeros(V * V, device=xs.device).index_add(0, xs * V + ys, tt.ones(xs.shape[0], device=xs.device))
    return flat.reshape(V, V)


def counting_model(counts: tt.Tensor, smoothing: float = 1.0) -> tt.Tensor:
    """Row-normalised (counts + smoothing): P[i, j] = p(next = j | prev = i)."""
    smoothed = counts + smoothing
    return smoothed / smoothed.sum(1, keepdim=True)   # (V, V) / (V, 1) broadcasts over each row


def nll(probs: tt.Tensor, xs: tt.Tensor, ys: tt.Tensor) -> float:
    """Average -log P[x, y] over the pairs, in nats."""
    return -probs[xs, ys].log().mean().item()


def train_bigram(xs: tt.Tensor, ys: tt.Tensor, V: int, steps: int, lr: float, momentum: float = 0.9,
                 seed: int = 0, progress: bool = True) -> TrainResult:
    """Full-batch gradient descent on cross-entropy for one Embedding(V, V) layer of logits.

    Looking up row x of the table is the same as multiplying a one-hot vector of x with a (V, V)
    Linear weight, just without the multiplications by zero. The gradient of row x is scaled by how
    often x occurs, so rare rows crawl under plain gradient descent; momentum (chapter 07) lets them
    catch up: 100 steps with momentum 0.9 get closer to the counts than 300 without.
    """
    tt.manual_seed(seed)                                   # Embedding starts from N(0, 1) logits
    model = nn.Embedding(V, V, device=xs.device)
    opt = tt.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    bar = tqdm(range(steps), desc="bigram", disable=not progress)
    for step in bar:
        loss = F.cross_entropy(model(xs), ys)             # (N, V) logits vs (N,) next characters
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(step=step, loss=f"{losses[-1]:.4f}")
    return TrainResult(model, losses)


def learned_probs(model: nn.Embedding) -> tt.Tensor:
    with tt.no_grad():
        return model.weight.softmax(1)                    # the learned (V, V) table


def sample_names(probs: tt.Tensor, vocab: Vocab, n: int, generator: tt.Generator, max_len: int = 30) -> List[str]:
    """Walk the chain from '.', drawing each next character from row P[prev] until '.' comes back."""
    names = []
    for _ in range(n):
        ix, out = 0, []
        while len(out) < max_len:
            ix = tt.multinomial(probs[ix], 1, generator=generator).item()
            if ix == 0:
                break
            out.append(vocab.itos[ix])
        names.append("".join(out))
    return names


def save_plots(out: str, losses: List[float], count_nll: float, counts: np.ndarray, vocab: Vocab) -> List[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(losses, label="Embedding trained by gradient descent")
    ax.axhline(count_nll, color="k", ls="--", label=f"counting model ({count_nll:.4f})")
    ax.set(xlabel="step", ylabel="NLL (nats)", title="bigram: training NLL over all names")
    ax.legend()
    fig.tight_layout()
    paths = [os.path.join(out, "loss.png"), os.path.join(out, "counts.png")]
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 9))
    ax.imshow(counts, cmap="Blues")
    V = len(vocab.itos)
    for i in range(V):
        for j in range(V):
            ax.text(j, i, f"{vocab.itos[i]}{vocab.itos[j]}\n{int(counts[i, j])}", ha="center", va="center",
                    fontsize=5, color="gray")
    ax.set(title="bigram counts: row = previous character, column = next")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths


def run(steps: int = 100, lr: float = 50.0, momentum: float = 0.9, smoothing: float = 1.0, samples: int = 10,
        seed: int = 0, device: str = "cpu", out: Optional[str] = None, words: Optional[List[str]] = None,
        progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """The whole chapter; returns the numbers it prints (the tests call this)."""
    words = load_words() if words is None else words
    vocab = build_vocab(words)
    V = len(vocab.itos)
    xs_np, ys_np = bigrams(words, vocab)
    xs, ys = tt.tensor(xs_np, device=device), tt.tensor(ys_np, device=device)
    log(f"{len(words):,} names, {len(xs_np):,} bigrams, {V} characters; "
        f"uniform guess NLL log({V}) = {math.log(V):.4f}")

    counts = count_table(xs, ys, V)
    P = counting_model(counts, smoothing)
    count_nll = nll(P, xs, ys)
    log(f"counting model (add-{smoothing:g} smoothing): NLL {count_nll:.4f} nats")

    result = train_bigram(xs, ys, V, steps, lr, momentum, seed, progress)
    Q = learned_probs(result.model)
    trained_nll = nll(Q, xs, ys)
    log(f"trained Embedding({V}, {V}) after {steps} steps (lr {lr:g}, momentum {momentum:g}): "
        f"NLL {trained_nll:.4f} nats ({trained_nll - count_nll:+.4f} vs counting)")

    samples_by_model = {}
    for name, probs in [("counting", P), ("trained", Q)]:
        gen = tt.Generator(seed)                          # same stream: the two samplers differ only by table
        samples_by_model[name] = sample_names(probs, vocab, samples, gen)
        log(f"samples from the {name} model: " + " ".join(samples_by_model[name]))
    if out:
        os.makedirs(out, exist_ok=True)
        for path in save_plots(out, result.losses, count_nll, counts.numpy(), vocab):
            log(f"saved {path}")
    return dict(count_nll=count_nll, trained_nll=trained_nll, losses=result.losses, samples=samples_by_model)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--steps", type=int, default=100,
                    help="how many gradient descent steps train the learned bigram table; each step reads every "
                    "bigram of every name once (full batch)")
    ap.add_argument("--lr", type=float, default=50.0,
                    help="learning rate of SGD: how far each step moves the logits along the gradient (the loss is "
                    "an average over 228k pairs, so each logit's gradient is tiny and the step must be large)")
    ap.add_argument("--momentum", type=float, default=0.9,
                    help="SGD momentum: how much of the previous step is carried into the next one, which speeds up "
                    "training (0 gives plain gradient descent)")
    ap.add_argument("--smoothing", type=float, default=1.0,
                    help="pseudo-count added to every pair in the counting model, so pairs never seen in the names "
                    "still get a small probability (1 is add-one smoothing, 0 turns it off)")
    ap.add_argument("--samples", type=int, default=10, help="how many new names to sample from each of the two models")
    ap.add_argument("--seed", type=int, default=0,
                    help="random seed for the initial logits and the sampler; the same seed gives the same run")
    ap.add_argument("--device", default="cpu",
                    help="where the tensors live: cpu, or cuda when CuPy and an NVIDIA GPU are present")
    ap.add_argument("--out", default=os.path.join("out", "01_bigram"),
                    help="folder for loss.png and counts.png (a relative path starts from the current directory; "
                    "created if missing; an empty string skips the plots)")
    args = ap.parse_args(argv)
    run(args.steps, args.lr, args.momentum, args.smoothing, args.samples, args.seed, args.device, args.out)


if __name__ == "__main__":
    main()

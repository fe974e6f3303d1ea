"""Chapter 04, attention: from a bigram model to multi-head self-attention, on tiny Shakespeare's characters.

What it teaches: a bigram model predicts the next character from the current one only. Self-attention
lets every position gather information from the positions before it: each position emits a query
("what am I looking for"), a key ("what do I contain") and a value ("what I pass on"); the weights
softmax(q k^T / sqrt(hs)), with the future masked out, say how much of each earlier value to take.
Attention by itself does not know order, so positions are added to the token embeddings: learned
vectors (GPT-2) or fixed sinusoids (the original Transformer). Four models, each one step up:

    1. bigram                  logits = table[current character]
    2. one attention head      token + learned position embeddings, one causal head, a linear head
    3. multi-head attention    4 heads of size C/4 side by side, then an output projection
    4. multi-head, sinusoidal  the same with fixed sin/cos positions instead of learned ones

Each head is written out (q, k, v, mask, softmax) and checked once against
tt.nn.functional.scaled_dot_product_attention, which computes the same thing.

Run:
    python examples/04_attention.py                  # about 15 seconds on this 2-core CPU
    python examples/04_attention.py --steps 100      # a quick look

Prints the val loss of each model (nats per character; uniform over 65 characters is 4.17) and a
sample from the last one; saves <out>/attention.png (the attention weights of every head of the last
model on a line of validation text) and <out>/loss.png (val loss per model).
"""
import argparse
import math
import os
import time
from typing import List, Optional

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.nn as nn
import tinytensor.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Bigram(nn.Module):
    def __init__(self, vocab: int, **_):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, idx):
        return self.table(idx)  # (B, T, V)


class Head(nn.Module):
    """One causal self-attention head, written out; `weights` keeps the last attention pattern."""

    def __init__(self, n_embd: int, head_size: int):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.weights = None

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, hs) each
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))  # (B, T, T): how well q_t matches k_s
        future = tt.ones(T, T).triu(1).bool()  # (T, T): True above the diagonal, where s > t
        weights = scores.masked_fill(future, -math.inf).softmax(-1)  # (B, T, T), rows sum to 1
        self.weights = weights.detach()
        return weights @ v  # (B, T, hs): a weighted average of earlier values


class MultiHead(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // n_head) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        return self.proj(tt.cat([h(x) for h in self.heads], dim=-1))  # (B, T, C): heads side by side


def sinusoidal(block_size: int, n_embd: int) -> tt.Tensor:
    """The Transformer's fixed positions: PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(...)."""
    pos = np.arange(block_size)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, n_embd, 2) / n_embd)
    pe = np.zeros((block_size, n_embd), dtype=np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)
    return tt.from_numpy(pe)  # (T, C)


class AttentionLM(nn.Module):
    """Embeddings + positions -> attention (one head or several) -> linear head to the vocabulary."""

    def __init__(self, vocab: int, block_size: int, n_embd: int, n_head: int, positions: str):
        super().__init__()
        self.tok = nn.Embedding(vocab, n_embd)
        if positions == "learned":
            self.pos = nn.Embedding(block_size, n_embd)
        else:
            self.register_buffer("pe", sinusoidal(block_size, n_embd))
        self.attn = Head(n_embd, n_embd) if n_head == 1 else MultiHead(n_embd, n_head)
        self.lm_head = nn.Linear(n_embd, vocab)

    def forward(self, idx):
        T = idx.shape[1]
        pos = self.pos(tt.arange(T)) if hasattr(self, "pos") else self.pe[:T]  # (T, C)
        x = self.tok(idx) + pos  # (B, T, C)
        return self.lm_head(self.attn(x))  # (B, T, V)


def get_batch(data: np.ndarray, B: int, T: int, rng: np.random.Generator):
    ix = rng.integers(0, len(data) - T - 1, B)
    x = np.stack([data[i:i + T] for i in ix]).astype(np.int64)
    y = np.stack([data[i + 1:i + T + 1] for i in ix]).astype(np.int64)
    return tt.from_numpy(x), tt.from_numpy(y)


def loss_of(model, x, y):
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@tt.no_grad()
def val_loss(model, val: np.ndarray, args) -> float:
    rng = np.random.default_rng(1234)  # the same validation batches for every model
    model.eval()
    losses = [loss_of(model, *get_batch(val, 64, args.block_size, rng)).item() for _ in range(args.eval_batches)]
    model.train()
    return float(np.mean(losses))


def train(name: str, model, train_data, val_data, args) -> float:
    lr = args.bigram_lr if isinstance(model, Bigram) else args.lr  # a lookup table takes (and needs) bigger steps
    opt = tt.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    bar = tqdm(range(args.steps), desc=f"{name:26s}", dynamic_ncols=True, leave=False)
    for _ in bar:
        loss = loss_of(model, *get_batch(train_data, args.batch_size, args.block_size, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return val_loss(model, val_data, args)


def check_against_sdpa(head: Head, x: tt.Tensor) -> float:
    """The written-out head and F.scaled_dot_product_attention agree (max abs difference)."""
    with tt.no_grad():
        ours = head(x)
        theirs = F.scaled_dot_product_attention(head.query(x), head.key(x), head.value(x), is_causal=True)
    return float(np.abs(ours.numpy() - theirs.numpy()).max())


def plot_attention(model: AttentionLM, text: str, encode, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with tt.no_grad():
        model(tt.tensor([encode(text)]))
    heads = list(model.attn.heads) if isinstance(model.attn, MultiHead) else [model.attn]
    fig, axes = plt.subplots(1, len(heads), figsize=(4.2 * len(heads), 4.4))
    for i, (ax, head) in enumerate(zip(np.atleast_1d(axes), heads)):
        ax.imshow(head.weights.numpy()[0], cmap="viridis", vmin=0, vmax=1)
        labels = [c if c != " " else "_" for c in text]
        ax.set_xticks(range(len(text)), labels, fontsize=6)
        ax.set_yticks(range(len(text)), labels, fontsize=6)
        ax.set_title(f"head {i}: row = query, column = key", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "tinyshakespeare.txt"),
                    help="plain UTF-8 text to learn from; its first 90%% trains the models, the rest measures them")
    ap.add_argument("--steps", type=int, default=500, help="training steps for each of the four models")
    ap.add_argument("--batch-size", type=int, default=32,
                    help="text windows per training step, each --block-size characters long")
    ap.add_argument("--block-size", type=int, default=32,
                    help="context length T: how many characters the models see at once (and attend over)")
    ap.add_argument("--n-embd", type=int, default=64,
                    help="width C of the token and position vectors of the attention models; the heads split it")
    ap.add_argument("--n-head", type=int, default=4,
                    help="attention heads of models 3 and 4, each of size n_embd / n_head (must divide --n-embd)")
    ap.add_argument("--lr", type=float, default=3e-3,
                    help="AdamW learning rate of the three attention models: how far each step moves the weights")
    ap.add_argument("--bigram-lr", type=float, default=3e-2,
                    help="AdamW learning rate of the bigram model, larger because a lookup table takes (and needs) "
                    "bigger steps")
    ap.add_argument("--eval-batches", type=int, default=20,
                    help="how many validation batches of 64 windows are averaged to measure each model's val loss "
                    "(more is steadier but slower)")
    ap.add_argument("--device", default="cpu",
                    help="accepted for the same command line as the other chapters; this chapter always runs on "
                    "the CPU and ignores it")
    ap.add_argument("--seed", type=int, default=1337,
                    help="random seed for each model's initial weights, its training batches and the sample")
    ap.add_argument("--out", default=os.path.join("out", "04_attention"),
                    help="folder for attention.png and loss.png (a relative path starts from the current "
                    "directory; created if missing)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    V, T, C = len(chars), args.block_size, args.n_embd
    print(f"{len(text):,} characters, vocabulary {V}; train on the first 90%, validate on the rest")
    print(f"uniform guessing: {math.log(V):.3f} nats/char")

    models = [("1. bigram", lambda: Bigram(V)),
              ("2. one head, learned pos", lambda: AttentionLM(V, T, C, 1, "learned")),
              (f"3. {args.n_head} heads, learned pos", lambda: AttentionLM(V, T, C, args.n_head, "learned")),
              (f"4. {args.n_head} heads, sinusoidal", lambda: AttentionLM(V, T, C, args.n_head, "sinusoidal"))]
    results = []
    for name, make in models:
        tt.manual_seed(args.seed)
        model = make()
        start = time.perf_counter()
        loss = train(name, model, train_data, val_data, args)
        results.append((name, loss))
        print(f"{name:28s} val loss {loss:.3f}  ({model.num_parameters():,} parameters, "
              f"{time.perf_counter() - start:.0f} s)")

    head = model.attn.heads[0]
    x = tt.randn(2, T, C)
    print(f"written-out head vs F.scaled_dot_product_attention: max difference {check_against_sdpa(head, x):.1e}")
    line = "ROMEO:\nBut soft, what light"[:T]
    plot_attention(model, line, lambda s: [stoi[c] for c in s], os.path.join(args.out, "attention.png"))
    plot_losses(results, os.path.join(args.out, "loss.png"))
    print(f"saved {os.path.join(args.out, 'attention.png')} and {os.path.join(args.out, 'loss.png')}")
    print("sample from the last model:\n" + generate(model, stoi, chars, "ROMEO:", 200, T, args.seed))


def plot_losses(results, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r[0] for r in results][::-1], [r[1] for r in results][::-1], color="tab:blue")
    ax.set_xlabel("val loss (nats/char)")
    ax.set_xlim(left=min(r[1] for r in results) - 0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@tt.no_grad()
def generate(model, stoi, chars, prompt: str, n: int, T: int, seed: int) -> str:
    gen = tt.Generator(seed)
    idx = [stoi[c] for c in prompt]
    model.eval()
    for _ in range(n):
        logits = model(tt.tensor([idx[-T:]]))[0, -1]  # (V,)
        idx.append(int(tt.multinomial(logits.softmax(-1), 1, generator=gen).item()))
    return "".join(chars[i] for i in idx)


if __name__ == "__main__":
    main()

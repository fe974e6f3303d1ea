"""Chapter 11, datasets: turn a text corpus into token shards a training loop can stream, and make synthetic data.

What it teaches: a language model's data pipeline is tokenize once, train many times. The corpus is
split into documents (stories), each one tokenized and written as [BOS] + tokens into flat uint16
files ("shards") that training reads through np.memmap: no text, no tokenizer and almost no memory at
training time. The validation split is the last 10% of the stories, so no story is in both. A seeded
DataLoader cuts (B, T) windows from the shards in a shuffled order, and its position (seed, epoch,
index) goes into checkpoints so a resumed run sees exactly the batches it would have seen.
Then a synthetic corpus: stories filled in from templates (characters, places, objects, a moral), a
stand-in for model-written data that the fine-tuning chapters reuse.

Run:
    python examples/11_datasets.py                                   # the TinyStories sample
    python examples/11_datasets.py --data TinyStories-train.txt      # the full 2 GB file, if you have it

Prints: corpus statistics (documents, tokens, bytes per token, story lengths) per split and for the
synthetic set, one batch decoded, and a check that a restored loader continues with the same batch.
Saves under --out: tokenizer.bpe, shards/ (index.json + .bin files), synthetic.txt, synthetic_shards/,
lengths.png (histogram of story lengths in tokens). Takes about 10 seconds on a 2-core CPU for the
sample (training the 4096-token tokenizer is most of it); the full file streams with a progress bar
in bounded memory (one 50M-token shard buffer, about 100 MB).
"""
import argparse
import os
import time
from typing import List, Optional

import numpy as np

from tinytensor.data import DataLoader, corpus_stats, document_lengths, iter_documents, prepare_shards
from tinytensor.data.synthetic import synthetic_stories
from tinytensor.tokenizer import RegexTokenizer, Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = "<|endoftext|>"


def train_tokenizer(path: str, vocab_size: int, val_fraction: float, max_bytes: int) -> RegexTokenizer:
    """A BPE tokenizer trained on the training stories only (the first 1 - val_fraction), at most max_bytes."""
    n_docs = sum(1 for _ in iter_documents(path))
    n_train, parts, size = n_docs - int(round(n_docs * val_fraction)), [], 0
    for i, doc in enumerate(iter_documents(path)):
        if i >= n_train or size > max_bytes:
            break
        parts.append(doc)
        size += len(doc)
    tok = RegexTokenizer()
    tok.train(f"\n{EOT}\n".join(parts), vocab_size, special_tokens=[EOT])
    return tok


def report(name: str, data_dir: str, n_bytes: Optional[int] = None) -> None:
    for split in ("train", "val"):
        s = corpus_stats(data_dir, split)
        if not s["docs"]:
            continue
        print(f"  {name:12s} {split:5s}: {s['docs']:7,d} stories {s['tokens']:10,d} tokens, length mean "
              f"{s['mean_len']:.0f}, median {s['median_len']:.0f}, 5-95% {s['p5_len']:.0f}-{s['p95_len']:.0f}, "
              f"max {s['max_len']}")
    if n_bytes:
        total = sum(corpus_stats(data_dir, sp)["tokens"] for sp in ("train", "val"))
        print(f"  {name:12s} {n_bytes / total:.2f} bytes per token (BOS tokens included)")


def plot_lengths(out_png: str, series: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, max(np.percentile(v, 99.5) for v in series.values()), 60)
    for label, lengths in series.items():
        ax.hist(lengths, bins=bins, alpha=0.6, label=f"{label} ({len(lengths)} stories)")
    ax.set_xlabel("story length (tokens, BOS included)")
    ax.set_ylabel("stories")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def check_resume(data_dir: str, tok: Tokenizer, seed: int) -> None:
    loader = DataLoader(data_dir, "train", batch_size=4, block_size=32, seed=seed)
    x, _ = loader.next_batch()
    print(f"one batch of {tuple(x.shape)}; row 0 decoded:\n  {tok.decode(x[0].tolist())!r}")
    state = loader.state_dict()
    expected = loader.next_batch()[0].numpy()
    again = DataLoader(data_dir, "train", batch_size=4, block_size=32)
    again.load_state_dict(state)
    same = np.array_equal(again.next_batch()[0].numpy(), expected)
    print(f"loader state {state} restored into a new loader: next batch identical = {same}")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "tinystories_sample.txt"),
                    help="the corpus: UTF-8 text, stories separated by <|endoftext|> lines")
    ap.add_argument("--vocab-size", type=int, default=4096,
                    help="size of the BPE vocabulary to train, counting the 256 byte tokens, the learned merges and "
                    "the BOS token <|endoftext|> (ignored with --tokenizer)")
    ap.add_argument("--tokenizer", default=None,
                    help="a saved tokenizer file (.bpe) to use instead of training a new one; when given, "
                    "nothing is trained and no tokenizer.bpe is written")
    ap.add_argument("--tokenizer-bytes", type=int, default=50_000_000,
                    help="stop adding training stories to the tokenizer's training text once it holds more than "
                    "this many characters, which bounds its training time on a large corpus")
    ap.add_argument("--val-fraction", type=float, default=0.1,
                    help="fraction of the stories, the last ones, set aside as the validation split (of the corpus "
                    "and of the synthetic set); the tokenizer never trains on them")
    ap.add_argument("--shard-tokens", type=int, default=50_000_000,
                    help="tokens per shard file; writing buffers one shard in memory (2 bytes per token), so this "
                    "bounds the memory used")
    ap.add_argument("--synthetic", type=int, default=1000, help="how many template stories to generate")
    ap.add_argument("--seed", type=int, default=0,
                    help="random seed for the synthetic stories and for the order in which the loader cuts batches")
    ap.add_argument("--out", default=os.path.join("out", "11_datasets"),
                    help="folder for the tokenizer, the shards, the synthetic stories and lengths.png (a relative "
                    "path starts from the current directory; created if missing)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    if args.tokenizer:
        tok = Tokenizer.load(args.tokenizer)
    else:
        tok = train_tokenizer(args.data, args.vocab_size, args.val_fraction, args.tokenizer_bytes)
        tok.save(os.path.join(args.out, "tokenizer.bpe"))
    print(f"tokenizer {tok} ready in {time.perf_counter() - start:.1f} s")

    shards = os.path.join(args.out, "shards")
    start = time.perf_counter()
    prepare_shards(args.data, tok, shards, args.val_fraction, shard_tokens=args.shard_tokens)
    print(f"shards written to {shards} in {time.perf_counter() - start:.1f} s")

    synth_txt = os.path.join(args.out, "synthetic.txt")
    stories = synthetic_stories(args.synthetic, args.seed)
    with open(synth_txt, "w", encoding="utf-8") as f:
        f.write("".join(f"{s}\n{EOT}\n" for s in stories))
    synth = os.path.join(args.out, "synthetic_shards")
    prepare_shards(synth_txt, tok, synth, args.val_fraction, progress=False)
    print(f"synthetic: {len(stories)} template stories in {synth_txt}; the first:\n  {stories[0]}")

    print("corpus statistics:")
    report(os.path.basename(args.data), shards, os.path.getsize(args.data))
    report("synthetic", synth, os.path.getsize(synth_txt))
    series = {os.path.basename(args.data): document_lengths(shards, "train"),
              "synthetic": document_lengths(synth, "train")}
    plot_lengths(os.path.join(args.out, "lengths.png"), series)
    print(f"length histogram saved to {os.path.join(args.out, 'lengths.png')}")
    check_resume(shards, tok, args.seed)


if __name__ == "__main__":
    main()

"""Reference solutions to the exercises of lesson 11 (docs/11_datasets.md): datasets.

1. A batch from a loader state alone: rebuild, from (seed, epoch, pos) and the shard files, the batch a
   tinytensor.data.DataLoader in that state hands out next, without the DataLoader.
2. Document masks: which story each token of a (B, T) window belongs to, and the attention mask that lets
   a token see only earlier tokens of its own story.
3. A leakage check: the fraction of the validation split's n-grams (inside documents) that also occur in
   the training split.
NumPy plus tinytensor.data.load_index/open_shard for reading the shards.
"""
from __future__ import annotations

from typing import Iterator, Set, Tuple

import numpy as np

from tinytensor.data import load_index, open_shard


# ---- 1. a batch from a state ------------------------------------------------------------------------

def epoch_windows(shard_lengths, block_size: int, seed: int, epoch: int) -> np.ndarray:
    """(n, 2) rows (shard, start) of one epoch's windows in that epoch's order (shuffle=True, align="any").

    Windows are block_size + 1 tokens long, cut at stride block_size from a random first offset; the
    generator seeded with [seed, epoch] draws the offset first, then the order."""
    rng = np.random.default_rng([seed, epoch])
    offset = int(rng.integers(block_size))
    rows = [(i, s) for i, n in enumerate(shard_lengths) for s in range(offset, n - block_size, block_size)]
    windows = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return windows[rng.permutation(len(windows))]


def batch_from_state(data_dir: str, split: str, batch_size: int, block_size: int,
                     state: dict) -> Tuple[np.ndarray, np.ndarray]:
    """(x, y) int64 (B, T): what DataLoader(data_dir, split, B, T).load_state_dict(state) gives next."""
    index = load_index(data_dir)
    shards = [open_shard(data_dir, s)[0] for s in index["splits"][split]["shards"]]
    seed, epoch, pos = int(state["seed"]), int(state["epoch"]), int(state["pos"])
    windows = epoch_windows([len(t) for t in shards], block_size, seed, epoch)
    if pos + batch_size > len(windows):   # the rest of this epoch is not a full batch: next epoch
        epoch, pos = epoch + 1, 0
        windows = epoch_windows([len(t) for t in shards], block_size, seed, epoch)
    chunk = np.stack([shards[i][s:s + block_size + 1] for i, s in windows[pos:pos + batch_size]]).astype(np.int64)
    return chunk[:, :-1], chunk[:, 1:]


# ---- 2. document masks ------------------------------------------------------------------------------

def document_ids(x: np.ndarray, bos: int) -> np.ndarray:
    """(B, T) int64: for each token, how many BOS tokens came at or before it in its row.

    Tokens before the row's first BOS (the tail of a story cut by the window) get 0."""
    return np.cumsum(np.asarray(x) == bos, axis=-1)


def document_attention_mask(x: np.ndarray, bos: int) -> np.ndarray:
    """(B, T, T) bool: query i may attend to key j when j <= i and both are in the same document."""
    ids = document_ids(x, bos)
    T = ids.shape[-1]
    causal = np.tril(np.ones((T, T), dtype=bool))
    same = ids[:, :, None] == ids[:, None, :]   # (B, T, T)
    return same & causal


# ---- 3. train/val leakage ---------------------------------------------------------------------------

def iter_split_documents(data_dir: str, split: str) -> Iterator[np.ndarray]:
    """Each document's tokens (BOS included) of a split, in file order."""
    index = load_index(data_dir)
    for shard in index["splits"][split]["shards"]:
        tokens, starts = open_shard(data_dir, shard)
        ends = np.append(starts[1:], len(tokens))
        for s, e in zip(starts, ends):
            yield np.asarray(tokens[s:e])


def document_ngrams(doc: np.ndarray, n: int) -> np.ndarray:
    """(len(doc) - n + 1, n) windows of a document, or none when it is shorter than n."""
    if len(doc) < n:
        return np.zeros((0, n), dtype=doc.dtype)
    return np.lib.stride_tricks.sliding_window_view(doc, n)


def val_ngram_leakage(data_dir: str, n: int) -> float:
    """Fraction of the validation n-grams (counted with repeats, inside documents) also found in train."""
    seen: Set[bytes] = set()
    for doc in iter_split_documents(data_dir, "train"):
        grams = np.ascontiguousarray(document_ngrams(doc, n), dtype="<u2")
        seen.update(g.tobytes() for g in grams)
    hits = total = 0
    for doc in iter_split_documents(data_dir, "val"):
        grams = np.ascontiguousarray(document_ngrams(doc, n), dtype="<u2")
        total += len(grams)
        hits += sum(g.tobytes() in seen for g in grams)
    return hits / total if total else 0.0

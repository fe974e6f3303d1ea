"""DataLoader: (B, T) batches of next-token pairs from prepared token shards, seeded and exactly resumable.

    train = DataLoader("out/data", "train", batch_size=32, block_size=128, seed=0)
    x, y = train.next_batch()                    # (B, T) int64 each; y is x shifted by one token
    state = train.state_dict()                   # {"seed", "epoch", "pos"}: JSON, goes in the checkpoint
    train.load_state_dict(state)                 # the next batch is the one that would have come

Named after llm.c's DataLoader; it is not torch.utils.data.DataLoader (no Dataset, no workers).
An epoch is every window of block_size + 1 tokens cut from the shards at stride block_size, starting
at a random offset (so window edges move between epochs), in an order shuffled by (seed, epoch).
align="doc" starts every window at a document's BOS token instead, so each example is the opening of
a story (good for chapter 14's fine-tuning; the default "any" also trains on story endings).
Left out: multi-process loading, distributed sharding of the windows (chapter 10).
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from ..creation import from_numpy
from .shards import load_index, open_shard


class DataLoader:
    def __init__(self, data_dir: str, split: str, batch_size: int, block_size: int, seed: int = 0,
                 shuffle: bool = True, align: str = "any"):
        if align not in ("any", "doc"):
            raise ValueError(f"DataLoader: align must be 'any' or 'doc', got {align!r}")
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"DataLoader: batch_size and block_size must be positive, got {batch_size}, {block_size}")
        index = load_index(data_dir)
        if split not in index["splits"]:
            raise ValueError(f"DataLoader: {data_dir} has no split {split!r} (it has {sorted(index['splits'])})")
        self.batch_size, self.block_size, self.seed = batch_size, block_size, seed
        self.shuffle, self.align, self.bos = shuffle, align, index["bos"]
        self.shards = [open_shard(data_dir, s, index["bos"]) for s in index["splits"][split]["shards"]]
        self.epoch, self.pos = 0, 0
        self._windows = self._make_windows(0)
        if len(self._windows) < 1:
            raise ValueError(f"DataLoader: split {split!r} of {data_dir} has no window of {block_size + 1} tokens")

    def _make_windows(self, epoch: int) -> np.ndarray:
        """(n, 2) int64 rows (shard, start) of this epoch's windows, in this epoch's order."""
        rng = np.random.default_rng([self.seed, epoch])
        span = self.block_size + 1
        offset = int(rng.integers(self.block_size)) if self.shuffle and self.align == "any" else 0
        rows = []
        for i, (tokens, starts) in enumerate(self.shards):
            if self.align == "doc":
                s = starts[starts + span <= len(tokens)]
            else:
                s = np.arange(offset, len(tokens) - span + 1, self.block_size, dtype=np.int64)
            rows.append(np.stack([np.full(len(s), i, dtype=np.int64), s.astype(np.int64)], 1))
        windows = np.concatenate(rows) if rows else np.zeros((0, 2), dtype=np.int64)
        return windows[rng.permutation(len(windows))] if self.shuffle else windows

    def __len__(self) -> int:
        """Full batches in an epoch."""
        return len(self._windows) // self.batch_size

    def _gather(self, windows: np.ndarray) -> Tuple["object", "object"]:
        span = self.block_size + 1
        chunk = np.stack([self.shards[i][0][s:s + span] for i, s in windows]).astype(np.int64)  # (B, T + 1)
        return from_numpy(np.ascontiguousarray(chunk[:, :-1])), from_numpy(np.ascontiguousarray(chunk[:, 1:]))

    def next_batch(self):
        """The next (x, y) of the endless stream; an epoch's last partial batch is skipped."""
        if self.pos + self.batch_size > len(self._windows):
            self.epoch, self.pos = self.epoch + 1, 0
            self._windows = self._make_windows(self.epoch)
        batch = self._windows[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self._gather(batch)

    def epoch_batches(self) -> Iterator:
        """Every window of the current epoch's order once, in batches (the last may be smaller); for evaluation.

        Does not move the stream's position.
        """
        for i in range(0, len(self._windows), self.batch_size):
            yield self._gather(self._windows[i:i + self.batch_size])

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the loader that gave `state` stood (same data, batch and block size)."""
        try:
            seed, epoch, pos = int(state["seed"]), int(state["epoch"]), int(state["pos"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"DataLoader.load_state_dict: expected keys seed, epoch, pos; got {state!r}") from None
        self.seed, self.epoch, self.pos = seed, epoch, pos
        self._windows = self._make_windows(epoch)

"""KVCache: the keys and values a decoder has already computed, kept so that each new token costs one position.

Without a cache, generating token t+1 reruns attention over all t tokens before it, although their keys
and values did not change (a causal model never lets an old position see a new one). The cache keeps
them: one preallocated buffer per layer for K and one for V, (B, n_kv_heads, max_len, head_dim), filled
in place as tokens arrive (no concatenation per token), so a step computes only the new tokens' q, k, v
and attends from them to everything stored so far.

    cache = model.make_cache(batch_size, max_len=None, pad=None)   # GPT and Llama (models/)
    logits, _ = model(prompt, cache=cache)                        # prefill: (B, T, V), cache.length = T
    logits, _ = model(next_tokens, cache=cache)                   # one (or a few) tokens per step

`pad` (B ints) is left padding: row b's first pad[b] cache positions are padding, never attended to,
and its real tokens count their positions from 0 (position = cache index - pad[b]), so a padded row
computes what the row alone would. `crop(n)` forgets positions >= n (speculative decoding's rollback),
`reorder(rows)` keeps or permutes rows (beam search), `nbytes` is the memory the buffers take.
A model calls `positions(T)`, then `update(layer, k, v)` in each layer, then `advance(T)` once.
Left out: paged or quantized caches, sliding-window eviction (the caller recomputes instead).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..autograd import is_grad_enabled
from ..creation import cat, from_numpy, zeros
from ..dtype import float32
from ..tensor import Tensor


def _pad_array(pad, batch_size: int, max_len: int) -> np.ndarray:
    """pad as a (B,) int64 array, checked: None means no padding."""
    if pad is None:
        return np.zeros(batch_size, dtype=np.int64)
    arr = np.asarray(pad.numpy() if isinstance(pad, Tensor) else pad)
    if arr.shape != (batch_size,) or arr.dtype.kind not in "iu":
        raise ValueError(f"KVCache: pad must be {batch_size} integers (one per row), got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= max_len):
        raise ValueError(f"KVCache: pad values must be in [0, max_len {max_len}), got {arr.tolist()}")
    return arr.astype(np.int64)


class KVCache:
    """Per-layer K and V buffers (B, n_kv_heads, max_len, head_dim) and how many positions are filled."""

    def __init__(self, n_layer: int, batch_size: int, n_kv_heads: int, max_len: int, head_dim: int,
                 dtype=float32, device="cpu", pad: Optional[Sequence[int]] = None):
        if min(n_layer, batch_size, n_kv_heads, max_len, head_dim) < 1:
            raise ValueError(f"KVCache: n_layer {n_layer}, batch_size {batch_size}, n_kv_heads {n_kv_heads}, "
                             f"max_len {max_len} and head_dim {head_dim} must all be positive")
        shape = (batch_size, n_kv_heads, max_len, head_dim)
        self.k = [zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len, self.length = max_len, 0
        self._set_pad(_pad_array(pad, batch_size, max_len))

    def _set_pad(self, pad: np.ndarray) -> None:
        self.pad = pad  # (B,) int64 NumPy: padding positions at the start of each row
        self.padded = bool(pad.any())
        self._start = from_numpy(pad.copy()).to(self.k[0].device) if self.padded else None

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def start(self) -> Optional[Tensor]:
        """(B,) int64 on the cache's device: the first cache index each row attends to; None without padding."""
        return self._start

    @property
    def nbytes(self) -> int:
        """Bytes held by the K and V buffers of every layer."""
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))

    def check_room(self, T: int, who: str) -> None:
        """Raise ValueError if T more positions do not fit (naming both lengths)."""
        if self.length + T > self.max_len:
            raise ValueError(f"{who}: {self.length} cached + {T} new positions = {self.length + T} is longer than "
                             f"the cache's max_len {self.max_len}")

    def positions(self, T: int) -> Tensor:
        """Absolute positions of the next T tokens: (T,) without padding, else (B, T) (padding at 0)."""
        device = self.k[0].device
        idx = np.arange(self.length, self.length + T, dtype=np.int64)
        if not self.padded:
            return from_numpy(idx).to(device)
        return from_numpy(np.maximum(idx[None, :] - self.pad[:, None], 0)).to(device)  # (B, T)

    def update(self, layer: int, k: Tensor, v: Tensor):
        """Write k, v (B, n_kv, T, hs) at positions length..length+T-1 of `layer`; return all of them so far.

        The result is a view of the buffer, (B, n_kv, length + T, hs). When gradients are recorded and
        k or v needs one, the new part keeps its graph (the cached part is a constant)."""
        L, T = self.length, k.shape[2]
        self.check_room(T, "KVCache.update")
        kb, vb = self.k[layer], self.v[layer]
        kb.narrow(2, L, T)._write(k.detach())  # narrow: the same view as kb[:, :, L:L + T], built 4x faster
        vb.narrow(2, L, T)._write(v.detach())
        if is_grad_enabled() and (k.requires_grad or v.requires_grad):
            return cat([kb.narrow(2, 0, L), k], dim=2), cat([vb.narrow(2, 0, L), v], dim=2)
        return kb.narrow(2, 0, L + T), vb.narrow(2, 0, L + T)

    def advance(self, T: int) -> None:
        """Count T more positions as filled (after every layer has written them)."""
        self.check_room(T, "KVCache.advance")
        self.length += T

    def crop(self, length: int) -> None:
        """Forget every position >= length (the buffers are overwritten by later updates)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"KVCache.crop: length {length} is not in [0, {self.length}]")
        self.length = length

    def reorder(self, rows) -> None:
        """Keep rows `rows` (ints, repeats allowed) in that order: the new batch has len(rows) rows."""
        idx = np.asarray(rows.numpy() if isinstance(rows, Tensor) else rows, dtype=np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < -self.batch_size or idx.max() >= self.batch_size:
            raise IndexError(f"KVCache.reorder: rows {idx.tolist()} out of range for batch size {self.batch_size}")
        idx = idx % self.batch_size
        index = from_numpy(idx).to(self.k[0].device)
        L = self.length
        for buffers in (self.k, self.v):
            for i, old in enumerate(buffers):
                new = zeros((idx.size,) + tuple(old.shape[1:]), dtype=old.dtype, device=old.device)
                if L:
                    new[:, :, :L]._write(old[:, :, :L].index_select(0, index))  # only the filled part
                buffers[i] = new
        self._set_pad(self.pad[idx])

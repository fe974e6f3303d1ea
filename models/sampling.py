"""Text generation for the models: temperature, top-k and top-p (nucleus) sampling, and the generate loop.

The logits of the last position arrive as a (B, V) tensor; filtering happens in NumPy (a few
thousand numbers per row) and the draw uses tt.multinomial with a tinytensor Generator, so a seed
gives the same tokens every run. Left out: repetition penalties, beam search.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

import tinytensor as tt


def filter_logits(logits: np.ndarray, top_k: Optional[int] = None, top_p: Optional[float] = None) -> np.ndarray:
    """Logits (B, V) with every token outside the top k / the top-p nucleus set to -inf."""
    logits = logits.astype(np.float64, copy=True)
    V = logits.shape[-1]
    if top_k is not None and 0 < top_k < V:
        kth = np.partition(logits, V - top_k, axis=-1)[:, V - top_k:V - top_k + 1]  # (B, 1): the k-th largest
        logits[logits < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")  # (B, V), most likely first
        srt = np.take_along_axis(logits, order, axis=-1)
        probs = np.exp(srt - srt[:, :1])
        probs /= probs.sum(-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs  # probability of the tokens ranked above each one
        srt[before >= top_p] = -np.inf  # keeps the smallest prefix reaching top_p, and always the top token
        out = np.empty_like(logits)
        np.put_along_axis(out, order, srt, axis=-1)  # back to vocabulary order
        logits = out
    return logits


def sample_next(logits: tt.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                top_p: Optional[float] = None, generator: Optional[tt.Generator] = None) -> tt.Tensor:
    """One token per row of logits (B, V): (B, 1) int64. temperature 0 is greedy (argmax)."""
    if temperature < 0:
        raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"sample: top_p must be in (0, 1], got {top_p}")
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    x = filter_logits(logits.detach().float().numpy() / temperature, top_k, top_p)
    probs = np.exp(x - x.max(-1, keepdims=True))  # (B, V), zero outside the kept set
    return tt.multinomial(tt.from_numpy(probs), 1, generator=generator)  # (B, 1)


@tt.no_grad()
def generate(model, idx: tt.Tensor, max_new_tokens: int, block_size: int, temperature: float = 1.0,
             top_k: Optional[int] = None, top_p: Optional[float] = None, seed: Optional[int] = None,
             generator: Optional[tt.Generator] = None, eos_token: Optional[int] = None) -> tt.Tensor:
    """Extend idx (B, T) by up to max_new_tokens tokens, running model(idx_cond) -> (logits, _) for each.

    No kv-cache (chapter 12): every step reruns the last block_size tokens. A seed (or a generator) makes
    the samples reproducible; without either, tinytensor's default generator is used. Generation stops
    early once every row has produced eos_token. The model is put in eval mode and restored after.
    """
    was_training = model.training
    model.eval()
    gen = generator if generator is not None else (tt.Generator(seed) if seed is not None else None)
    done = np.zeros(idx.shape[0], dtype=bool)
    try:
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.shape[1] <= block_size else idx[:, -block_size:]
            logits, _ = model(idx_cond)  # (B, T or 1, V)
            nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, gen)  # (B, 1)
            idx = tt.cat([idx, nxt], dim=1)
            if eos_token is not None:
                done |= nxt.numpy()[:, 0] == eos_token
                if done.all():
                    break
    finally:
        model.train(was_training)
    return idx

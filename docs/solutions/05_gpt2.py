"""Reference solutions to the exercises of lesson 05, GPT-2 and the storyteller (docs/05_gpt2.md).

1. The parameter count of a GPT-2 from its configuration, in closed form.
2. The next-token distribution after temperature, top-k and top-p, in NumPy.
3. How much a GPT's prediction at position t moves when tokens after t change (it must not).

tests/test_lesson_05_gpt2.py checks them against the model's own count, a plain-Python sampler and a
deliberately non-causal model.
"""
from typing import Optional

import numpy as np

import tinytensor as tt


# ---- exercise 1: counting parameters ------------------------------------------------------------

def gpt_num_parameters(vocab_size: int, block_size: int, n_layer: int, n_embd: int, bias: bool) -> int:
    """Trainable numbers in models.gpt2.GPT, counting the tied token embedding / lm_head once."""
    C = n_embd
    embeddings = vocab_size * C + block_size * C  # wte (also the lm_head) and wpe
    attention = C * 3 * C + C * C  # c_attn (q, k, v together) and c_proj
    mlp = C * 4 * C + 4 * C * C  # c_fc and c_proj
    norms = 2 * C  # the gains of ln_1 and ln_2
    if bias:
        attention += 3 * C + C
        mlp += 4 * C + C
        norms += 2 * C
    final_norm = 2 * C if bias else C  # ln_f
    return embeddings + n_layer * (attention + mlp + norms) + final_norm


# ---- exercise 2: temperature, top-k, top-p ------------------------------------------------------

def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: Optional[int] = None,
                     top_p: Optional[float] = None) -> np.ndarray:
    """Probabilities (V,) the sampler draws from, given one row of logits (V,).

    Divide by the temperature, keep the top_k largest logits, then keep the smallest set of the most
    likely tokens whose probability reaches top_p (always at least the most likely one), and renormalise.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    keep = np.ones(z.shape, dtype=bool)
    if top_k is not None and 0 < top_k < z.size:
        kth_largest = np.sort(z)[-top_k]
        keep &= z >= kth_largest  # ties with the k-th largest are kept too
    if top_p is not None and top_p < 1.0:
        p = _softmax(np.where(keep, z, -np.inf))
        order = np.argsort(-p, kind="stable")
        mass_before = np.cumsum(p[order]) - p[order]  # probability of the tokens ranked above each one
        nucleus = np.zeros(z.shape, dtype=bool)
        nucleus[order[mass_before < top_p]] = True
        keep &= nucleus
    return _softmax(np.where(keep, z, -np.inf))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# ---- exercise 3: no peeking at the future -------------------------------------------------------

@tt.no_grad()
def future_influence(model, idx: tt.Tensor, t: int, seed: int = 0) -> float:
    """The largest change of the logits at positions 0..t when every token after t is replaced at random.

    GPT.forward returns all T positions' logits only when it is given targets, so idx itself is passed
    as (unused) targets. For a causal model the answer is 0 (up to rounding).
    """
    model.eval()
    B, T = idx.shape
    vocab_size = model.config.vocab_size
    other = idx.numpy().copy()
    other[:, t + 1:] = np.random.default_rng(seed).integers(0, vocab_size, (B, T - t - 1))
    other = tt.tensor(other, dtype=tt.int64)
    before, _ = model(idx, idx)  # (B, T, V)
    after, _ = model(other, other)
    return float(np.abs(before.numpy()[:, :t + 1] - after.numpy()[:, :t + 1]).max())

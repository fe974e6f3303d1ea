"""Choosing the next token from a row of logits: penalties, temperature, top-k, top-p, min-p, seeds, log-probs.

One request (one row of a batch) has its own SamplingParams and its own TokenSampler, so a server can mix
requests with different settings in one batch (chapter 16). The order of the steps is Hugging Face's and
vLLM's:

    raw logits -> repetition penalty (HF: for every token already in prompt or output, divide a positive
               logit by the penalty, multiply a negative one)
               -> frequency / presence penalties (OpenAI: logit - count * frequency - (count > 0) * presence,
               where count is how often the token was generated so far; the prompt does not count)
               -> / temperature -> top-k -> top-p -> min-p -> draw (temperature 0: the argmax, no draw).

Log-probabilities are the model's own: log_softmax of the raw logits, before penalties, temperature and
filtering (what OpenAI's API reports, and vLLM's default). They say how likely the model found a token, are
never -inf for a chosen token and do not change with the sampling settings.

The filtering works in NumPy on float64 (a few thousand numbers per row) and the draw uses tt.multinomial
with a tinytensor Generator, so a seed gives the same tokens every run. The decoding loops that use this
(batched generation, beam search, speculative decoding) live in models/generate.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

import tinytensor as tt
from tinytensor.random import seed_rng


@dataclass
class SamplingParams:
    """How one request picks its tokens. The defaults sample from the model's distribution unchanged."""
    temperature: float = 1.0          # 0: greedy (argmax); < 1 sharper, > 1 flatter
    top_k: Optional[int] = None       # keep the k most likely tokens (None or 0: all)
    top_p: Optional[float] = None     # keep the smallest set whose probability reaches p (None or 1: all)
    min_p: Optional[float] = None     # keep tokens at least min_p times as likely as the most likely one
    repetition_penalty: float = 1.0   # HF's: > 1 discourages tokens already in the prompt or the output
    frequency_penalty: float = 0.0    # OpenAI's: subtracted once per earlier occurrence in the output
    presence_penalty: float = 0.0     # OpenAI's: subtracted once if the token occurred in the output
    seed: Optional[int] = None        # this request's own generator; None: tinytensor's default generator
    logprobs: Optional[int] = None    # None: no log-probs; n >= 0: the chosen token's and the top-n alternatives'

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"SamplingParams: temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"SamplingParams: top_k must be >= 0, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingParams: top_p must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"SamplingParams: min_p must be in [0, 1], got {self.min_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"SamplingParams: repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.logprobs is not None and self.logprobs < 0:
            raise ValueError(f"SamplingParams: logprobs must be >= 0, got {self.logprobs}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


# ---- the steps, each on NumPy arrays -----------------------------------------------------------------------

def apply_repetition_penalty(logits: np.ndarray, seen: np.ndarray, penalty: float) -> np.ndarray:
    """HF's repetition penalty on the tokens where `seen` (bool, same shape) is True."""
    if penalty == 1.0:
        return logits
    hit = np.where(logits > 0, logits / penalty, logits * penalty)
    return np.where(seen, hit, logits)


def apply_frequency_presence(logits: np.ndarray, counts: np.ndarray, frequency: float,
                             presence: float) -> np.ndarray:
    """OpenAI's penalties: logit - count * frequency - (count > 0) * presence."""
    if frequency == 0 and presence == 0:
        return logits
    return logits - counts * frequency - (counts > 0) * presence


def filter_logits(logits: np.ndarray, top_k: Optional[int] = None, top_p: Optional[float] = None,
                  min_p: Optional[float] = None) -> np.ndarray:
    """Logits (B, V) with every token outside the top k / the top-p nucleus / the min-p set set to -inf."""
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
    if min_p is not None and min_p > 0:
        # p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p): no softmax needed
        logits[logits < logits.max(-1, keepdims=True) + np.log(min_p)] = -np.inf
    return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis in float64 (-inf logits give -inf)."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def top_logprobs(logprobs: np.ndarray, n: int) -> List[Tuple[int, float]]:
    """The n most likely (token, log-prob) pairs of one row, most likely first (ties: lower id first)."""
    if n <= 0:
        return []
    order = np.argsort(-logprobs, kind="stable")[:n]
    return [(int(i), float(logprobs[i])) for i in order]


# ---- one request's state ------------------------------------------------------------------------------------

@dataclass
class Choice:
    """The token picked at one step, with its log-prob and the top alternatives when asked for."""
    token: int
    logprob: Optional[float] = None
    top: Optional[List[Tuple[int, float]]] = None


class TokenSampler:
    """One request's sampler: its params, its generator, and the counts the penalties need.

    `generator` overrides params.seed (a generator shared by several rows draws for them in turn, as the
    models' generate() always did); with neither, tinytensor's default generator is used.
    """

    def __init__(self, params: SamplingParams, prompt: Sequence[int], vocab_size: int,
                 generator: Optional[tt.Generator] = None):
        self.params = params
        self.generator = generator if generator is not None else (
            tt.Generator(params.seed) if params.seed is not None else None)
        self.seen = np.zeros(vocab_size, dtype=bool)  # in the prompt or the output (repetition penalty)
        self.seen[np.asarray(prompt, dtype=np.int64)] = True
        self.counts = np.zeros(vocab_size, dtype=np.int64)  # occurrences in the output (OpenAI's penalties)

    def observe(self, token: int) -> None:
        """Record a token of the output (call once per emitted token)."""
        self.seen[token] = True
        self.counts[token] += 1

    def processed(self, logits: np.ndarray, extra: Sequence[int] = ()) -> np.ndarray:
        """Penalties, temperature and filters on one row (V,); `extra`: tokens to count as if already observed."""
        p, seen, counts = self.params, self.seen, self.counts
        if len(extra):
            seen, counts = seen.copy(), counts.copy()
            seen[list(extra)] = True
            np.add.at(counts, list(extra), 1)
        x = np.asarray(logits, dtype=np.float64)
        x = apply_repetition_penalty(x, seen, p.repetition_penalty)
        x = apply_frequency_presence(x, counts, p.frequency_penalty, p.presence_penalty)
        if p.greedy:
            return x
        return filter_logits(x[None] / p.temperature, p.top_k, p.top_p, p.min_p)[0]

    def probs(self, logits: np.ndarray, extra: Sequence[int] = ()) -> np.ndarray:
        """The distribution the next token is drawn from (V,), float64, summing to 1 (greedy: one-hot)."""
        x = self.processed(logits, extra)
        if self.params.greedy:
            out = np.zeros_like(x)
            out[int(np.argmax(x))] = 1.0
            return out
        e = np.exp(x - x.max())
        return e / e.sum()

    def draw(self, probs: np.ndarray) -> int:
        """One token from unnormalised probs (V,), with this request's generator."""
        return int(tt.multinomial(tt.from_numpy(probs[None]), 1, generator=self.generator).item())

    def uniform(self) -> float:
        """One uniform number in [0, 1) from this request's generator (speculative decoding's coin)."""
        return float(seed_rng(self.generator).random())

    def skip(self) -> None:
        """Use up one draw without choosing: keeps a generator shared with other rows on its old stream."""
        if not self.params.greedy:
            self.uniform()

    def choose(self, logits: np.ndarray) -> Choice:
        """Pick the next token from one row of raw logits (V,) and record it."""
        x = self.processed(logits)
        if self.params.greedy:
            token = int(np.argmax(x))
        else:
            token = self.draw(np.exp(x - x.max()))
        self.observe(token)
        if self.params.logprobs is None:
            return Choice(token)
        lp = log_softmax(logits)
        return Choice(token, float(lp[token]), top_logprobs(lp, self.params.logprobs))


# ---- the batched helper chapter 05 uses ----------------------------------------------------------------------

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

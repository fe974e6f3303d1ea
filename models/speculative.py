"""Speculative decoding (Leviathan et al. 2023, Chen et al. 2023): a small draft model guesses, the target checks.

    out = speculative_generate(target, draft, prompt, 100, SamplingParams(temperature=0.8, seed=0), num_draft=4)
    out.tokens, out.acceptance_rate, out.target_calls

Each round the draft model proposes up to num_draft tokens d_1..d_g, one cheap step each, drawing d_j from
its distribution q_j. The target then reads all of them in one forward pass (its kv-cache takes g + 1 new
positions) and so has its own distribution p_j at every proposed position, plus p_{g+1} after the last.
Token d_j is accepted with probability min(1, p_j(d_j) / q_j(d_j)); at the first rejection the token is drawn
instead from the residual max(0, p_j - q_j) (normalised) and the round ends; if all g are accepted, one more
token is drawn from p_{g+1}. Every emitted token then follows the target's distribution exactly: the chance
of emitting x at a position is q(x) min(1, p(x)/q(x)) + P(reject) r(x) = min(q(x), p(x)) + max(0, p(x) - q(x))
= p(x). With temperature 0 both distributions are one-hot: d_j is kept while it equals the target's argmax,
so the output is the target's greedy output token for token. The caches roll back (crop) past a rejection.

"Distribution" means after the request's SamplingParams: the same penalties, temperature, top-k/top-p/min-p
are applied to both models' logits with the same history, so the output follows the target's processed
distribution. One prompt at a time. The window is the smaller block_size of the two models, with
generate()'s window="stop" rule. Left out: batches of prompts, log-probs, a sliding window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

import tinytensor as tt
from models.generate import check_prompt, eval_mode, model_device
from models.sampling import SamplingParams, TokenSampler


@dataclass
class SpeculativeResult:
    """The new tokens and how well the draft guessed."""
    tokens: List[int] = field(default_factory=list)  # the new tokens (an eos is not included)
    finish_reason: str = "length"                    # "stop" (eos) or "length" (max_new_tokens or the window)
    proposed: int = 0                                # draft tokens proposed
    accepted: int = 0                                # of them, accepted by the target
    target_calls: int = 0                            # forward passes of the target (plain decoding: one per token)
    draft_calls: int = 0                             # forward passes of the draft

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


def forward_rows(model, cache, tokens: List[int], last: int) -> np.ndarray:
    """Feed one row of tokens through model(idx, cache=cache): the logits of the last `last` positions (last, V)."""
    idx = tt.tensor([tokens], dtype=tt.int64, device=model_device(model))
    logits, _ = model(idx, cache=cache)  # (1, T, V)
    return logits[0, -last:, :].float().numpy().astype(np.float64)


def _pick(sampler: TokenSampler, probs: np.ndarray) -> int:
    return int(np.argmax(probs)) if sampler.params.greedy else sampler.draw(probs)


def _propose(draft, cache, seq: List[int], g: int, sampler: TokenSampler, out: SpeculativeResult):
    """g draft tokens and the distributions q_j they were drawn from (the draft cache catches up on seq first)."""
    drafts: List[int] = []
    qs: List[np.ndarray] = []
    if g == 0:
        return drafts, qs
    logits = forward_rows(draft, cache, seq[cache.length:], 1)[0]
    for j in range(g):
        q = sampler.probs(logits, extra=drafts)
        drafts.append(_pick(sampler, q))
        qs.append(q)
        if j < g - 1:
            logits = forward_rows(draft, cache, drafts[-1:], 1)[0]
    out.draft_calls += g
    return drafts, qs


def _verify(target, cache, seq: List[int], drafts: List[int], sampler: TokenSampler) -> List[np.ndarray]:
    """The target's distributions p_1..p_{g+1} at the g proposed positions and after the last, in one pass."""
    logits = forward_rows(target, cache, seq[cache.length:] + drafts, len(drafts) + 1)
    return [sampler.probs(logits[j], extra=drafts[:j]) for j in range(len(drafts) + 1)]


def _accept(ps: List[np.ndarray], qs: List[np.ndarray], drafts: List[int],
            sampler: TokenSampler) -> Tuple[int, int]:
    """(number of drafts accepted, the token that follows them): the rejection-sampling rule."""
    for j, (d, p, q) in enumerate(zip(drafts, ps, qs)):
        if p[d] >= q[d]:
            continue  # accepted with probability 1 (no coin needed)
        if p[d] > 0 and sampler.uniform() < p[d] / q[d]:
            continue
        residual = np.maximum(p - q, 0.0)
        return j, _pick(sampler, residual / residual.sum())
    return len(drafts), _pick(sampler, ps[-1])


def _commit(out: SpeculativeResult, seq: List[int], new: List[int], sampler: TokenSampler, eos: set,
            max_new_tokens: int) -> None:
    """Append the round's tokens one by one, stopping at eos or max_new_tokens."""
    for tok in new:
        if tok in eos:
            out.finish_reason = "stop"
            return
        seq.append(tok)
        out.tokens.append(tok)
        sampler.observe(tok)
        if len(out.tokens) == max_new_tokens:
            return


def speculative_generate(target, draft, prompt: Sequence[int], max_new_tokens: int,
                         sampling: Optional[SamplingParams] = None, num_draft: int = 4,
                         eos_token: Union[None, int, Sequence[int]] = None,
                         generator: Optional[tt.Generator] = None, truncate: bool = False) -> SpeculativeResult:
    """Up to max_new_tokens tokens for one prompt from `target`, with `draft` proposing num_draft per round."""
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(f"speculative_generate: vocabularies differ (target {target.config.vocab_size}, "
                         f"draft {draft.config.vocab_size})")
    if num_draft < 1:
        raise ValueError(f"speculative_generate: num_draft must be >= 1, got {num_draft}")
    window = min(target.config.block_size, draft.config.block_size)
    seq = check_prompt([int(t) for t in prompt], window, truncate)
    eos = set() if eos_token is None else set(np.atleast_1d(eos_token).tolist())
    sampler = TokenSampler(sampling or SamplingParams(), seq, target.config.vocab_size, generator)
    out = SpeculativeResult()
    with eval_mode(target), eval_mode(draft):
        t_cache, d_cache = target.make_cache(1, max_len=window), draft.make_cache(1, max_len=window)
        while len(out.tokens) < max_new_tokens and out.finish_reason != "stop":
            if len(seq) > window:  # the last token cannot be fed: the window is full
                break
            g = min(num_draft, max_new_tokens - len(out.tokens) - 1, window - len(seq))
            drafts, qs = _propose(draft, d_cache, seq, g, sampler, out)
            ps = _verify(target, t_cache, seq, drafts, sampler)
            n, nxt = _accept(ps, qs, drafts, sampler)
            out.proposed, out.accepted, out.target_calls = out.proposed + g, out.accepted + n, out.target_calls + 1
            _commit(out, seq, drafts[:n] + [nxt], sampler, eos, max_new_tokens)
            t_cache.crop(min(t_cache.length, len(seq) - 1))
            d_cache.crop(min(d_cache.length, len(seq) - 1))
    return out

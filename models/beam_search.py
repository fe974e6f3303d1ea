"""Beam search with the kv-cache, following Hugging Face generate()'s rules so that the same model gives the same beams.

    beams = beam_search(model, prompt, max_new_tokens=20, num_beams=4, length_penalty=1.0, eos_token=0)
    beams[0].tokens, beams[0].score            # best first; score = sum of log-probs / len(tokens) ** length_penalty

num_beams running hypotheses share one batch (the cache's rows; cache.reorder copies the rows the next step
continues from). Each step, every hypothesis extends by every token; of these num_beams * V candidates the
2 * num_beams with the highest summed log-probability are looked at, best first:
- a candidate that ends in eos (or reaches max_new_tokens) is finished. Only one among the first num_beams
  may enter the pool of finished hypotheses, scored sum / length ** length_penalty (length counts the new
  tokens, eos included). The pool keeps the num_beams best.
- the best num_beams unfinished candidates run on (with 2 * num_beams looked at, there are always enough).
Search stops when every candidate is finished (max_new_tokens), when early_stopping=True and the pool is
full, or when no running hypothesis can beat the pool's worst: HF's estimate divides the best running sum
by (tokens so far) ** length_penalty (early_stopping=False), or, for early_stopping="never" with a positive
length_penalty, by max_new_tokens ** length_penalty. Only "never" is exact: the first estimate can stop
although a longer hypothesis would have scored higher (HF keeps it for backward compatibility).
At the start only the first hypothesis is live (the others score -1e9), so the beams do not start equal.
Left out: several prompts at once, sampling inside beams, constraints and diversity groups.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Union

import numpy as np

from models.generate import check_prompt, eval_mode, forward_last
from models.sampling import log_softmax

NEG = -1.0e9  # HF's "cannot be chosen" score


@dataclass
class Beam:
    """One returned hypothesis."""
    tokens: List[int]          # the new tokens; the eos is included when the beam ended with it (as in HF)
    score: float               # HF's sequences_scores: sum of log-probs / len(tokens) ** length_penalty
    finish_reason: str         # "stop" (ended in eos) or "length"


class _Pool:
    """The num_beams best finished hypotheses, best first (HF's `sequences`, `beam_scores`, `is_sent_finished`)."""

    def __init__(self, num_beams: int):
        self.scores = np.full(num_beams, NEG)
        self.tokens: List[List[int]] = [[] for _ in range(num_beams)]
        self.done = np.zeros(num_beams, dtype=bool)

    def merge(self, scores: np.ndarray, tokens: List[List[int]], done: np.ndarray) -> None:
        merged = np.concatenate([self.scores, scores])
        keep = np.argsort(-merged, kind="stable")[:len(self.scores)]
        every, finished = self.tokens + tokens, np.concatenate([self.done, done])
        self.scores, self.tokens, self.done = merged[keep], [every[i] for i in keep], finished[keep]

    def worst(self) -> np.ndarray:
        """Per slot: the pool's lowest score if the slot is taken, else NEG (anything beats an empty slot)."""
        return np.where(self.done, self.scores.min(), NEG)


def _candidates(logits: np.ndarray, running: np.ndarray, k: int):
    """The k best (summed log-prob, source beam, token) over every beam's every next token, best first."""
    total = (log_softmax(logits) + running[:, None]).ravel()  # (num_beams * V,)
    order = np.argsort(-total, kind="stable")[:k]
    beam, token = np.divmod(order, logits.shape[1])
    return total[order], beam, token


def _finished_scores(scores, hits, step, num_beams, length_penalty, closed: bool) -> np.ndarray:
    """Pool scores of this step's candidates: NEG unless finished, among the first num_beams, and the pool open."""
    out = scores / float(step + 1) ** length_penalty
    eligible = hits & (np.arange(len(scores)) < num_beams)
    return np.where(eligible & (not closed), out, NEG + np.minimum(out, 0))


def _best_possible(running_best: float, step: int, max_new: int, length_penalty: float, early_stopping) -> float:
    """HF's estimate of the best score a running hypothesis could still reach."""
    length = max_new if early_stopping == "never" and length_penalty > 0 else step + 1
    return running_best / float(length) ** length_penalty


def _check(num_beams: int, num_return_sequences: int, early_stopping) -> None:
    if num_beams < 1:
        raise ValueError(f"beam_search: num_beams must be >= 1, got {num_beams}")
    if not 1 <= num_return_sequences <= num_beams:
        raise ValueError(f"beam_search: num_return_sequences must be in [1, num_beams {num_beams}], "
                         f"got {num_return_sequences}")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"beam_search: early_stopping must be True, False or 'never', got {early_stopping!r}")


def beam_search(model, prompt: Sequence[int], max_new_tokens: int, num_beams: int = 4, length_penalty: float = 1.0,
                early_stopping: Union[bool, str] = False, num_return_sequences: int = 1,
                eos_token: Union[None, int, Sequence[int]] = None, truncate: bool = False) -> List[Beam]:
    """The num_return_sequences best hypotheses for one prompt (a list of ids), best first, as HF's generate(
    num_beams=..., length_penalty=..., early_stopping=..., num_return_sequences=...) finds them.

    The window: max_new_tokens is cut so that no context longer than block_size is fed (the last token may
    be predicted from a full window); a prompt longer than the window is a ValueError unless truncate=True.
    """
    _check(num_beams, num_return_sequences, early_stopping)
    block = model.config.block_size
    prompt = check_prompt([int(t) for t in prompt], block, truncate)
    max_new = min(max_new_tokens, block - len(prompt) + 1)
    eos = np.asarray([] if eos_token is None else np.atleast_1d(eos_token), dtype=np.int64)
    k = max(2, 1 + len(eos)) * num_beams  # HF: enough candidates that num_beams of them are unfinished
    pool = _Pool(num_beams)
    with eval_mode(model):
        if max_new <= 0:
            return []
        cache = model.make_cache(1, max_len=len(prompt) + max_new - 1)
        logits = forward_last(model, cache, [prompt])
        cache.reorder([0] * num_beams)
        logits = np.repeat(logits, num_beams, axis=0)
        running = np.full(num_beams, NEG)
        running[0] = 0.0
        tokens: List[List[int]] = [[] for _ in range(num_beams)]
        improvable = True
        for step in range(max_new):
            scores, beam, token = _candidates(logits, running, k)
            grown = [tokens[b] + [int(t)] for b, t in zip(beam, token)]
            hits = np.isin(token, eos) | (step + 1 == max_new)
            closed = (early_stopping is True and pool.done.all()) or not improvable
            pool.merge(_finished_scores(scores, hits, step, num_beams, length_penalty, closed), grown,
                       hits & (np.arange(k) < num_beams))
            alive = scores + NEG * hits
            nxt = np.argsort(-alive, kind="stable")[:num_beams]
            running, tokens = alive[nxt], [grown[i] for i in nxt]
            best = _best_possible(running[0], step, max_new, length_penalty, early_stopping)
            improvable = improvable and bool(np.any(best > pool.worst()))
            if not improvable or (early_stopping is True and pool.done.all()) or hits.all():
                break
            cache.reorder(beam[nxt])
            logits = forward_last(model, cache, [[t[-1]] for t in tokens])
    return [Beam(t, float(s), "stop" if t and t[-1] in eos else "length")
            for t, s in zip(pool.tokens[:num_return_sequences], pool.scores[:num_return_sequences])]

"""Decoding with a kv-cache (chapter 12): batched generation, the context window, and the entry points.

    from models.generate import generate          # beam search: models/beam_search.py,
                                                  # speculative decoding: models/speculative.py
    outs = generate(model, [[1, 2, 3], [4, 5]], 50, SamplingParams(temperature=0.8, top_p=0.9, seed=1),
                    eos_token=0, stop=["\\n\\n"], decode=tok.decode)
    outs[0].tokens, outs[0].text, outs[0].finish_reason        # "stop" or "length"

Prompts of different lengths share one batch: they are padded on the left, and the cache
(model.make_cache(B, max_len, pad=...)) hides the padding and counts each row's positions from its own
first token, so every row's result is the one it would get alone (each row draws from its own generator,
made from its SamplingParams.seed). A row finishes on its own: at an eos token (not returned), at a stop
string (the text is cut before it; the tokens that spelled it stay in `tokens`, as vLLM does), or after
max_new_tokens. Finished rows leave the batch (cache.reorder), so the others run on a smaller batch.

The context window (block_size tokens) is the model's: a longer prompt is a ValueError naming both
lengths unless truncate=True (keep its last block_size tokens). When a row's context is full,
window="stop" ends it with finish reason "length" (the last token, predicted from a full window, is
still returned), and window="slide" keeps its last `slide_keep` tokens (default block_size: the same
tokens as recomputing the window every step, as generation without a cache did) and rebuilds the
cache from them; a smaller slide_keep rebuilds less often and changes the results.

Beam search (models/beam_search.py) and speculative decoding (models/speculative.py) use this module's
helpers (check_prompt, prefill, forward_last, eval_mode). generate_tensor is the models' generate().
Left out: batched beam search over several prompts at once, log-probs in speculative decoding.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

import tinytensor as tt
from models.sampling import Choice, SamplingParams, TokenSampler

Prompts = Union[tt.Tensor, Sequence[Sequence[int]]]


@dataclass
class Completion:
    """What one prompt produced."""
    tokens: List[int]                       # the new tokens (an eos token is not included)
    finish_reason: str = "length"           # "stop": eos or a stop string; "length": max_new_tokens or the window
    text: Optional[str] = None              # decode(tokens), cut before a stop string (when decode was given)
    logprobs: Optional[List[float]] = None  # the chosen tokens' log-probs (SamplingParams.logprobs not None)
    top_logprobs: Optional[List[List[Tuple[int, float]]]] = None  # the top-n alternatives at each step


# ---- shared helpers (also used by beam search and speculative decoding) -----------------------------------

@contextmanager
def eval_mode(model):
    """Run the model in eval mode without gradients, and restore its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with tt.no_grad():
            yield
    finally:
        model.train(was_training)


def model_device(model) -> str:
    return next(iter(model.parameters())).device


def prompt_lists(prompts: Prompts) -> List[List[int]]:
    """A (B, T) tensor or a list of token lists -> a list of token lists."""
    if isinstance(prompts, tt.Tensor):
        if prompts.ndim != 2:
            raise ValueError(f"generate: a prompt tensor must be (B, T), got shape {tuple(prompts.shape)}")
        return prompts.numpy().astype(np.int64).tolist()
    return [[int(t) for t in p] for p in prompts]


def check_prompt(prompt: List[int], block_size: int, truncate: bool) -> List[int]:
    """The prompt that fits the window: an empty one or one too long (without truncate) is a ValueError."""
    if not prompt:
        raise ValueError("generate: a prompt needs at least one token")
    if len(prompt) > block_size:
        if not truncate:
            raise ValueError(f"generate: prompt of {len(prompt)} tokens is longer than the context window "
                             f"(block_size {block_size}); pass truncate=True to keep the last {block_size}")
        return prompt[-block_size:]
    return prompt


def forward_last(model, cache, tokens: List[List[int]]) -> np.ndarray:
    """Feed equal-length token lists (B, T) through model(idx, cache=cache): the last position's logits (B, V)."""
    idx = tt.tensor(np.asarray(tokens, dtype=np.int64), dtype=tt.int64, device=model_device(model))
    logits, _ = model(idx, cache=cache)  # (B, T, V)
    return logits[:, -1, :].float().numpy().astype(np.float64)


def prefill(model, contexts: List[List[int]], extra: int):
    """A cache for the contexts (left-padded to the longest) with room for `extra` more tokens per row.

    Returns (cache, logits of each row's last token (B, V)). The cache holds at most block_size slots,
    padding included; when a short row still has room in its window but the cache is full (the long rows
    that set the padding have finished), generate() rebuilds it with less padding.
    """
    longest = max(map(len, contexts))
    pad = [longest - len(c) for c in contexts]
    max_len = min(longest + extra, model.config.block_size)
    cache = model.make_cache(len(contexts), max_len=max_len, pad=pad)
    padded = [[c[0]] * p + c for c, p in zip(contexts, pad)]  # the pad value is never attended to
    return cache, forward_last(model, cache, padded)


# ---- batched generation ------------------------------------------------------------------------------------

class _Row:
    """One prompt's state: its tokens so far, its sampler, where its context starts, its completion."""

    def __init__(self, prompt: List[int], sampler: TokenSampler, shared_generator: bool):
        self.tokens, self.n_prompt, self.start = list(prompt), len(prompt), 0
        self.sampler, self.shared_generator = sampler, shared_generator
        self.done = False
        self.out = Completion([], logprobs=[] if sampler.params.logprobs is not None else None,
                              top_logprobs=[] if sampler.params.logprobs is not None else None)

    def context(self) -> List[int]:
        return self.tokens[self.start:]

    def finish(self, reason: str) -> None:
        self.done, self.out.finish_reason = True, reason


def _samplers(prompts, sampling, generator, vocab_size: int) -> List[Tuple[TokenSampler, bool]]:
    """One (TokenSampler, shares-its-generator) per prompt from the sampling and generator arguments."""
    B = len(prompts)
    params = list(sampling) if isinstance(sampling, (list, tuple)) else [sampling or SamplingParams()] * B
    gens = list(generator) if isinstance(generator, (list, tuple)) else [generator] * B
    if len(params) != B or len(gens) != B:
        raise ValueError(f"generate: {B} prompts but {len(params)} sampling params and {len(gens)} generators")
    shared = [g is not None and sum(h is g for h in gens) > 1 for g in gens]
    return [(TokenSampler(p, prompt, vocab_size, g), s) for p, prompt, g, s in zip(params, prompts, gens, shared)]


def _record(row: _Row, choice: Choice, max_new_tokens: int, eos: set, stop: Sequence[str],
            decode: Optional[Callable], block_size: int, window: str) -> None:
    """Append a chosen token to its row and decide whether the row is done, and why."""
    if choice.token in eos:
        return row.finish("stop")
    out = row.out
    row.tokens.append(choice.token)
    out.tokens.append(choice.token)
    if out.logprobs is not None:
        out.logprobs.append(choice.logprob)
        out.top_logprobs.append(choice.top)
    if decode is not None:
        out.text = decode(out.tokens)
        cut = min((i for i in (out.text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            out.text = out.text[:cut]
            return row.finish("stop")
    if len(out.tokens) == max_new_tokens or (window == "stop" and len(row.context()) > block_size):
        row.finish("length")


def _choose(rows: List[_Row], live: List[int], logits: np.ndarray) -> List[Optional[Choice]]:
    """Each live row picks from its logits, in prompt order; a finished row that shares its generator
    with others uses up one draw, so the shared stream is the one the old loop (which sampled every row
    until all were done) consumed."""
    where = {i: b for b, i in enumerate(live)}
    choices = []
    for i, row in enumerate(rows):
        if i in where:
            choices.append(row.sampler.choose(logits[where[i]]))
        else:
            if row.shared_generator:
                row.sampler.skip()
            choices.append(None)
    return choices


def _advance(model, rows: List[_Row], live: List[int], cache, steps_left: int, window: str, keep: int):
    """Feed each live row's last token (or rebuild the cache when a row's window slides): (cache, logits)."""
    block = model.config.block_size
    slide = False
    for i in live:
        if len(rows[i].context()) > block:  # only with window="slide": "stop" has finished such rows
            rows[i].start = len(rows[i].tokens) - keep
            slide = True
    if slide or cache.length >= cache.max_len:
        return prefill(model, [rows[i].context() for i in live], steps_left)
    return cache, forward_last(model, cache, [[rows[i].tokens[-1]] for i in live])


def generate(model, prompts: Prompts, max_new_tokens: int,
             sampling: Union[None, SamplingParams, Sequence[SamplingParams]] = None, *,
             eos_token: Union[None, int, Sequence[int]] = None, stop: Sequence[str] = (),
             decode: Optional[Callable[[List[int]], str]] = None,
             generator: Union[None, tt.Generator, Sequence[Optional[tt.Generator]]] = None,
             truncate: bool = False, window: str = "stop", slide_keep: Optional[int] = None) -> List[Completion]:
    """Complete every prompt (a list of token lists, or a (B, T) tensor) in one batch with the kv-cache.

    sampling: one SamplingParams for all rows or one per row (default: plain sampling at temperature 1).
    generator: overrides the params' seeds: one tt.Generator shared by all rows (they draw in turn, as
    the models' generate() always did) or one per row. eos_token: an id or several. stop: strings that end
    a row (needs decode, e.g. a tokenizer's decode). See the module docstring for the window arguments.
    """
    block = model.config.block_size
    if window not in ("stop", "slide"):
        raise ValueError(f"generate: window must be 'stop' or 'slide', got {window!r}")
    keep = block if slide_keep is None else slide_keep
    if not 1 <= keep <= block:
        raise ValueError(f"generate: slide_keep must be in [1, block_size {block}], got {slide_keep}")
    if stop and decode is None:
        raise ValueError("generate: stop strings need a decode function (token ids -> text)")
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    eos = set() if eos_token is None else {int(eos_token)} if np.ndim(eos_token) == 0 else set(map(int, eos_token))
    plist = [check_prompt(p, block, truncate) for p in prompt_lists(prompts)]
    samplers = _samplers(plist, sampling, generator, model.config.vocab_size)
    rows = [_Row(p, s, shared) for p, (s, shared) in zip(plist, samplers)]
    if max_new_tokens == 0 or not rows:
        return [r.out for r in rows]
    with eval_mode(model):
        live = list(range(len(rows)))
        cache, logits = prefill(model, [r.context() for r in rows], max_new_tokens - 1)
        for step in range(max_new_tokens):
            for i, choice in enumerate(_choose(rows, live, logits)):
                if choice is not None:
                    _record(rows[i], choice, max_new_tokens, eos, stop, decode, block, window)
            still = [i for i in live if not rows[i].done]
            if not still:
                break
            if len(still) < len(live):
                cache.reorder([live.index(i) for i in still])
            live = still
            cache, logits = _advance(model, rows, live, cache, max_new_tokens - step - 2, window, keep)
    return [r.out for r in rows]


def generate_tensor(model, idx: tt.Tensor, max_new_tokens: int, temperature: float = 1.0,
                    top_k: Optional[int] = None, top_p: Optional[float] = None, seed: Optional[int] = None,
                    generator: Optional[tt.Generator] = None, eos_token: Optional[int] = None) -> tt.Tensor:
    """GPT.generate and Llama.generate: idx (B, T) extended by up to max_new_tokens tokens, (B, T + steps).

    As before chapter 12, one generator (the given one, else a new one from seed, else tinytensor's default)
    draws for every row in turn, a prompt longer than the window is cropped to its last block_size tokens,
    and generation past the window slides it one token at a time, so a seed gives the same tokens as the
    loop without a cache did. Steps run until every row has emitted eos_token; a row that ended earlier is
    filled with eos_token after it (the loop without a cache kept sampling there).
    """
    gen = generator if generator is not None else tt.Generator(seed) if seed is not None else None
    gen = gen if gen is not None else tt.random.default_generator
    outs = generate(model, idx, max_new_tokens, SamplingParams(temperature, top_k, top_p), eos_token=eos_token,
                    generator=gen, truncate=True, window="slide")
    steps = max(len(o.tokens) + (o.finish_reason == "stop") for o in outs)
    fill = eos_token if eos_token is not None else 0
    new = [o.tokens + [fill] * (steps - len(o.tokens)) for o in outs]
    new_idx = tt.tensor(np.asarray(new, dtype=np.int64).reshape(len(outs), steps), dtype=tt.int64, device=idx.device)
    return tt.cat([idx, new_idx], dim=1)

"""Tests of the decoding algorithms of chapter 12 (models/sampling.py, generate.py, beam_search.py, speculative.py).

References: the sampling steps re-done by hand in NumPy (sorted lists, explicit loops); TableLM
(tests/gen_helpers.py), a NumPy language model whose no-cache function is the reference for every loop;
a plain recompute-the-window loop without a cache; Hugging Face transformers' beam search on the same GPT-2
weights (skipped without transformers); a brute-force search over every continuation on a tiny vocabulary;
and Pearson's chi-square test (critical values computed from the chi-square CDF and checked against a table)
for every claim that samples follow a distribution.
"""

import itertools

import numpy as np
import pytest

import tinytensor as tt
from gen_helpers import TableLM, chi2_critical, chi2_statistic
from models.beam_search import beam_search
from models.generate import generate
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig
from models.sampling import SamplingParams, TokenSampler, filter_logits, log_softmax
from models.speculative import speculative_generate

ALPHA = 1e-3  # every chi-square test runs at a fixed seed; this is its false-alarm rate over seeds


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_probs(logits, prompt, output, p: SamplingParams):
    """The sampling distribution written out step by step, one token at a time."""
    x = [float(v) for v in logits]
    V = len(x)
    for tok in set(prompt) | set(output):  # HF's repetition penalty
        x[tok] = x[tok] / p.repetition_penalty if x[tok] > 0 else x[tok] * p.repetition_penalty
    for tok in set(output):  # OpenAI's frequency and presence penalties
        x[tok] -= output.count(tok) * p.frequency_penalty + p.presence_penalty
    if p.temperature == 0:
        return np.eye(V)[int(np.argmax(x))]
    x = [v / p.temperature for v in x]
    ranked = sorted(range(V), key=lambda i: -x[i])
    kept = ranked[:p.top_k] if p.top_k else ranked
    prob = dict(zip(kept, softmax(np.array([x[i] for i in kept]))))
    if p.top_p is not None:
        nucleus, mass = [], 0.0
        for i in kept:
            nucleus.append(i)
            mass += prob[i]
            if mass >= p.top_p:
                break
        kept = nucleus
    if p.min_p is not None:
        kept = [i for i in kept if prob[i] >= p.min_p * max(prob.values())]
    out = np.zeros(V)
    for i in kept:
        out[i] = prob[i]
    return out / out.sum()


PARAMS = [SamplingParams(), SamplingParams(temperature=0.7, top_k=5), SamplingParams(top_p=0.8),
          SamplingParams(temperature=1.3, min_p=0.1), SamplingParams(temperature=0.9, top_k=8, top_p=0.9, min_p=0.05),
          SamplingParams(repetition_penalty=1.5), SamplingParams(frequency_penalty=0.6, presence_penalty=0.4),
          SamplingParams(temperature=0.8, repetition_penalty=1.2, frequency_penalty=0.3, presence_penalty=-0.5,
                         top_p=0.95),
          SamplingParams(temperature=0, repetition_penalty=2.0, frequency_penalty=1.0)]


# ---- sampling ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", PARAMS)
def test_sampling_distribution_matches_step_by_step_reference(params):
    rng = np.random.default_rng(0)
    for trial in range(5):
        logits = 2.0 * rng.standard_normal(16)
        prompt, output = list(rng.integers(0, 16, 4)), list(rng.integers(0, 16, 6))
        sampler = TokenSampler(params, prompt, 16)
        for tok in output:
            sampler.observe(tok)
        np.testing.assert_allclose(sampler.probs(logits), reference_probs(logits, prompt, output, params),
                                   rtol=1e-12, atol=1e-15)


def test_penalties_use_hf_and_openai_definitions():
    logits = np.array([2.0, -1.0, 0.5, -3.0, 1.0])
    sampler = TokenSampler(SamplingParams(repetition_penalty=2.0, frequency_penalty=0.5, presence_penalty=0.25),
                           prompt=[0, 1], vocab_size=5)
    for tok in (2, 2, 3):
        sampler.observe(tok)
    # tokens 0 and 1 appear in the prompt only: repetition penalty; 2 (twice) and 3 (once) in the output: all three
    expected = [2.0 / 2, -1.0 * 2, 0.5 / 2 - 2 * 0.5 - 0.25, -3.0 * 2 - 0.5 - 0.25, 1.0]
    np.testing.assert_allclose(sampler.processed(logits), expected)


def test_draws_follow_the_distribution_and_the_seed():
    params = SamplingParams(temperature=0.9, top_k=6, seed=11)
    logits = np.random.default_rng(1).standard_normal(10)
    a, b = TokenSampler(params, [0], 10), TokenSampler(params, [0], 10)
    draws = [a.draw(a.probs(logits)) for _ in range(3000)]
    assert draws == [b.draw(b.probs(logits)) for _ in range(3000)]  # the same seed, the same stream
    other = TokenSampler(SamplingParams(temperature=0.9, top_k=6, seed=12), [0], 10)
    assert draws[:50] != [other.draw(other.probs(logits)) for _ in range(50)]
    stat, df = chi2_statistic(np.bincount(draws, minlength=10), a.probs(logits))
    assert df == 5 and stat < chi2_critical(df, ALPHA)


def test_logprobs_are_the_models_own():
    logits = np.random.default_rng(2).standard_normal(12) * 3
    ref = logits - np.log(np.exp(logits).sum())
    for params in (SamplingParams(temperature=0.5, top_k=3, logprobs=4, seed=0, repetition_penalty=1.5),
                   SamplingParams(temperature=0, logprobs=2)):
        choice = TokenSampler(params, [1, 2], 12).choose(logits)
        assert choice.logprob == pytest.approx(ref[choice.token], abs=1e-12)
        best = np.argsort(-ref)[:params.logprobs]
        assert [t for t, _ in choice.top] == best.tolist()
        np.testing.assert_allclose([v for _, v in choice.top], ref[best], atol=1e-12)
    assert TokenSampler(SamplingParams(seed=0), [1], 12).choose(logits).logprob is None
    np.testing.assert_allclose(log_softmax(logits), ref, atol=1e-12)


def test_min_p_keeps_tokens_relative_to_the_most_likely():
    probs = np.array([[0.5, 0.2, 0.04, 0.26]])
    assert np.isfinite(filter_logits(np.log(probs), min_p=0.1)).tolist() == [[True, True, False, True]]
    assert np.isfinite(filter_logits(np.log(probs), min_p=0.5)).tolist() == [[True, False, False, True]]


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(min_p=2),
                                 dict(repetition_penalty=0), dict(top_k=-1), dict(logprobs=-1)])
def test_sampling_params_refuse_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SamplingParams(**bad)


# ---- batched generation (TableLM: the loop's bookkeeping) -------------------------------------------------

def reference_row(model, prompt, n, params, eos=(), window="stop", keep=None):
    """One prompt alone, recomputing the context every step (no cache): (tokens, finish_reason)."""
    block = model.config.block_size
    sampler = TokenSampler(params, prompt, model.config.vocab_size)
    tokens, start, out = list(prompt), 0, []
    while len(out) < n:
        if len(tokens) - start > block:
            if window == "stop":
                return out, "length"
            start = len(tokens) - (keep or block)
        choice = sampler.choose(model.next_logits(tokens[start:]))
        if choice.token in eos:
            return out, "stop"
        tokens.append(choice.token)
        out.append(choice.token)
    return out, "length"


PROMPTS = [[3], [1, 4, 1, 5, 2], [6, 6, 0], [2, 5, 3, 1, 0, 4, 4, 2]]
ROW_PARAMS = [SamplingParams(temperature=0), SamplingParams(seed=1), SamplingParams(temperature=0.7, top_k=4, seed=2),
              SamplingParams(top_p=0.8, repetition_penalty=1.3, frequency_penalty=0.2, seed=3)]


@pytest.mark.parametrize("mixed", [False, True])
def test_batch_rows_equal_each_row_alone(mixed):
    model = TableLM(vocab_size=7, block_size=16)
    params = ROW_PARAMS if mixed else [SamplingParams(temperature=0)] * 4
    outs = generate(model, PROMPTS, 6, params, eos_token=[0, 6])
    for prompt, p, out in zip(PROMPTS, params, outs):
        assert (out.tokens, out.finish_reason) == reference_row(model, prompt, 6, p, eos=(0, 6))
        alone = generate(model, [prompt], 6, p, eos_token=[0, 6])[0]
        assert (alone.tokens, alone.finish_reason) == (out.tokens, out.finish_reason)
    assert {o.finish_reason for o in outs} == {"stop", "length"}  # the test covers both endings


def test_finished_rows_leave_the_batch():
    model = TableLM(vocab_size=7, block_size=16)
    outs = generate(model, PROMPTS, 6, SamplingParams(temperature=0), eos_token=[0, 6])
    lengths = [len(o.tokens) + (o.finish_reason == "stop") for o in outs]  # steps each row took
    batch_sizes = [b for b, t in model.calls]
    assert batch_sizes[0] == 4 and all(t == 1 for _, t in model.calls[1:])
    for step, b in enumerate(batch_sizes[1:], start=1):
        assert b == sum(n > step for n in lengths)


def test_logprobs_of_generated_tokens():
    model = TableLM(vocab_size=7, block_size=16)
    out = generate(model, [PROMPTS[1]], 5, SamplingParams(temperature=0.8, seed=4, logprobs=3))[0]
    tokens = list(PROMPTS[1])
    for tok, lp, top in zip(out.tokens, out.logprobs, out.top_logprobs):
        ref = log_softmax(model.next_logits(tokens))
        assert lp == pytest.approx(ref[tok], abs=1e-6) and [t for t, _ in top] == np.argsort(-ref)[:3].tolist()
        tokens.append(tok)
    assert len(out.logprobs) == len(out.tokens) == 5


def test_stop_strings_end_a_row_and_are_not_emitted():
    model = TableLM(vocab_size=7, block_size=16)
    decode = lambda ids: "".join("abcdefg"[i] for i in ids)  # noqa: E731
    full, _ = reference_row(model, PROMPTS[1], 10, SamplingParams(seed=5))
    text = decode(full)
    stop = text[4:6]  # a stop string the unconstrained output spells at characters 4-5 (or earlier)
    out = generate(model, [PROMPTS[1], PROMPTS[2]], 10, SamplingParams(seed=5), stop=["zz", stop], decode=decode)[0]
    first = text.find(stop)
    assert out.finish_reason == "stop" and out.text == text[:first]
    assert out.tokens == full[:first + len(stop)]  # the tokens that spelled the stop string are kept
    with pytest.raises(ValueError, match="decode"):
        generate(model, [[1]], 3, stop=["a"])


def test_shared_generator_draws_in_turn_as_the_old_loop():
    """One generator for the whole batch: the rows draw in turn each step, and keep drawing after their eos,
    as models/sampling.py's loop without a cache did; each row is the old loop's row cut at its eos."""
    model = TableLM(vocab_size=7, block_size=16)
    prompts = [[1, 2, 3], [4, 5, 6]]
    gen = tt.Generator(9)
    outs = generate(model, prompts, 8, SamplingParams(top_k=5), eos_token=0, generator=gen)
    old, g = [list(p) for p in prompts], tt.Generator(9)
    for _ in range(8):
        logits = np.stack([model.next_logits(r) for r in old])
        probs = np.exp(filter_logits(logits, top_k=5) - logits.max(-1, keepdims=True))
        for r, t in zip(old, tt.multinomial(tt.from_numpy(probs), 1, generator=g).numpy()[:, 0]):
            r.append(int(t))
        if all(0 in r[3:] for r in old):
            break
    for row, out in zip(old, outs):
        new = row[3:]
        assert out.tokens == (new[:new.index(0)] if 0 in new else new)
    assert gen.get_state() == g.get_state()  # the same number of draws


def test_zero_new_tokens_and_bad_arguments():
    model = TableLM()
    assert [(o.tokens, o.finish_reason) for o in generate(model, [[1], [2, 3]], 0)] == [([], "length")] * 2
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], 3)
    with pytest.raises(ValueError, match="window"):
        generate(model, [[1]], 3, window="wrap")
    with pytest.raises(ValueError, match="2 prompts but 3 sampling"):
        generate(model, [[1], [2]], 3, [SamplingParams()] * 3)


# ---- the context window ------------------------------------------------------------------------------------

def test_prompt_longer_than_the_window():
    model = TableLM(vocab_size=7, block_size=8)
    prompt = [1, 2, 3, 4, 5, 6, 0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"10 tokens.*block_size 8"):
        generate(model, [prompt], 3)
    greedy = SamplingParams(temperature=0)
    out = generate(model, [prompt], 1, greedy, truncate=True)[0]
    assert out.tokens == reference_row(model, prompt[-8:], 1, greedy)[0]


@pytest.mark.parametrize("window,keep", [("stop", None), ("slide", None), ("slide", 5), ("slide", 1)])
def test_generation_past_the_window(window, keep):
    model = TableLM(vocab_size=7, block_size=8)
    params = [SamplingParams(temperature=0), SamplingParams(seed=6, top_k=5)]
    prompts = [[1, 2, 3, 4, 5, 6], [2]]
    outs = generate(model, prompts, 20, params, window=window, slide_keep=keep)
    for prompt, p, out in zip(prompts, params, outs):
        assert (out.tokens, out.finish_reason) == reference_row(model, prompt, 20, p, window=window, keep=keep)
    if window == "stop":  # the context holds 8 tokens; the token predicted from a full context is returned
        assert [len(o.tokens) for o in outs] == [8 - 6 + 1, 8 - 1 + 1] and outs[0].finish_reason == "length"
    else:
        assert [len(o.tokens) for o in outs] == [20, 20]


# ---- batched generation on GPT-2 and Llama with the real kv-cache -----------------------------------------

def spread(model, factor):
    """Matrices scaled up so that logits spread as a trained model's do (at N(0, 0.02) they nearly tie, and
    rounding differences between a batch and a single row could flip a greedy choice)."""
    with tt.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(factor)
    return model


def gpt_model(seed=0, **kw):
    tt.manual_seed(seed)
    cfg = dict(block_size=32, vocab_size=61, n_layer=2, n_head=4, n_embd=32)
    cfg.update(kw)
    return spread(GPT(GPTConfig(**cfg)), 6.0)


def llama_model(seed=0, **kw):
    tt.manual_seed(seed)
    cfg = dict(block_size=32, vocab_size=61, n_layer=2, n_head=4, n_kv_heads=2, n_embd=32, ffn_hidden=48,
               tie_embeddings=False)
    cfg.update(kw)
    return spread(Llama(LlamaConfig(**cfg)), 12.0)


@tt.no_grad()
def recompute_greedy(model, prompt, n):
    """Greedy decoding the slow way: the whole context through the model (no cache) for every token."""
    tokens = list(prompt)
    for _ in range(n):
        logits, _ = model(tt.tensor([tokens], dtype=tt.int64))  # (1, 1, V): the last position's
        tokens.append(int(np.argmax(logits.numpy()[0, -1])))
    return tokens[len(prompt):]


@pytest.mark.parametrize("make", [gpt_model, llama_model])
def test_models_batch_equals_alone_and_recomputation(make):
    model = make()
    rng = np.random.default_rng(3)
    prompts = [rng.integers(0, 61, n).tolist() for n in (1, 9, 4)]
    greedy = generate(model, prompts, 10, SamplingParams(temperature=0))
    assert model.training  # generate() restores the mode
    for prompt, out in zip(prompts, greedy):
        assert out.tokens == recompute_greedy(model, prompt, 10)
    params = [SamplingParams(temperature=0.9, top_k=20, seed=s) for s in (1, 2, 3)]
    sampled = generate(model, prompts, 10, params)
    for prompt, p, out in zip(prompts, params, sampled):
        assert out.tokens == generate(model, [prompt], 10, p)[0].tokens
    assert len({tuple(o.tokens) for o in sampled}) == 3


def test_models_window_stop_with_a_rebuilt_cache():
    """Prompts of 12 and 2 tokens in a window of 16: the long row stops after 16 - 12 + 1 tokens; the cache
    (16 slots, 10 of them the short row's padding) is then rebuilt without the padding for the short row."""
    model = gpt_model(block_size=16)
    prompts = [list(range(3, 15)), [7, 8]]
    outs = generate(model, prompts, 20, SamplingParams(temperature=0), window="stop")
    assert [(len(o.tokens), o.finish_reason) for o in outs] == [(5, "length"), (15, "length")]
    for prompt, out in zip(prompts, outs):
        assert out.tokens == recompute_greedy(model, prompt, len(out.tokens))


# ---- beam search ---------------------------------------------------------------------------------------

def brute_force_beams(model, prompt, n, eos, length_penalty):
    """Every possible continuation (ending at its first eos, or after n tokens) scored as HF scores a beam."""
    V, hyps = model.config.vocab_size, []
    for length in range(1, n + 1):
        for seq in itertools.product(range(V), repeat=length):
            if eos in seq[:-1] or (length < n and seq[-1] != eos):
                continue
            ctx, total = list(prompt), 0.0
            for t in seq:
                total += log_softmax(model.next_logits(ctx))[t]
                ctx.append(t)
            hyps.append((total / length ** length_penalty, list(seq)))
    return sorted(hyps, key=lambda h: -h[0])


@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0, -0.5])
def test_beam_search_wide_enough_is_exhaustive(length_penalty):
    """With more beams than live hypotheses and early_stopping='never' (HF's exact stopping rule), beam search
    must return the best continuations of all, with their scores."""
    model = TableLM(vocab_size=4, block_size=12, seed=3, scale=1.0)
    beams = beam_search(model, [1, 2], 3, num_beams=36, length_penalty=length_penalty, early_stopping="never",
                        num_return_sequences=6, eos_token=0)
    best = brute_force_beams(model, [1, 2], 3, 0, length_penalty)[:6]
    assert [b.tokens for b in beams] == [t for _, t in best]
    np.testing.assert_allclose([b.score for b in beams], [s for s, _ in best], rtol=1e-6)  # logits pass through float32
    assert [b.finish_reason for b in beams] == ["stop" if t[-1] == 0 else "length" for _, t in best]


def test_beam_search_narrow_scores_are_real_hypotheses():
    """With few beams the search may miss the best, but what it returns is scored right and never beats the
    exhaustive best."""
    model = TableLM(vocab_size=5, block_size=12, seed=4, scale=2.0)
    beams = beam_search(model, [3], 4, num_beams=2, num_return_sequences=2, eos_token=1)
    everything = dict((tuple(t), s) for s, t in brute_force_beams(model, [3], 4, 1, 1.0))
    for b in beams:
        assert b.score == pytest.approx(everything[tuple(b.tokens)], rel=1e-6)
    assert beams[0].score <= max(everything.values()) + 1e-6 and beams[0].score >= beams[1].score


def test_beam_search_checks_its_arguments():
    model = TableLM()
    with pytest.raises(ValueError, match="num_return_sequences"):
        beam_search(model, [1], 3, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="early_stopping"):
        beam_search(model, [1], 3, early_stopping="sometimes")
    with pytest.raises(ValueError, match="block_size"):
        beam_search(model, list(range(7)) * 2, 3)
    assert len(beam_search(model, [1] * 12, 5, num_beams=2)[0].tokens) == 1  # a full window: one token


@pytest.fixture(scope="module")
def gpt_and_hf(tmp_path_factory):
    """A random GPT-2 (logits spread as a trained model's) and the same weights in transformers' GPT2LMHeadModel."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = gpt_model(block_size=32, vocab_size=61)
    path = str(tmp_path_factory.mktemp("gpt2"))
    model.save_pretrained(path)
    return model, transformers.GPT2LMHeadModel.from_pretrained(path).eval()


@pytest.mark.parametrize("length_penalty,early_stopping", [(1.0, False), (2.0, True), (0.0, "never"),
                                                           (-1.0, False), (1.5, "never")])
@pytest.mark.parametrize("eos_rank", [1, 60])  # eos: the 2nd most likely first token, or the least likely one
def test_beam_search_matches_hugging_face(gpt_and_hf, length_penalty, early_stopping, eos_rank):
    import torch
    model, hf = gpt_and_hf
    prompt = [5, 17, 3]
    with torch.no_grad():
        first = hf(torch.tensor([prompt])).logits[0, -1]
    eos = int(torch.argsort(first, descending=True)[eos_rank])
    ref = hf.generate(torch.tensor([prompt]), num_beams=4, max_new_tokens=8, length_penalty=length_penalty,
                      early_stopping=early_stopping, num_return_sequences=3, eos_token_id=eos, pad_token_id=eos,
                      do_sample=False, output_scores=True, return_dict_in_generate=True)
    beams = beam_search(model, prompt, 8, num_beams=4, length_penalty=length_penalty, early_stopping=early_stopping,
                        num_return_sequences=3, eos_token=eos)
    for seq, score, beam in zip(ref.sequences.tolist(), ref.sequences_scores.tolist(), beams):
        new = seq[len(prompt):]
        new = new[:new.index(eos) + 1] if eos in new else new  # HF pads a finished beam with eos
        assert beam.tokens == new and beam.score == pytest.approx(score, rel=1e-4, abs=1e-5)


# ---- speculative decoding -----------------------------------------------------------------------------------

def exact_sequence_probs(model, prompt, n, params):
    """P(first n new tokens = seq) for every seq, from the model's no-cache function and the sampling rule."""
    V, probs = model.config.vocab_size, {}
    for seq in itertools.product(range(V), repeat=n):
        sampler, ctx, p = TokenSampler(params, prompt, V), list(prompt), 1.0
        for t in seq:
            p *= sampler.probs(model.next_logits(ctx))[t]
            sampler.observe(t)
            ctx.append(t)
        probs[seq] = p
    return probs


SPECULATIVE_PARAMS = [SamplingParams(),
                      SamplingParams(temperature=1.3, min_p=0.05, presence_penalty=0.7, repetition_penalty=1.2)]


@pytest.mark.parametrize("params", SPECULATIVE_PARAMS)
def test_speculative_samples_follow_the_target(params):
    """Chi-square test over all 27 continuations of 3 tokens (V=3, 26 degrees of freedom), where a round proposes
    2 draft tokens: rejections at either position, and the bonus token, all take part. The same counts must
    fail the test against the draft's own distribution (the test can tell the two apart)."""
    target = TableLM(vocab_size=3, block_size=8, seed=1, scale=1.0)
    draft = TableLM(vocab_size=3, block_size=8, seed=2, scale=1.0)
    p_target, p_draft = exact_sequence_probs(target, [1], 3, params), exact_sequence_probs(draft, [1], 3, params)
    cells, gen, N = list(p_target), tt.Generator(0), 1500
    counts, accepted, proposed = np.zeros(len(cells)), 0, 0
    for _ in range(N):
        out = speculative_generate(target, draft, [1], 3, params, num_draft=2, generator=gen)
        counts[cells.index(tuple(out.tokens))] += 1
        accepted, proposed = accepted + out.accepted, proposed + out.proposed
    stat, df = chi2_statistic(counts, [p_target[c] for c in cells])
    assert stat < chi2_critical(df, ALPHA)
    stat_draft, df_draft = chi2_statistic(counts, [p_draft[c] for c in cells]) if all(
        p_draft[c] > 0 for c, k in zip(cells, counts) if k) else (np.inf, df)
    assert stat_draft > chi2_critical(df_draft, ALPHA)
    assert 0.2 < accepted / proposed < 0.95  # the draft is neither always right nor always wrong


def test_speculative_with_the_target_as_draft_accepts_everything():
    model = TableLM(vocab_size=5, block_size=16, seed=5)
    out = speculative_generate(model, model, [1, 2], 10, SamplingParams(seed=3), num_draft=3)
    assert out.acceptance_rate == 1.0 and out.proposed == 3 + 3 + 1 and out.target_calls == 3
    assert len(out.tokens) == 10 and out.finish_reason == "length"


@pytest.mark.parametrize("num_draft", [1, 3, 5])
def test_speculative_greedy_is_the_targets_greedy(num_draft):
    target = TableLM(vocab_size=6, block_size=16, seed=6)
    draft = TableLM(vocab_size=6, block_size=16, seed=7)
    greedy = SamplingParams(temperature=0, repetition_penalty=1.3)
    for prompt in ([1], [2, 3, 4]):
        want = reference_row(target, prompt, 20, greedy, eos=(5,))
        out = speculative_generate(target, draft, prompt, 20, greedy, num_draft=num_draft, eos_token=5)
        assert (out.tokens, out.finish_reason) == want
        assert out.target_calls < len(out.tokens) + 1 or out.accepted == 0


def perturbed_copy(model, make, noise, seed):
    """The same architecture with each weight w -> w (1 + noise z), z ~ N(0, 1): a draft that often, not always,
    agrees with the model."""
    copy = make(seed=seed)
    rng = np.random.default_rng(seed)
    with tt.no_grad():
        for (_, p), (_, q) in zip(model.named_parameters(), copy.named_parameters()):
            q.copy_(p * tt.tensor(1 + noise * rng.standard_normal(p.shape), dtype=p.dtype))
    return copy


@pytest.mark.parametrize("make", [gpt_model, llama_model])
def test_speculative_greedy_on_real_models_is_the_targets_greedy(make):
    target = make()
    draft = perturbed_copy(target, make, 0.05, seed=1)
    greedy = SamplingParams(temperature=0)
    rng = np.random.default_rng(4)
    accepted = proposed = 0
    for prompt in (rng.integers(0, 61, 3).tolist(), rng.integers(0, 61, 22).tolist()):
        want = generate(target, [prompt], 16, greedy)[0]  # the second prompt runs into the window (32)
        out = speculative_generate(target, draft, prompt, 16, greedy, num_draft=3)
        assert (out.tokens, out.finish_reason) == (want.tokens, want.finish_reason)
        accepted, proposed = accepted + out.accepted, proposed + out.proposed
    assert 0 < accepted < proposed  # both acceptances and rejections happened


# ---- the models' generate(): chapter 05's callers ------------------------------------------------------

@tt.no_grad()
def old_generate(model, idx, n, temperature=1.0, top_k=None, top_p=None, seed=None, eos_token=None):
    """The loop the models used before the kv-cache: the last block_size tokens rerun for every new token, one
    generator drawing for every row in turn, every row sampled until all have emitted eos."""
    gen, block = tt.Generator(seed) if seed is not None else None, model.config.block_size
    rows, done = idx.numpy().tolist(), np.zeros(idx.shape[0], dtype=bool)
    for _ in range(n):
        logits, _ = model(tt.tensor([r[-block:] for r in rows], dtype=tt.int64))
        logits = logits.numpy()[:, -1].astype(np.float64)
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            x = filter_logits(logits / temperature, top_k, top_p)
            nxt = tt.multinomial(tt.from_numpy(np.exp(x - x.max(-1, keepdims=True))), 1, generator=gen).numpy()[:, 0]
        for r, t in zip(rows, nxt):
            r.append(int(t))
        done |= nxt == eos_token
        if done.all():
            break
    return np.array(rows)


@pytest.mark.parametrize("make", [gpt_model, llama_model])
@pytest.mark.parametrize("kw", [dict(temperature=0.9, top_k=20, seed=3), dict(temperature=0), dict(top_p=0.8, seed=5)])
def test_model_generate_keeps_the_old_results(make, kw):
    """model.generate(idx, n, ...) with the cache gives the old loop's tokens for the same seed, past the window
    (block_size 16, 5 + 30 tokens) too; with eos_token, each row agrees up to its eos and is eos after it."""
    model = make(block_size=16)
    x = tt.tensor(np.random.default_rng(0).integers(0, 61, (3, 5)), dtype=tt.int64)
    old = old_generate(model, x, 30, **kw)
    np.testing.assert_array_equal(model.generate(x, 30, **kw).numpy(), old)
    eos = int(old[1, 8])
    old = old_generate(model, x, 30, eos_token=eos, **kw)
    new = model.generate(x, 30, eos_token=eos, **kw).numpy()
    assert new.shape == old.shape
    for a, b in zip(new, old):
        end = 5 + list(b[5:]).index(eos) if eos in b[5:] else len(b)
        assert list(a[:end + 1]) == list(b[:end + 1])
        assert end == len(b) or (a[end:] == eos).all()  # the old loop sampled on after eos; now eos fills

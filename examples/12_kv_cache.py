"""Chapter 12, inference: the kv-cache, batched decoding, beam search, sampling and speculative decoding.

What it teaches: a model that writes one token at a time need not reread its whole context for every
token. A causal model never lets an old position look at a new one, so the keys and values of the old
positions never change: keep them (the kv-cache, tinytensor.nn.KVCache) and each new token costs one
position's work plus a look at the stored keys. The script measures that and the decoders built on it:
1. latency per token against position, without the cache (the whole context rerun every step: it grows)
   and with it (one position per step: flat), on the shipped storyteller; the greedy tokens are the same;
2. tokens/s of batched generation with the cache (prompts of different lengths, left-padded);
3. the cache's memory for plain multi-head attention (MHA) against grouped-query (GQA) and multi-query
   (MQA) attention on a Llama config: 2 x layers x batch x kv heads x positions x head size x bytes;
4. greedy, beam search, sampling (temperature, top-k, top-p) and greedy with a repetition penalty side by
   side on the storyteller, with the model's mean log-probability per token of each output;
5. speculative decoding with the small draft storyteller (examples/checkpoints/storyteller_draft, trained by
   examples/05_gpt2.py): its speed-up over plain greedy decoding (the same tokens) and the draft's acceptance
   rate for several draft lengths, and the acceptance rate when sampling.

Run:
    python examples/12_kv_cache.py                         # defaults: under a minute on a free core
    python examples/12_kv_cache.py --positions 32 --repeats 1 --num-draft 2    # a quick look
    python examples/12_kv_cache.py --threads 1 --clock cpu   # on a busy machine: count only this process's time

Prints each part's numbers; saves under --out (default out/12_kv_cache/): latency.png (ms per token against
position, with and without the cache), speculative.png (speed-up and acceptance rate against the number of
draft tokens), outputs.md (the decoders' texts) and results.json (every number printed).
On the 2-core machine this was written on (--threads 1 --clock cpu), the shipped storyteller (L4 C256) took
about 1.5 ms per token at every position with the cache (645 tokens/s) and from 1.7 ms growing to 13 ms
at position 127 without it (118 tokens/s); batch 16 made 7.0x the tokens/s of batch 1; the shipped draft's
greedy acceptance rate was 0.74 with one draft token per round, yet speculative decoding ran at only
0.9-1.07x plain greedy (a step of these small models is largely per-operation overhead); docs/12_kv_cache.md
has a full run. The default run takes about 23 seconds on one core.
Models are read from --checkpoint and --draft, so a bigger storyteller in the same folder just works.
"""
import argparse
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor.tokenizer import Tokenizer
from models.beam_search import beam_search
from models.generate import generate
from models.gpt2 import GPT
from models.llama import Llama, LlamaConfig
from models.sampling import SamplingParams
from models.speculative import speculative_generate

HERE = os.path.dirname(os.path.abspath(__file__))
STORYTELLER = os.path.join(HERE, "checkpoints", "storyteller")
DRAFT = os.path.join(HERE, "checkpoints", "storyteller_draft")
EOT = "<|endoftext|>"
OPENINGS = ["Once upon a time", "Tom and his dog", "One day, a little girl named Lily"]


def load(path: str) -> Tuple[GPT, Tokenizer]:
    model = GPT.from_pretrained(path)
    model.eval()
    return model, Tokenizer.load(os.path.join(path, "tokenizer.bpe"))


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # --clock chooses


def now() -> float:
    """The time the measurements use: wall-clock seconds, or (--clock cpu) the CPU seconds of this process,
    which leave out the time other jobs on a shared core take (with several threads they add up)."""
    return clock()


# ---- 1. latency against position --------------------------------------------------------------------------------

@tt.no_grad()
def greedy_latencies(model: GPT, first: int, n: int, use_cache: bool) -> Tuple[np.ndarray, List[int]]:
    """Greedy decoding of n tokens after `first`: the seconds each step took, and the tokens.

    Step p reads the token at position p and predicts the one after it. With the cache it feeds that one
    token (the cache holds positions 0..p-1); without it the whole context 0..p is rerun."""
    tokens, seconds = [first], []
    cache = model.make_cache(1) if use_cache else None
    for _ in range(n):
        start = now()
        if use_cache:
            logits, _ = model(tt.tensor([tokens[-1:]], dtype=tt.int64), cache=cache)
        else:
            logits, _ = model(tt.tensor([tokens], dtype=tt.int64))
        tokens.append(int(logits[0, -1].argmax().item()))
        seconds.append(now() - start)
    return np.array(seconds), tokens[1:]


def latency_curves(model: GPT, first: int, n: int, repeats: int) -> Dict[str, object]:
    """Each step's best time over `repeats` runs, with and without the cache (turns alternate)."""
    best = {"cache": np.full(n, np.inf), "no_cache": np.full(n, np.inf)}
    tokens = {}
    greedy_latencies(model, first, min(n, 4), True)  # a warm-up: the first calls pay for one-time set-up
    for _ in tqdm(range(repeats), desc="latency", leave=False):
        for name in best:
            seconds, tokens[name] = greedy_latencies(model, first, n, name == "cache")
            best[name] = np.minimum(best[name], seconds)
    return {"positions": np.arange(n), "cache_s": best["cache"], "no_cache_s": best["no_cache"],
            "same_tokens": tokens["cache"] == tokens["no_cache"], "tokens": tokens["cache"]}


def plot_latency(curves: Dict[str, object], title: str, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curves["positions"], 1e3 * curves["no_cache_s"], label="without the cache (rerun the context)")
    ax.plot(curves["positions"], 1e3 * curves["cache_s"], label="with the kv-cache (one position per step)")
    ax.set_xlabel("position of the token fed in")
    ax.set_ylabel("ms per token (best of the repeats)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---- 2. batched generation ----------------------------------------------------------------------------------------

def batch_throughput(model: GPT, prompts: List[List[int]], batch_sizes: Sequence[int], n: int,
                     repeats: int = 1) -> Dict[int, float]:
    """Greedy tokens/s of generate() at each batch size (best of `repeats`); the batch cycles through prompts
    of different lengths, so the shorter ones are left-padded."""
    out = {B: 0.0 for B in batch_sizes}
    for _ in tqdm(range(repeats), desc="batching", leave=False):
        for B in batch_sizes:
            batch = [prompts[i % len(prompts)] for i in range(B)]
            start = now()
            done = generate(model, batch, n, SamplingParams(temperature=0))
            out[B] = max(out[B], sum(len(c.tokens) for c in done) / (now() - start))
    return out


# ---- 3. the cache's memory -----------------------------------------------------------------------------------------

def cache_memory(n_layer: int, n_head: int, n_kv_heads: int, n_embd: int, block_size: int,
                 batch_size: int) -> List[Dict[str, object]]:
    """Bytes of a full float32 cache for MHA (n_head kv heads), GQA (n_kv_heads) and MQA (1), from make_cache."""
    rows = []
    for name, kv in (("MHA", n_head), ("GQA", n_kv_heads), ("MQA", 1)):
        model = Llama(LlamaConfig(block_size=block_size, vocab_size=256, n_layer=n_layer, n_head=n_head,
                                  n_kv_heads=kv, n_embd=n_embd))
        cache = model.make_cache(batch_size)
        rows.append({"attention": name, "n_kv_heads": kv, "bytes": cache.nbytes,
                     "shape": list(cache.k[0].shape)})
    return rows


def big_model_bytes(n_layer: int = 32, n_head: int = 32, n_kv_heads: int = 8, head_dim: int = 128,
                    max_len: int = 4096, bytes_per_number: int = 2) -> Dict[str, int]:
    """The formula at a 7-8B-parameter model's size in 16-bit numbers, one sequence: MHA against 8 kv heads."""
    per_head = 2 * n_layer * max_len * head_dim * bytes_per_number  # K and V, every layer, every position
    return {"MHA": per_head * n_head, "GQA": per_head * n_kv_heads}


# ---- 4. decoders side by side --------------------------------------------------------------------------------------

def mean_logprob(model: GPT, prompt: List[int], new: List[int]) -> float:
    """The model's mean log-probability per token of `new` after `prompt` (one forward pass, no cache)."""
    seq = (prompt + new)[-model.config.block_size:]
    with tt.no_grad():
        logits, _ = model(tt.tensor([seq], dtype=tt.int64), targets=tt.zeros(1, len(seq), dtype=tt.int64))
    x = logits[0].to(tt.float64).numpy()
    logp = x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
    first = len(seq) - len(new)
    return float(np.mean([logp[first - 1 + i, t] for i, t in enumerate(new)])) if new else float("nan")


def decoders(model: GPT, tok: Tokenizer, prompt: List[int], n: int, num_beams: int, seed: int) -> List[dict]:
    """Greedy, beam search, two kinds of sampling and greedy with a repetition penalty on one prompt."""
    eos = tok.special_tokens[EOT]
    runs = [("greedy", SamplingParams(temperature=0)),
            ("sampling, temperature 0.8, top-k 50", SamplingParams(temperature=0.8, top_k=50, seed=seed)),
            ("sampling, temperature 1.0, top-p 0.9", SamplingParams(temperature=1.0, top_p=0.9, seed=seed)),
            ("greedy, repetition penalty 1.3", SamplingParams(temperature=0, repetition_penalty=1.3))]
    out = []
    for name, params in runs:
        tokens = generate(model, [prompt], n, params, eos_token=eos)[0].tokens
        out.append({"decoder": name, "tokens": tokens})
    best = beam_search(model, prompt, n, num_beams=num_beams, length_penalty=1.0, eos_token=eos)[0]
    beam_tokens = best.tokens[:-1] if best.tokens and best.tokens[-1] == eos else best.tokens
    out.insert(1, {"decoder": f"beam search, {num_beams} beams", "tokens": beam_tokens})
    for row in out:
        row["text"] = tok.decode(row["tokens"])
        row["mean_logprob"] = mean_logprob(model, prompt, row["tokens"])
    return out


# ---- 5. speculative decoding ---------------------------------------------------------------------------------------

def timed(fn):
    start = now()
    result = fn()
    return result, now() - start


def speculative_rows(target: GPT, draft: GPT, prompts: List[List[int]], n: int, num_drafts: Sequence[int],
                     eos: int, repeats: int, seed: int) -> Dict[str, object]:
    """Plain greedy against speculative greedy (best of `repeats`), and the acceptance rate when sampling."""
    greedy = SamplingParams(temperature=0)
    plain_tokens, plain_s = None, np.inf
    best = {g: np.inf for g in num_drafts}
    results = {}
    for _ in tqdm(range(repeats), desc="speculative", leave=False):
        outs, s = timed(lambda: [generate(target, [p], n, greedy, eos_token=eos)[0].tokens for p in prompts])
        plain_tokens, plain_s = outs, min(plain_s, s)
        for g in num_drafts:
            results[g], s = timed(lambda: [speculative_generate(target, draft, p, n, greedy, num_draft=g,
                                                                eos_token=eos) for p in prompts])
            best[g] = min(best[g], s)
    n_tokens = sum(map(len, plain_tokens))
    rows = []
    for g in num_drafts:
        res = results[g]
        sampled = [speculative_generate(target, draft, p, n, SamplingParams(temperature=0.8, seed=seed + i),
                                        num_draft=g, eos_token=eos) for i, p in enumerate(prompts)]
        rows.append({"num_draft": g, "tokens_per_s": n_tokens / best[g], "speedup": plain_s / best[g],
                     "acceptance": sum(r.accepted for r in res) / max(1, sum(r.proposed for r in res)),
                     "tokens_per_target_pass": n_tokens / sum(r.target_calls for r in res),
                     "same_tokens": [r.tokens for r in res] == plain_tokens,
                     "acceptance_sampled": sum(r.accepted for r in sampled) / max(1, sum(r.proposed for r in sampled))})
    return {"plain_tokens_per_s": n_tokens / plain_s, "tokens": n_tokens, "rows": rows}


def plot_speculative(spec: Dict[str, object], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = [r["num_draft"] for r in spec["rows"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(g, [r["speedup"] for r in spec["rows"]], "o-", label="speed-up over plain greedy (time)")
    ax.plot(g, [r["tokens_per_target_pass"] for r in spec["rows"]], "s--", label="tokens per target forward pass")
    ax.plot(g, [r["acceptance"] for r in spec["rows"]], "^-", label="acceptance rate (greedy)")
    ax.plot(g, [r["acceptance_sampled"] for r in spec["rows"]], "v:", label="acceptance rate (temperature 0.8)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("draft tokens per round")
    ax.set_xticks(g)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---- the script -----------------------------------------------------------------------------------------------------

def describe(model: GPT) -> str:
    c = model.config
    return (f"GPT L{c.n_layer} H{c.n_head} C{c.n_embd}, block_size {c.block_size} "
            f"({model.num_parameters():,} parameters)")


def run_latency(model, tok, args, results):
    n = min(args.positions or model.config.block_size, model.config.block_size)
    curves = latency_curves(model, tok.special_tokens[EOT], n, args.repeats)
    cache_ms, plain_ms = 1e3 * curves["cache_s"], 1e3 * curves["no_cache_s"]
    print(f"\n1. latency of greedy decoding, {n} positions, best of {args.repeats}")
    for name, ms in (("with the cache", cache_ms), ("without the cache", plain_ms)):
        print(f"  {name:18s}: {ms[0]:5.2f} ms at position 0, {np.median(ms[:max(1, n // 8)]):5.2f} ms median of "
              f"the first eighth, {np.median(ms[-max(1, n // 8):]):5.2f} ms of the last eighth; "
              f"{n / ms.sum() * 1e3:6.1f} tokens/s")
    print(f"  the same {n} greedy tokens with and without the cache: {curves['same_tokens']}")
    plot_latency(curves, f"{describe(model)}, {args.threads or 'default'} thread(s), {args.clock} clock",
                 os.path.join(args.out, "latency.png"))
    results["latency"] = {"positions": n, "cache_ms": cache_ms.round(4).tolist(),
                          "no_cache_ms": plain_ms.round(4).tolist(), "same_tokens": curves["same_tokens"],
                          "cache_tokens_per_s": n / cache_ms.sum() * 1e3,
                          "no_cache_tokens_per_s": n / plain_ms.sum() * 1e3}


def run_batching(model, tok, args, results):
    prompts = [[tok.special_tokens[EOT]] + tok.encode(text) for text in OPENINGS]
    rate = batch_throughput(model, prompts, args.batch_sizes, args.batch_tokens, args.repeats)
    print(f"\n2. batched greedy generate(), {args.batch_tokens} new tokens per row, prompts of "
          f"{sorted(set(map(len, prompts)))} tokens left-padded")
    for B, r in rate.items():
        print(f"  batch {B:3d}: {r:7.1f} tokens/s ({r / rate[args.batch_sizes[0]]:.1f}x batch {args.batch_sizes[0]})")
    results["batching"] = {str(B): r for B, r in rate.items()}


def run_memory(args, results):
    rows = cache_memory(args.llama_layers, args.llama_heads, args.llama_kv_heads, args.llama_embd,
                        args.llama_block, args.llama_batch)
    print(f"\n3. kv-cache memory of a Llama (L{args.llama_layers}, {args.llama_heads} query heads, "
          f"C{args.llama_embd}, {args.llama_block} positions, batch {args.llama_batch}, float32)")
    for r in rows:
        print(f"  {r['attention']}: {r['n_kv_heads']:3d} kv heads, K/V buffers {tuple(r['shape'])} per layer, "
              f"{r['bytes']:>12,} bytes (MHA's / this: {rows[0]['bytes'] / r['bytes']:g})")
    big = big_model_bytes()
    print(f"  the same formula at a 7-8B model's size (32 layers, 32 query heads of 128, 4096 positions, 16-bit): "
          f"MHA {big['MHA'] / 2**30:.1f} GiB, 8 kv heads {big['GQA'] / 2**30:.2f} GiB per sequence")
    results["memory"] = {"rows": rows, "big_model_bytes": big}


def run_decoders(model, tok, args, results):
    prompt = [tok.special_tokens[EOT]] + tok.encode(args.prompt)
    rows = decoders(model, tok, prompt, args.max_new_tokens, args.num_beams, args.seed)
    print(f"\n4. decoders side by side: prompt {args.prompt!r}, up to {args.max_new_tokens} new tokens")
    lines = [f"# Decoders on {describe(model)}\n", f"Prompt: {args.prompt!r}, up to {args.max_new_tokens} new "
             f"tokens, seed {args.seed}.\n"]
    for r in rows:
        print(f"  [{r['decoder']}] mean log-prob {r['mean_logprob']:.3f}/token, {len(r['tokens'])} tokens")
        print(f"    {args.prompt}{r['text']}".replace("\n", " "))
        lines.append(f"## {r['decoder']} (mean log-prob {r['mean_logprob']:.3f} per token)\n\n"
                     f"{args.prompt}{r['text']}\n")
    with open(os.path.join(args.out, "outputs.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    results["decoders"] = rows


def run_speculative(model, tok, args, results):
    if not os.path.exists(os.path.join(args.draft, "config.json")):
        print(f"\n5. speculative decoding skipped: no draft model in {args.draft}")
        return
    draft, _ = load(args.draft)
    prompts = [[tok.special_tokens[EOT]] + tok.encode(text) for text in OPENINGS]
    spec = speculative_rows(model, draft, prompts, args.spec_tokens, args.num_draft, tok.special_tokens[EOT],
                            args.repeats, args.seed)
    print(f"\n5. speculative decoding: target {describe(model)}, draft {describe(draft)}, {len(prompts)} prompts, "
          f"{spec['tokens']} greedy tokens; plain greedy {spec['plain_tokens_per_s']:.1f} tokens/s")
    for r in spec["rows"]:
        print(f"  {r['num_draft']} draft tokens/round: {r['tokens_per_s']:6.1f} tokens/s ({r['speedup']:.2f}x), "
              f"acceptance {r['acceptance']:.2f} greedy / {r['acceptance_sampled']:.2f} at temperature 0.8, "
              f"{r['tokens_per_target_pass']:.2f} tokens per target pass, same tokens as plain: {r['same_tokens']}")
    plot_speculative(spec, os.path.join(args.out, "speculative.png"))
    results["speculative"] = spec


def main(argv: Optional[List[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--checkpoint", default=STORYTELLER, help="the model to decode with (a GPT-2 directory)")
    ap.add_argument("--draft", default=DRAFT, help="the small draft model for speculative decoding")
    ap.add_argument("--positions", type=int, default=0, help="greedy steps timed for the latency plot "
                    "(0: the whole context window)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement; the best one counts")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16], help="batch sizes for tokens/s")
    ap.add_argument("--batch-tokens", type=int, default=32, help="new tokens per row when timing batches")
    ap.add_argument("--llama-layers", type=int, default=4, help="layers of the Llama config for the memory table")
    ap.add_argument("--llama-heads", type=int, default=8, help="query heads of that Llama config")
    ap.add_argument("--llama-kv-heads", type=int, default=2, help="key/value heads of its GQA variant")
    ap.add_argument("--llama-embd", type=int, default=256, help="width C of that Llama config")
    ap.add_argument("--llama-block", type=int, default=1024, help="positions the memory table's cache holds")
    ap.add_argument("--llama-batch", type=int, default=8, help="rows the memory table's cache holds")
    ap.add_argument("--prompt", default="Once upon a time", help="the opening the decoders continue")
    ap.add_argument("--max-new-tokens", type=int, default=40, help="new tokens per decoder output")
    ap.add_argument("--num-beams", type=int, default=4, help="beams of the beam search")
    ap.add_argument("--spec-tokens", type=int, default=96, help="new tokens per prompt for speculative decoding")
    ap.add_argument("--num-draft", type=int, nargs="+", default=[1, 2, 3, 4, 6],
                    help="draft tokens per round to try in speculative decoding")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampled outputs")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the default)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="what the timings count: wall-clock "
                    "time, or cpu: this process's CPU time, which leaves out other jobs sharing the core (use it "
                    "with --threads 1 on a busy machine)")
    ap.add_argument("--out", default=os.path.join("out", "12_kv_cache"), help="folder for the plots and results")
    args = ap.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        tt.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    model, tok = load(args.checkpoint)
    print(f"model: {describe(model)} from {args.checkpoint}")
    results: dict = {"model": describe(model), "clock": args.clock, "threads": args.threads}
    run_latency(model, tok, args, results)
    run_batching(model, tok, args, results)
    run_memory(args, results)
    run_decoders(model, tok, args, results)
    run_speculative(model, tok, args, results)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    print(f"\nwrote {args.out}/latency.png, speculative.png, outputs.md and results.json")
    return results


if __name__ == "__main__":
    main()

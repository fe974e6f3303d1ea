"""Speed of tinytensor.tokenizer against Hugging Face `tokenizers` (and tiktoken), in one run.

On the TinyStories sample (examples/data/tinystories_sample.txt, 2 MB):
  - training a 4096-token byte-level BPE vocabulary with the GPT-2 split pattern: tinytensor's
    RegexTokenizer vs tokenizers' BpeTrainer with a ByteLevel pre-tokenizer (same pattern, same
    documents, "<|endoftext|>" as the special token). Seconds, best of --repeat; tokenizers uses its
    default thread pool (all cores), tinytensor one thread. Also the bytes/token each vocabulary gets.
  - encoding with GPT-2's vocabulary, single-threaded, in MB/s: tinytensor's GPT2Tokenizer vs
    tokenizers' BPE.from_file vs tiktoken, whose rank table is built offline from the same
    encoder.json (it is skipped if tiktoken is not installed). "cold" is the first call on a fresh
    tokenizer; "warm" the best of --repeat later calls (caches filled). All three must give the
    same ids, which is checked.
Ratios: time(tokenizers) / time(tinytensor), so above 1 means tinytensor is faster.

Run: python bench/bench_tokenizer.py [--repeat 3]      (about 30 s on 2 cores)
Not a test: nothing asserts on time. Timings on a shared 2-core machine are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter

from tinytensor import _C
from tinytensor.tokenizer import GPT2_SPLIT_PATTERN, GPT2Tokenizer, RegexTokenizer, bytes_to_unicode

try:
    import tokenizers
except ImportError:  # the oracle is optional; the bench then times tinytensor alone
    tokenizers = None
try:
    import tiktoken
except ImportError:
    tiktoken = None

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data")
ENCODER, MERGES = os.path.join(DATA, "gpt2", "encoder.json"), os.path.join(DATA, "gpt2", "vocab.bpe")
EOT = "<|endoftext|>"


def best(fn, repeat: int):
    """(best seconds, last result) over `repeat` calls."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def row(name: str, ours: float, theirs, tik=None, unit: str = "s", higher_is_better: bool = False) -> None:
    def cell(v):
        return f"{v:12.3f}" if v is not None else f"{'-':>12}"
    ratio = "-" if theirs is None else f"{(ours / theirs if higher_is_better else theirs / ours):.2f}x"
    print(f"{name:44s} {cell(ours)} {cell(theirs)} {cell(tik)} {ratio:>10}  ({unit})")


def bench_training(text: str, repeat: int) -> None:
    docs = [d for d in text.split(EOT)]

    def ours():
        tok = RegexTokenizer(GPT2_SPLIT_PATTERN)
        tok.train(text, 4096, special_tokens=[EOT])
        return tok
    t_ours, tok = best(ours, repeat)
    pattern = tok._compiled
    counts: Counter = Counter()
    for d in docs:
        counts.update(pattern.findall(d))
    words = [w.encode() for w in counts]
    t_loop, _ = best(lambda: _C.bpe_train(words, list(counts.values()), 4096 - 257), repeat)

    t_hf, hf = None, None
    if tokenizers is not None:
        def theirs():
            t = tokenizers.Tokenizer(tokenizers.models.BPE())
            t.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            trainer = tokenizers.trainers.BpeTrainer(
                vocab_size=4096, special_tokens=[EOT], show_progress=False,
                initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
            t.train_from_iterator(docs, trainer=trainer)
            return t
        t_hf, hf = best(theirs, repeat)
    row("train 4096 tokens, GPT-2 split (s)", t_ours, t_hf)
    row("  of which the C++ merge loop (s)", t_loop, None)
    print(f"  {len(counts):,} distinct chunks; the rest of the time is regex splitting and counting in Python")
    n_bytes = len(text.encode())
    ours_bpt = n_bytes / len(tok.encode(text, allowed_special="all"))
    hf_bpt = n_bytes / len(hf.encode(text).ids) if hf is not None else None
    row("  bytes per token on the training text", ours_bpt, hf_bpt, unit="bytes/token", higher_is_better=True)


def tiktoken_gpt2():
    """A tiktoken Encoding for GPT-2 built offline: rank of a token = its id in encoder.json."""
    with open(ENCODER, encoding="utf-8") as f:
        encoder = json.load(f)
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {bytes(to_byte[c] for c in s): i for s, i in encoder.items() if s != EOT}
    return tiktoken.Encoding(name="gpt2-offline", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={EOT: encoder[EOT]})


def bench_encoding(text: str, repeat: int) -> None:
    mb = len(text.encode()) / 1e6
    contenders = {"tinytensor": (lambda: GPT2Tokenizer.from_files(ENCODER, MERGES),
                                 lambda tok: tok.encode(text, allowed_special="all"))}
    if tokenizers is not None:
        def load_hf():
            t = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(ENCODER, MERGES))
            t.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
            t.add_special_tokens([EOT])
            return t
        contenders["tokenizers"] = (load_hf, lambda tok: tok.encode(text).ids)
    if tiktoken is not None:
        contenders["tiktoken"] = (tiktoken_gpt2, lambda tok: tok.encode(text, allowed_special="all"))
    cold, warm, ids = {}, {}, {}
    for name, (load, encode) in contenders.items():
        tok = load()
        cold[name], ids[name] = best(lambda: encode(tok), 1)
        warm[name], _ = best(lambda: encode(tok), repeat)
    for name in ids:
        assert ids[name] == ids["tinytensor"], f"{name} gives different GPT-2 ids"
    for label, t in (("cold", cold), ("warm", warm)):
        row(f"encode GPT-2 vocab, 1 thread, {label} (MB/s)", mb / t["tinytensor"],
            mb / t["tokenizers"] if "tokenizers" in t else None,
            mb / t["tiktoken"] if "tiktoken" in t else None, unit="MB/s", higher_is_better=True)
    print(f"  all give the same {len(ids['tinytensor']):,} ids on {mb:.2f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="timed calls per case; the best is reported")
    p.add_argument("--data", default=os.path.join(DATA, "tinystories_sample.txt"), help="UTF-8 text")
    args = p.parse_args()
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    print(f"{args.data}: {len(text.encode()):,} bytes; tokenizers {getattr(tokenizers, '__version__', 'absent')}, "
          f"tiktoken {getattr(tiktoken, '__version__', 'absent')}")
    print(f"{'case':44s} {'tinytensor':>12} {'tokenizers':>12} {'tiktoken':>12} {'ratio':>10}")
    bench_training(text, args.repeat)
    bench_encoding(text, args.repeat)


if __name__ == "__main__":
    main()

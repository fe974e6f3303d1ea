"""Chapter 06, tokenization: train a byte-level BPE vocabulary on TinyStories and compare it with GPT-2's.

What it teaches: a language model reads token ids, not characters. Byte-level BPE starts from the
256 byte values and repeatedly merges the most frequent adjacent pair into a new token, so common
words become single tokens and any text (emoji, CJK, typos) still encodes, as bytes at worst. A
split pattern (GPT-2's or GPT-4's regex) first cuts text into words, numbers, punctuation and
spaces, so merges stay inside those chunks. A vocabulary trained on the text it will read
compresses that text better than a general one: here, a 4096-token TinyStories vocabulary against
GPT-2's 50,257 tokens trained on web text.

Run:
    python examples/06_tokenizer.py                         # 4096 tokens, GPT-4 split pattern
    python examples/06_tokenizer.py --vocab-size 1024 --pattern gpt2

Prints: training time; the first and the last few merges; bytes per token on held-out stories
(raw bytes = 1.0, this vocabulary, GPT-2's); a bracketed token split of a sentence with each
vocabulary; then saves `<out>/tokenizer.bpe` (tinytensor's text format) and
`<out>/tokenizer.json` (loads in Hugging Face `tokenizers`).
Takes about 2 seconds on a 2-core CPU (most of it regex splitting and loading GPT-2's files).
The --seed picks the held-out story that is shown split; training itself is deterministic.
"""
import argparse
import os
import random
import time
from typing import List, Optional

from tinytensor.tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, GPT2Tokenizer, RegexTokenizer, Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
EOT = "<|endoftext|>"


def bracketed(tok: Tokenizer, text: str) -> str:
    """Text with every token in brackets: [Once][ upon][ a][ time]."""
    ids = tok.encode(text, allowed_special="all")
    return "".join(f"[{s}]" for s in tok.token_strings(ids))


def bytes_per_token(tok: Tokenizer, text: str) -> float:
    return len(text.encode("utf-8")) / max(1, len(tok.encode(text, allowed_special="all")))


def show_merges(tok: Tokenizer, first: int = 8, last: int = 4) -> None:
    ranks = list(range(min(first, len(tok.merges)))) + list(range(max(first, len(tok.merges) - last),
                                                                  len(tok.merges)))
    for r in ranks:
        a, b, new = tok.merges[r]
        parts = tok.token_strings([a, b, new])
        print(f"  merge {r + 1:5d}: {parts[0]!r:>12} + {parts[1]!r:<12} -> {parts[2]!r} (id {new})")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=4096,
                    help="size of the vocabulary to train, counting the 256 byte tokens, the learned merges and "
                    "the one special token <|endoftext|>; more tokens make shorter sequences")
    ap.add_argument("--pattern", choices=["gpt4", "gpt2"], default="gpt4",
                    help="which regex cuts the text into chunks (words, numbers, punctuation, spaces) before "
                    "merging, so that no token spans two chunks: GPT-4's or GPT-2's")
    ap.add_argument("--data", default=os.path.join(DATA, "tinystories_sample.txt"),
                    help="UTF-8 text to train on, stories separated by <|endoftext|>")
    ap.add_argument("--max-chars", type=int, default=0,
                    help="read only the first N characters of --data, for a quicker run (0 reads it all)")
    ap.add_argument("--holdout", type=float, default=0.1,
                    help="fraction of the stories (the last ones) kept out of training, on which compression "
                    "is measured")
    ap.add_argument("--seed", type=int, default=0,
                    help="picks which held-out story is shown split into tokens; training itself is deterministic")
    ap.add_argument("--out", default=os.path.join("out", "06_tokenizer"),
                    help="folder for tokenizer.bpe and tokenizer.json (a relative path starts from the current "
                    "directory; created if missing)")
    args = ap.parse_args(argv)

    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    if args.max_chars:
        text = text[:args.max_chars]
    stories = [s.strip() for s in text.split(EOT) if s.strip()]
    n_test = max(1, int(len(stories) * args.holdout))
    train_text = f"\n{EOT}\n".join(stories[:-n_test])
    test_text = f"\n{EOT}\n".join(stories[-n_test:])
    print(f"{len(stories)} stories: {len(train_text.encode()):,} bytes to train on, "
          f"{len(test_text.encode()):,} held out")

    tok = RegexTokenizer(GPT4_SPLIT_PATTERN if args.pattern == "gpt4" else GPT2_SPLIT_PATTERN)
    start = time.perf_counter()
    tok.train(train_text, args.vocab_size, special_tokens=[EOT])
    print(f"trained {tok} in {time.perf_counter() - start:.2f} s; merges, first and last:")
    show_merges(tok)

    gpt2 = GPT2Tokenizer.from_files(os.path.join(DATA, "gpt2", "encoder.json"),
                                    os.path.join(DATA, "gpt2", "vocab.bpe"))
    print("\nbytes per token on the held-out stories (higher = shorter sequences for the model):")
    print(f"  {'raw UTF-8 bytes':32s} {1.0:6.2f}   (vocab 256)")
    print(f"  {'this vocabulary':32s} {bytes_per_token(tok, test_text):6.2f}   (vocab {tok.vocab_size})")
    print(f"  {'GPT-2':32s} {bytes_per_token(gpt2, test_text):6.2f}   (vocab {gpt2.vocab_size})")

    story = random.Random(args.seed).choice(stories[-n_test:])
    sentence = story.split(". ")[0][:120] + "."
    print(f"\na held-out sentence, split into tokens:\n  ours:  {bracketed(tok, sentence)}\n"
          f"  GPT-2: {bracketed(gpt2, sentence)}")
    odd = "Tokenizers see bytes: naïve café, 日本語, 🙂!"
    print(f"and text it never saw (unseen characters fall back to bytes):\n  ours:  {bracketed(tok, odd)}")

    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.bpe"))
    tok.save_hf(os.path.join(args.out, "tokenizer.json"))
    print(f"\nsaved {os.path.join(args.out, 'tokenizer.bpe')} and tokenizer.json")


if __name__ == "__main__":
    main()

"""RegexTokenizer: split text into chunks with a regex first, then byte-level BPE inside each chunk;
plus special tokens with tiktoken's allowed_special / disallowed_special rules.

Why split: without it, BPE learns tokens like "dog." and "dog!" that glue words to punctuation,
and merges across word boundaries waste the vocabulary. GPT-2's pattern splits off contractions,
letter runs (with one leading space), number runs, punctuation runs and whitespace; GPT-4's
(cl100k) also caps number chunks at 3 digits and matches contractions case-insensitively.
Unicode classes (\\p{L}, \\p{N}) need the `regex` package; Python's `re` lacks them.

The pattern must match every character (both built-in ones do): text it skips is dropped, as in
tiktoken. Special tokens are matched literally before the split, so they never merge with text.
Leaves out: training on special tokens' text (they are cut out of training text).
"""
import re
from collections import Counter
from itertools import chain
from typing import Collection, Dict, FrozenSet, List, Sequence, Union

import regex

from .base import Tokenizer
from .common import GPT4_SPLIT_PATTERN

AllowedSpecial = Union[str, Collection[str]]      # "all" or a set of special-token strings


class RegexTokenizer(Tokenizer):
    """Byte-level BPE inside regex chunks (GPT-4's split pattern by default) with special tokens."""

    def __init__(self, pattern: str = GPT4_SPLIT_PATTERN, special_tokens: Sequence[str] = ()) -> None:
        super().__init__()
        self._set_pattern(pattern)
        self.register_special_tokens(special_tokens)

    def _set_pattern(self, pattern: str) -> None:
        try:
            self._compiled = regex.compile(pattern)
        except (regex.error, TypeError) as e:
            raise ValueError(f"RegexTokenizer: bad split pattern {pattern!r}: {e}") from None
        self.pattern = pattern
        self._splitters: Dict[FrozenSet[str], "re.Pattern[str]"] = {}

    def _set_parts(self, pattern, byte_ids, specials, merges) -> None:
        self._set_pattern(pattern)
        super()._set_parts(pattern, byte_ids, specials, merges)

    def register_special_tokens(self, tokens: Union[Sequence[str], Dict[str, int]]) -> None:
        """Adds special tokens: a list gets the next free ids in order; a dict gives each its id."""
        if not isinstance(tokens, dict):
            tokens = {t: None for t in tokens}
        taken, new = set(self.vocab), {}
        for text, i in tokens.items():
            if not isinstance(text, str) or not text:
                raise ValueError(f"register_special_tokens: a special token must be a non-empty string, got {text!r}")
            if text in self.special_tokens or text in new:
                raise ValueError(f"register_special_tokens: {text!r} is already a special token")
            if i is not None and (not isinstance(i, int) or i < 0 or i in taken):
                raise ValueError(f"register_special_tokens: id {i!r} for {text!r} is taken or invalid")
            new[text] = i
            taken.add(i)
        for text, i in new.items():     # explicit ids first reserved above, then the next free ones
            new[text] = max(t for t in taken if t is not None) + 1 if i is None else i
            taken.add(new[text])
        self.special_tokens.update(new)
        self._rebuild()

    # ----- training -----

    def train(self, text: str, vocab_size: int, special_tokens: Sequence[str] = (), verbose: bool = False) -> None:
        """Learns merges from text, replacing any merges and special tokens this tokenizer had.

        vocab_size counts everything: 256 bytes + new tokens + special_tokens (which get the last
        ids). Special-token strings are cut out of the text first, so no merge crosses them.
        Chunks are counted once each (deduplicated, weighted by frequency) before the C++ loop.
        """
        specials = list(dict.fromkeys(special_tokens))
        n_new = vocab_size - 256 - len(specials)
        if n_new < 0:
            raise ValueError(f"train: vocab_size {vocab_size} < 256 bytes + {len(specials)} special tokens")
        pieces = self._splitter(frozenset(specials)).split(text) if specials else [text]
        counts: Counter = Counter()
        findall = self._compiled.findall
        for piece in pieces[::2]:            # even entries are text, odd ones the specials found
            counts.update(findall(piece))
        words = [w.encode("utf-8", errors="surrogatepass") for w in counts]
        self.special_tokens = {}
        self._train_chunks(words, list(counts.values()), n_new, verbose)
        self.register_special_tokens(specials)

    # ----- encoding -----

    def encode_ordinary(self, text: str) -> List[int]:
        """Encodes text ignoring special tokens (their text is encoded like any other text)."""
        return list(chain.from_iterable(map(self._cache.__getitem__, self._compiled.findall(text))))

    def encode(self, text: str, allowed_special: AllowedSpecial = frozenset(),
               disallowed_special: AllowedSpecial = "all") -> List[int]:
        """Encodes text; special tokens follow tiktoken's rules.

        allowed_special: "all" or the special-token strings that become their special ids.
        disallowed_special: "all" (every special token not allowed) or a set: if any of these
        strings occurs in the text, ValueError names it. disallowed_special=() encodes special
        tokens' text as ordinary text. So by default, text containing "<|endoftext|>" raises.
        """
        allowed = self._allowed(allowed_special)
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        else:
            disallowed = set(disallowed_special)
        found = [(text.find(t), t) for t in disallowed if t in text]
        if found:
            token = min(found)[1]
            raise ValueError(f"encode: the text contains the special token {token!r}, which is disallowed; pass "
                             f"allowed_special={{{token!r}}} to encode it as a special token, or "
                             f"disallowed_special=() to encode it as ordinary text")
        if not allowed:
            return self.encode_ordinary(text)
        parts = self._splitter(frozenset(allowed)).split(text)
        ids: List[int] = []
        for k, part in enumerate(parts):
            if k % 2:
                ids.append(self.special_tokens[part])
            elif part:
                ids += self.encode_ordinary(part)
        return ids

    def _allowed(self, allowed_special: AllowedSpecial) -> set:
        if allowed_special == "all":
            return set(self.special_tokens)
        allowed = set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(f"encode: allowed_special has {sorted(unknown)}, which are not special tokens of this "
                             f"tokenizer (it has {sorted(self.special_tokens)})")
        return allowed

    def _splitter(self, specials: FrozenSet[str]) -> "re.Pattern[str]":
        """A compiled regex whose split() alternates text and special tokens (longest match first)."""
        if specials not in self._splitters:
            alternatives = "|".join(re.escape(s) for s in sorted(specials, key=lambda s: (-len(s), s)))
            self._splitters[specials] = re.compile(f"({alternatives})")
        return self._splitters[specials]

    def _safe_cut(self, text: str, kw: dict) -> int:
        """Right after the last allowed special token in text (encode() cuts there anyway)."""
        allowed = self._allowed(kw.get("allowed_special", frozenset()))
        cut = 0
        if allowed:
            for m in self._splitter(frozenset(allowed)).finditer(text):
                cut = m.end()
        return cut

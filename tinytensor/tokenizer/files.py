"""Reading and checking tokenizer files: tinytensor's own format (described in base.py) and Hugging
Face's tokenizer.json for byte-level BPE. Writing the tinytensor format is Tokenizer.save.

Every reader returns plain parts (pattern, byte_ids, specials, merges) after checking that they
form a consistent model: each merge joins tokens that exist, every id has distinct bytes, special
ids are free. Problems raise ValueError naming the file and the line (tinytensor format) or the
line / JSON key (tokenizer.json).

The checks on ids, in both formats: every id (byte, merge result, special token) is an integer in
[0, 2**31) (the C++ encoder's int32 ids); special tokens are distinct, non-empty strings with ids
of their own; and the vocabulary may have holes, but the largest id must stay below twice the
number of tokens defined (an id "beyond the vocabulary", such as one special token at 10**9 in a
300-token file, would make vocab_size and every embedding table sized from it absurd).

Leaves out: HF files with normalizers, byte fallback, word prefixes/suffixes, dropout or
add_prefix_space (they tokenize differently; they are refused).
"""
import json
from typing import Collection, Dict, List, Optional, Tuple

import regex

from tinytensor.jsonfile import read_json

from .common import FORMAT_VERSION, GPT2_SPLIT_PATTERN, Merge, PathLike, bytes_to_unicode

Parts = Tuple[Optional[str], List[int], Dict[str, int], List[Merge]]
MAX_ID = 2**31 - 1          # ids are int32 in ops_c/bpe.cpp


def is_token_id(i) -> bool:
    return isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_ID


class _Model:
    """Builds id -> bytes while checking each step; .error(msg) names where the problem is."""

    def __init__(self, byte_ids: List[int], where):
        self.where = where
        if not all(is_token_id(i) for i in byte_ids) or len(set(byte_ids)) != 256:
            raise where(f"the 256 byte ids must be distinct integers in [0, {MAX_ID}]")
        self.vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}
        self.ids = {v: i for i, v in self.vocab.items()}
        self.pairs = set()

    def merge(self, a: int, b: int, new: int, where) -> None:
        for i in (a, b):
            if i not in self.vocab:
                raise where(f"merge uses token {i}, which no earlier line defines")
        if (a, b) in self.pairs:
            raise where(f"the pair ({a}, {b}) already has a merge rule")
        joined = self.vocab[a] + self.vocab[b]
        if self.ids.get(joined, new) != new:
            raise where(f"the merged bytes {joined!r} already are token {self.ids[joined]}")
        if new in self.vocab and self.vocab[new] != joined:
            raise where(f"id {new} is already taken by {self.vocab[new]!r}")
        if not is_token_id(new):
            raise where(f"id {new!r} is not an integer in [0, {MAX_ID}]")
        self.vocab[new], self.ids[joined] = joined, new
        self.pairs.add((a, b))

    def special(self, text, i, specials: Dict[str, int], where) -> None:
        """Checks one special token (text, id) against the tokens and the specials so far."""
        if not isinstance(text, str) or not text:
            raise where(f"a special token must be a non-empty string, got {text!r}")
        if text in specials:
            raise where(f"the special token {text!r} appears twice")
        if not is_token_id(i):
            raise where(f"special token {text!r}: id {i!r} is not an integer in [0, {MAX_ID}]")
        if i in self.vocab or i in specials.values():
            raise where(f"special token {text!r}: id {i} is already used")

    def check_extent(self, specials: Dict[str, int], where) -> None:
        """The largest id must be below twice the number of tokens (see the module docstring).

        where(msg, top) gets the offending id too, so a reader can name the line that defines it.
        """
        n = len(self.vocab) + len(specials)
        top = max([*self.vocab, *specials.values()])
        if top >= 2 * n:
            raise where(f"id {top} is beyond the vocabulary: {n} tokens, so ids must be < {2 * n}", top)


# ----- tinytensor-bpe v1 -----

class _Lines:
    """A file's lines with a cursor; error() gives 'path:line: message'."""

    def __init__(self, path: PathLike):
        self.path, self.n = path, 0
        with open(path, "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
            raise ValueError(f"{path}:{line}: not UTF-8 text") from None
        self.lines = text.split("\n")
        if self.lines[-1] == "":
            self.lines.pop()

    def error(self, msg: str, line: Optional[int] = None) -> ValueError:
        return ValueError(f"{self.path}:{self.n if line is None else line}: {msg}")

    def next(self, what: str) -> str:
        if self.n >= len(self.lines):
            raise self.error(f"the file ends where {what} should be", self.n + 1)
        self.n += 1
        return self.lines[self.n - 1]

    def keyword(self, key: str) -> str:
        word, _, rest = self.next(f"a '{key}' line").partition(" ")
        if word != key:
            raise self.error(f"expected a '{key} ...' line, got {self.lines[self.n - 1][:60]!r}")
        return rest

    def ints(self, text: str, count: int, what: str) -> List[int]:
        fields = text.split()
        if len(fields) != count or not all(f.isdigit() and f.isascii() for f in fields):
            raise self.error(f"expected {what}: {count} integers >= 0, got {text[:60]!r}")
        return [int(f) for f in fields]

    def json_value(self, text: str, what: str):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise self.error(f"expected {what} as JSON, got {text[:60]!r}") from None


BpeFile = Tuple[str, Optional[str], List[int], Dict[str, int], List[Merge]]   # class name, then Parts


def read_tinytensor_bpe(path: PathLike, classes: Collection[str]) -> BpeFile:
    """Parses and checks a file written by Tokenizer.save: (class name, pattern, bytes, specials, merges).

    classes: the tokenizer class names the file may name (Tokenizer's registry).
    """
    f = _Lines(path)
    if f.next("the version line") != FORMAT_VERSION:
        raise f.error(f"expected the version line {FORMAT_VERSION!r}, got {f.lines[0][:60]!r}")
    name = f.keyword("class")
    if name not in classes:
        raise f.error(f"unknown tokenizer class {name!r} (known: {sorted(classes)})")
    pattern = f.json_value(f.keyword("pattern"), "a string or null")
    needs_pattern = name != "BasicTokenizer"
    if (pattern is not None or needs_pattern) and needs_pattern != isinstance(pattern, str):
        raise f.error(f"{name} needs {'a split pattern string' if needs_pattern else 'pattern null'}")
    if pattern is not None:
        try:
            regex.compile(pattern)
        except regex.error as e:
            raise f.error(f"the split pattern does not compile: {e}") from None
    rest = f.keyword("bytes")
    byte_ids = list(range(256)) if rest == "identity" else f.ints(rest, 256, "'identity' or 256 byte ids")
    model = _Model(byte_ids, f.error)
    specials, special_lines = {}, {}
    for _ in range(f.ints(f.keyword("specials"), 1, "the number of special tokens")[0]):
        id_text, _, text = f.next("a special-token line").partition(" ")
        i, text = f.ints(id_text, 1, "a special token's id")[0], f.json_value(text, "a special token's string")
        model.special(text, i, specials, f.error)
        specials[text], special_lines[i] = i, f.n
    merges, merge_lines = [], {}
    for _ in range(f.ints(f.keyword("merges"), 1, "the number of merges")[0]):
        a, b, new = f.ints(f.next("a merge line").split("#", 1)[0], 3, "a merge 'a b new-id'")
        model.merge(a, b, new, f.error)
        merges.append((a, b, new))
        merge_lines[new] = f.n
    if f.n < len(f.lines):
        raise f.error("unexpected text after the last merge", f.n + 1)
    for i, line in special_lines.items():
        if i in model.vocab:
            raise f.error(f"special token id {i} is also an ordinary token's id", line)
    id_lines = {**{i: 4 for i in byte_ids}, **merge_lines, **special_lines}
    model.check_extent(specials, lambda msg, top: f.error(msg, id_lines[top]))
    return name, pattern, byte_ids, specials, merges


# ----- Hugging Face tokenizer.json -----

def _byte_level(use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def to_hf_json(tok) -> dict:
    """The tokenizer.json dict for a Tokenizer: a BPE model over GPT-2's byte-to-unicode strings."""
    to_unicode = bytes_to_unicode()
    special_ids = set(tok.special_tokens.values())
    text = {i: "".join(to_unicode[c] for c in b) for i, b in tok.vocab.items() if i not in special_ids}
    if tok.pattern is None:
        pre = _byte_level(False)
    else:
        split = {"type": "Split", "pattern": {"Regex": tok.pattern}, "behavior": "Isolated", "invert": False}
        pre = {"type": "Sequence", "pretokenizers": [split, _byte_level(False)]}
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for s, i in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])]
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
             "vocab": {s: i for i, s in sorted(text.items())},
             "merges": [f"{text[a]} {text[b]}" for a, b, _ in tok.merges]}   # byte-level text has no spaces
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": pre, "post_processor": None, "decoder": _byte_level(True), "model": model}


def _hf_pattern(pre, err) -> Optional[str]:
    """The split pattern a byte-level pre_tokenizer applies (None: no split)."""
    def byte_level(p) -> bool:
        if not isinstance(p, dict) or p.get("type") != "ByteLevel" or p.get("add_prefix_space", True):
            raise err("pre_tokenizer", "expected ByteLevel with add_prefix_space false")
        return p.get("use_regex", True)
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers")
        if not isinstance(steps, list) or len(steps) != 2:
            raise err("pre_tokenizer", "expected a Sequence of Split and ByteLevel")
        split, rest = steps
        pattern = split.get("pattern", {}).get("Regex") if isinstance(split, dict) else None
        if (not isinstance(pattern, str) or split.get("type") != "Split" or split.get("behavior") != "Isolated"
                or split.get("invert", False) or byte_level(rest)):
            raise err("pre_tokenizer", "expected Split(Regex, Isolated) then ByteLevel(use_regex false)")
        return pattern
    return GPT2_SPLIT_PATTERN if byte_level(pre) else None


def read_hf_json(path: PathLike) -> Parts:
    """Parses and checks a byte-level BPE tokenizer.json: (pattern, byte_ids, specials, merges)."""
    def err(key: str, msg: str) -> ValueError:
        return ValueError(f"{path}: {key}: {msg}")
    data = read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
        raise err("model", "expected a BPE model")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key) is not None:
            raise err(f"model.{key}", "must be null for byte-level BPE")
    if model.get("byte_fallback") or model.get("ignore_merges") or data.get("normalizer") is not None:
        raise err("model", "byte_fallback, ignore_merges and normalizers are not supported")
    pattern = _hf_pattern(data.get("pre_tokenizer"), err)
    vocab, merges_in = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not isinstance(merges_in, list):
        raise err("model", "expected 'vocab' (object) and 'merges' (list)")
    to_unicode = bytes_to_unicode()
    if any(to_unicode[b] not in vocab for b in range(256)):
        raise err("model.vocab", "every byte needs a token")
    byte_ids = [vocab[to_unicode[b]] for b in range(256)]
    model_check = _Model(byte_ids, lambda msg: err("model.vocab", msg))
    merges = []
    for k, m in enumerate(merges_in):
        pair = m.split(" ") if isinstance(m, str) else m
        where = f"model.merges[{k}]"
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise err(where, f"expected two token strings, got {m!r}")
        a, b = pair
        if a not in vocab or b not in vocab or a + b not in vocab:
            raise err(where, f"{a!r}, {b!r} or {a + b!r} is not in model.vocab")
        model_check.merge(vocab[a], vocab[b], vocab[a + b], lambda msg: err(where, msg))
        merges.append((vocab[a], vocab[b], vocab[a + b]))
    specials = {}
    for k, t in enumerate(data.get("added_tokens") or []):
        if not isinstance(t, dict) or "content" not in t or "id" not in t:
            raise err(f"added_tokens[{k}]", "expected an object with 'id' and 'content'")
        model_check.special(t["content"], t["id"], specials, lambda msg: err(f"added_tokens[{k}]", msg))
        specials[t["content"]] = t["id"]
    model_check.check_extent(specials, lambda msg, top: err("model.vocab", msg))
    return pattern, byte_ids, specials, merges

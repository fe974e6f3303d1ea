"""The Tokenizer base class: the vocabulary, the merges and the special tokens, and everything that
only needs those (decoding, file I/O, encoding files and streams). Subclasses add how text becomes
chunks (basic.py: all of it is one chunk; regex.py: a split pattern and special tokens) and
gpt2.py adds loading OpenAI's GPT-2 files.

The model, in one paragraph: every byte 0..255 starts as one token (`byte_ids[b]`; the identity
for trained tokenizers). `merges` is a list of rules (a, b, new) in rank order: "wherever tokens a
and b are adjacent, write token new". Encoding a chunk applies the lowest-ranked applicable rule,
leftmost first, until none applies (the C++ loop in ops_c/bpe.cpp). Decoding looks up each id's
bytes. Special tokens (like "<|endoftext|>") are strings with their own ids that never take part
in merges. `vocab_size` is the largest id plus one (the size of a model's embedding table).

This package sits in tinytensor's application layer: it imports nothing from tinytensor except the
compiled extension `tinytensor._C`. Its modules import in one direction: common.py (shared constants)
<- files.py (reading, checking) <- base.py <- basic.py, regex.py <- gpt2.py.
Leaves out: normalization (NFC etc.), byte fallback, dropout.

Two file formats: Hugging Face's tokenizer.json, and tinytensor's own, a text file (files.py reads
and checks both; save() writes this one):

    tinytensor-bpe v1                   the version line
    class RegexTokenizer                BasicTokenizer | RegexTokenizer | GPT2Tokenizer
    pattern "<JSON string>"             the split pattern, or null (BasicTokenizer)
    bytes identity                      or "bytes" and 256 ids: the token id of each byte
    specials 1                          how many special-token lines follow
    4095 "<|endoftext|>"                id and JSON string
    merges 3839                         how many merge lines follow, in rank order
    116 104 256 # "th"                  a b new-id; after '#' a comment (the new token's bytes)

A malformed file raises ValueError naming the file and the line; nothing is written on failure.
"""
import codecs
import contextlib
import io
import json
import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from tinytensor import _C

from .common import FORMAT_VERSION, Merge, PathLike
from .files import read_hf_json, read_tinytensor_bpe, to_hf_json


def show_bytes(b: bytes) -> str:
    """A token's bytes as readable text: UTF-8 where valid, \\xNN escapes elsewhere."""
    return b.decode("utf-8", errors="backslashreplace")


class _ChunkCache(dict):
    """chunk string -> its token ids; a miss runs the C++ merge loop (dict.__missing__)."""

    def __init__(self, encoder, max_size: int = 1 << 18):
        super().__init__()
        self.encoder, self.max_size = encoder, max_size

    def __missing__(self, chunk: str) -> List[int]:
        if len(self) >= self.max_size:      # keeps memory bounded on endless streams
            self.clear()
        ids = self[chunk] = self.encoder.encode(chunk.encode("utf-8", errors="surrogatepass"))
        return ids


class Tokenizer:
    """Byte-level BPE: owns byte_ids, merges, special tokens and the derived vocab (id -> bytes)."""

    pattern: Optional[str] = None       # the split pattern (RegexTokenizer); None: no split
    _registry: Dict[str, type] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Tokenizer._registry[cls.__name__] = cls     # so load() can rebuild the class a file names

    def __init__(self) -> None:
        self.byte_ids: List[int] = list(range(256))
        self.merges: List[Merge] = []
        self.special_tokens: Dict[str, int] = {}
        self._rebuild()

    # ----- the derived tables -----

    def _rebuild(self) -> None:
        """Recomputes vocab and the C++ encoder after byte_ids, merges or specials changed."""
        vocab = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for a, b, new in self.merges:
            vocab[new] = vocab[a] + vocab[b]
        for text, i in self.special_tokens.items():
            vocab[i] = text.encode("utf-8")
        self.vocab: Dict[int, bytes] = vocab
        self._vocab_size = max(vocab) + 1
        self.inverse_special_tokens = {i: s for s, i in self.special_tokens.items()}
        self._encoder = _C.BPEEncoder(self.byte_ids, self.merges)
        self._cache = _ChunkCache(self._encoder)

    @property
    def vocab_size(self) -> int:
        """The largest token id plus one."""
        return self._vocab_size

    def _train_chunks(self, words: List[bytes], weights: List[int], n_new: int, verbose: bool) -> None:
        """Learns up to n_new new tokens from deduplicated chunks (C++ loop) and installs them.

        Ties: the highest count wins; among equal counts the smallest pair (a, b) of token ids.
        Stops early, with fewer tokens, when no adjacent pair is left in the text.
        """
        merges = _C.bpe_train(words, weights, n_new)
        self.byte_ids = list(range(256))
        self.merges = [(a, b, new) for a, b, new, _ in merges]
        self._rebuild()
        if verbose:
            for rank, (a, b, new, count) in enumerate(merges):
                print(f"merge {rank + 1}/{len(merges)}: ({a}, {b}) -> {new} {show_bytes(self.vocab[new])!r} "
                      f"had {count} occurrences")

    # ----- encoding (subclasses define encode and encode_ordinary) -----

    def encode(self, text: str) -> List[int]:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str], **kw) -> List[List[int]]:
        """encode() of each text (single-threaded; the chunk cache is shared)."""
        return [self.encode(t, **kw) for t in texts]

    def encode_iterable(self, docs: Iterable[str], progress: bool = False, **kw) -> Iterator[List[int]]:
        """Yields encode(doc, **kw) for each document of a stream, with a tqdm bar if progress."""
        for doc in _maybe_tqdm(docs, progress, unit="doc"):
            yield self.encode(doc, **kw)

    def _safe_cut(self, text: str, kw: dict) -> int:
        """An index where text can be cut without changing its encoding (0: none known)."""
        return 0

    def encode_file(self, path: PathLike, progress: bool = False, block_size: int = 1 << 20, **kw) -> List[int]:
        """encode() of a UTF-8 file's whole text, read in blocks (a tqdm bar in bytes if progress).

        The result equals encode(whole text, **kw): blocks are cut only right after an allowed
        special token, where encode() cuts anyway. Without such cuts the text accumulates in memory.
        """
        ids: List[int] = []
        decoder = codecs.getincrementaldecoder("utf-8")()
        pending = ""
        with open(path, "rb") as f, _bytes_bar(os.path.getsize(path), progress) as bar:
            while True:
                block = f.read(block_size)
                pending += decoder.decode(block, final=not block)
                cut = len(pending) if not block else self._safe_cut(pending, kw)
                if cut:
                    ids += self.encode(pending[:cut], **kw)
                    pending = pending[cut:]
                if bar is not None:
                    bar.update(len(block))
                if not block:
                    return ids

    # ----- decoding -----

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for. Unknown ids raise ValueError."""
        ids = ids if isinstance(ids, list) else list(ids)
        try:
            return b"".join([self.vocab[i] for i in ids])
        except (KeyError, TypeError):
            for i in ids:
                try:
                    self.vocab[i]
                except (KeyError, TypeError):
                    raise ValueError(f"decode: unknown token id {i!r} (vocab_size {self.vocab_size})") from None
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids; bytes that are not valid UTF-8 become U+FFFD (never an exception)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int]) -> List[str]:
        """Each id's bytes as readable text (for showing splits; partial UTF-8 shows as \\xNN)."""
        return [show_bytes(self.decode_bytes([i])) for i in ids]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={len(self.special_tokens)})")

    # ----- tinytensor's file format -----

    def save(self, path: PathLike) -> None:
        """Writes the format described in this module's docstring (atomically: temp file + rename)."""
        out = io.StringIO()
        out.write(f"{FORMAT_VERSION}\nclass {type(self).__name__}\npattern {json.dumps(self.pattern)}\n")
        if self.byte_ids == list(range(256)):
            out.write("bytes identity\n")
        else:
            out.write("bytes " + " ".join(map(str, self.byte_ids)) + "\n")
        out.write(f"specials {len(self.special_tokens)}\n")
        for text, i in sorted(self.special_tokens.items(), key=lambda kv: kv[1]):
            out.write(f"{i} {json.dumps(text)}\n")
        out.write(f"merges {len(self.merges)}\n")
        for a, b, new in self.merges:
            out.write(f"{a} {b} {new} # {json.dumps(show_bytes(self.vocab[new]))}\n")
        _write_atomic(path, out.getvalue())

    @classmethod
    def load(cls, path: PathLike) -> "Tokenizer":
        """Reads a file written by save(); returns the class the file names (a subclass of cls)."""
        name, pattern, byte_ids, specials, merges = read_tinytensor_bpe(path, Tokenizer._registry)
        klass = Tokenizer._registry[name]
        if not issubclass(klass, cls):
            raise ValueError(f"{path}:2: the file holds a {name}, not a {cls.__name__}")
        return klass._from_parts(pattern, byte_ids, specials, merges)

    @classmethod
    def _from_parts(cls, pattern, byte_ids, specials, merges) -> "Tokenizer":
        tok = cls.__new__(cls)
        tok._set_parts(pattern, byte_ids, specials, merges)
        return tok

    def _set_parts(self, pattern, byte_ids, specials, merges) -> None:
        self.byte_ids, self.merges, self.special_tokens = list(byte_ids), list(merges), dict(specials)
        self._rebuild()

    # ----- Hugging Face tokenizer.json (byte-level BPE) -----

    def save_hf(self, path: PathLike) -> None:
        """Writes a tokenizer.json that Hugging Face `tokenizers` loads with Tokenizer.from_file."""
        _write_atomic(path, json.dumps(to_hf_json(self), ensure_ascii=False, indent=1))

    @classmethod
    def load_hf(cls, path: PathLike) -> "Tokenizer":
        """Reads a byte-level BPE tokenizer.json (as save_hf writes it, or GPT-2's)."""
        pattern, byte_ids, specials, merges = read_hf_json(path)
        klass = Tokenizer._registry["RegexTokenizer" if pattern is not None else "BasicTokenizer"]
        return klass._from_parts(pattern, byte_ids, specials, merges)


def _write_atomic(path: PathLike, text: str) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _maybe_tqdm(it, progress: bool, **kw):
    if not progress:
        return it
    try:
        from tqdm import tqdm
    except ImportError:         # tqdm is an optional extra: no bar then
        return it
    return tqdm(it, **kw)


@contextlib.contextmanager
def _bytes_bar(total: int, progress: bool):
    """A tqdm bar over `total` bytes when progress (and tqdm) is available, else None."""
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True)
        except ImportError:
            pass
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()

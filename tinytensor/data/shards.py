"""Token shards: a text corpus tokenized once into uint16 files that training reads with np.memmap.

    index = prepare_shards("stories.txt", tok, "out/data")      # streams the file, tqdm bar, bounded memory
    index = load_index("out/data"); stats = corpus_stats("out/data", "train")

Layout of a prepared directory:
    index.json               what is where (written last: a directory without it is not prepared)
    train_000000.bin ...     token ids, raw little-endian uint16, documents back to back
    train_000000.docs.npy    int64 offset of each document's first token (its BOS) in that shard
    val_000000.bin ...       the same for the validation split

Documents are the texts between separator lines (`<|endoftext|>` in TinyStories). Each document is
written as [BOS] + tokens, with BOS the separator's special-token id, so a model sees where every story
starts, and generation can begin from BOS alone. The validation split is the last val_fraction of the
documents (counted in a first pass over the file, so nothing is held in memory). Shards end at document
boundaries unless one document alone is longer than a shard. Memory stays bounded by one shard buffer.
Left out: parallel tokenization, compression, vocabularies above 65,535 tokens (uint16).
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Iterator, Optional

import numpy as np

from ..jsonfile import read_json

INDEX_FILE = "index.json"
FORMAT = "tinytensor-token-shards"


def iter_documents(path: str, separator: str = "<|endoftext|>") -> Iterator[str]:
    """The documents of a UTF-8 text file, split at `separator`, stripped, empty ones skipped (streaming)."""
    parts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if separator in line:
                pieces = line.split(separator)
                for piece in pieces[:-1]:
                    parts.append(piece)
                    doc = "".join(parts).strip()
                    parts = []
                    if doc:
                        yield doc
                line = pieces[-1]
            parts.append(line)
    doc = "".join(parts).strip()
    if doc:
        yield doc


def _progress(total: int, progress: bool, desc: str):
    if progress:
        try:
            from tqdm import tqdm
            return tqdm(total=total, unit="doc", desc=desc)
        except ImportError:  # tqdm is an optional extra
            pass
    return None


class _ShardWriter:
    """Fills a uint16 buffer of shard_tokens tokens and writes it out (temp file + rename) when full."""

    def __init__(self, out_dir: str, split: str, shard_tokens: int):
        self.out_dir, self.split, self.cap = out_dir, split, shard_tokens
        self.buf = np.empty(shard_tokens, dtype=np.uint16)
        self.n, self.starts, self.shards = 0, [], []

    def add(self, ids: np.ndarray) -> None:
        if self.n and self.n + len(ids) > self.cap:  # keep documents whole when they fit in a shard
            self.flush()
        self.starts.append(self.n)
        while len(ids):
            take = min(len(ids), self.cap - self.n)
            self.buf[self.n:self.n + take] = ids[:take]
            self.n, ids = self.n + take, ids[take:]
            if len(ids):
                self.flush()

    def flush(self) -> None:
        if not self.n:
            return
        name = f"{self.split}_{len(self.shards):06d}"
        _atomic_bytes(os.path.join(self.out_dir, name + ".bin"), self.buf[:self.n].astype("<u2").tobytes())
        with open(os.path.join(self.out_dir, name + ".docs.npy.tmp"), "wb") as f:
            np.save(f, np.asarray(self.starts, dtype=np.int64))
        os.replace(os.path.join(self.out_dir, name + ".docs.npy.tmp"), os.path.join(self.out_dir, name + ".docs.npy"))
        self.shards.append({"file": name + ".bin", "docs_file": name + ".docs.npy", "tokens": int(self.n),
                            "docs": len(self.starts)})
        self.n, self.starts = 0, []


def _atomic_bytes(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def prepare_shards(source, tokenizer, out_dir: str, val_fraction: float = 0.1, separator: str = "<|endoftext|>",
                   shard_tokens: int = 50_000_000, progress: bool = True, meta: Optional[dict] = None) -> dict:
    """Tokenize the documents of `source` (a text file path, or a list of strings) into shards; return the index.

    tokenizer needs encode_ordinary(text) -> ids and special_tokens[separator] -> the BOS id.
    meta is stored in the index as given (e.g. the tokenizer's file name), for callers that cache.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"prepare_shards: val_fraction must be in [0, 1), got {val_fraction}")
    if separator not in tokenizer.special_tokens:
        raise ValueError(f"prepare_shards: the tokenizer has no special token {separator!r} to start documents with")
    if tokenizer.vocab_size > 65536:
        raise ValueError(f"prepare_shards: vocab_size {tokenizer.vocab_size} does not fit uint16 shards")
    bos = tokenizer.special_tokens[separator]
    docs: Iterable[str]
    if isinstance(source, (str, os.PathLike)):
        n_docs = sum(1 for _ in iter_documents(source, separator))  # first pass: only counts
        docs = iter_documents(source, separator)
    else:
        docs, n_docs = list(source), len(source)
    n_val = int(round(n_docs * val_fraction))
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(os.path.join(out_dir, INDEX_FILE)):
        os.unlink(os.path.join(out_dir, INDEX_FILE))  # the directory is unprepared until the new index lands
    writers = {"train": _ShardWriter(out_dir, "train", shard_tokens), "val": _ShardWriter(out_dir, "val", shard_tokens)}
    bar = _progress(n_docs, progress, "tokenizing")
    for i, doc in enumerate(docs):
        writers["train" if i < n_docs - n_val else "val"].add(np.asarray([bos] + tokenizer.encode_ordinary(doc)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    index = {"format": FORMAT, "version": 1, "dtype": "uint16", "vocab_size": tokenizer.vocab_size, "bos": bos,
             "separator": separator, "val_fraction": val_fraction, "meta": meta or {}, "splits": {}}
    for split, w in writers.items():
        w.flush()
        index["splits"][split] = {"shards": w.shards, "tokens": sum(s["tokens"] for s in w.shards),
                                  "docs": sum(s["docs"] for s in w.shards)}
    _atomic_bytes(os.path.join(out_dir, INDEX_FILE), json.dumps(index, indent=1).encode("utf-8"))
    return index


def load_index(data_dir: str) -> dict:
    """The index of a prepared directory, checked against the shard files (ValueError when they disagree)."""
    path = os.path.join(data_dir, INDEX_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no index: prepare the directory with prepare_shards first")
    index = read_json(path)
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != 1:
        raise ValueError(f"{path}: not a {FORMAT} index (format/version missing or unknown)")
    _check_index(index, path)
    for split in index["splits"].values():
        for shard in split["shards"]:
            file = os.path.join(data_dir, shard["file"])
            if not os.path.exists(file) or os.path.getsize(file) != 2 * shard["tokens"]:
                raise ValueError(f"{file}: missing or not {shard['tokens']} uint16 tokens as {path} says")
    return index


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_name(name, path: str, where: str) -> None:
    """A shard file name must be a relative path inside the dataset's folder: not absolute, no '..'."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ValueError(f"{path}: {where} must be a file name inside the dataset's folder, got {name!r}")


def _check_index(index: dict, path: str) -> None:
    """The structure of index.json: bos and vocab_size, and per split its shards (files, token and doc counts)."""
    vocab, bos = index.get("vocab_size"), index.get("bos")
    if not _is_count(vocab) or not 0 < vocab <= 65536 or not _is_count(bos) or bos >= vocab:
        raise ValueError(f"{path}: expected vocab_size in [1, 65536] and bos in [0, vocab_size), "
                         f"got {vocab!r} and {bos!r}")
    splits = index.get("splits")
    if not isinstance(splits, dict):
        raise ValueError(f"{path}: 'splits' must be an object of split name -> shards")
    for name, split in splits.items():
        shards = split.get("shards") if isinstance(split, dict) else None
        if not isinstance(shards, list):
            raise ValueError(f"{path}: splits.{name} must be an object with a 'shards' list")
        for k, shard in enumerate(shards):
            where = f"splits.{name}.shards[{k}]"
            if not isinstance(shard, dict) or not _is_count(shard.get("tokens")) or not _is_count(shard.get("docs")):
                raise ValueError(f"{path}: {where} must have 'file', 'docs_file', 'tokens' and 'docs' (counts >= 0)")
            _check_name(shard.get("file"), path, f"{where}.file")
            _check_name(shard.get("docs_file"), path, f"{where}.docs_file")
        sums = [sum(s["tokens"] for s in shards), sum(s["docs"] for s in shards)]
        if [split.get("tokens"), split.get("docs")] != sums:
            raise ValueError(f"{path}: splits.{name}: 'tokens' and 'docs' must be the sums over its shards")


def open_shard(data_dir: str, shard: dict, bos: Optional[int] = None):
    """(tokens as a read-only uint16 memmap, document starts as int64) of one shard of a checked index.

    The starts are checked: as many as the index says, increasing, in range, and each at a `bos` token
    (pass the index's "bos"; the DataLoader does).
    """
    tokens = np.memmap(os.path.join(data_dir, shard["file"]), dtype="<u2", mode="r", shape=(shard["tokens"],))
    docs_path = os.path.join(data_dir, shard["docs_file"])
    try:
        starts = np.load(docs_path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{docs_path}: not a .npy array of document starts ({e})") from None
    if starts.ndim != 1 or starts.dtype.kind not in "iu" or len(starts) != shard["docs"]:
        raise ValueError(f"{docs_path}: expected {shard['docs']} integer document starts, "
                         f"got shape {starts.shape} of {starts.dtype}")
    starts = starts.astype(np.int64)
    if len(starts) and (starts[0] < 0 or starts[-1] >= len(tokens) or np.any(np.diff(starts) <= 0)):
        raise ValueError(f"{docs_path}: document starts must be increasing and in [0, {len(tokens)})")
    bad = np.flatnonzero(tokens[starts] != bos) if bos is not None else ()
    if len(bad):
        raise ValueError(f"{docs_path}: document {bad[0]} starts at token {starts[bad[0]]}, "
                         f"which is {tokens[starts[bad[0]]]}, not BOS {bos}")
    return tokens, starts


def document_lengths(data_dir: str, split: str = "train") -> np.ndarray:
    """Tokens per document (BOS included) of a split, in file order."""
    index = load_index(data_dir)
    lengths = []
    for shard in index["splits"][split]["shards"]:
        _, starts = open_shard(data_dir, shard, index["bos"])
        lengths.append(np.diff(np.append(starts, shard["tokens"])))
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)


def corpus_stats(data_dir: str, split: str = "train") -> dict:
    """Documents, tokens and document-length percentiles of a split."""
    lengths = document_lengths(data_dir, split)
    if not len(lengths):
        return {"docs": 0, "tokens": 0}
    p = np.percentile(lengths, [5, 50, 95])
    return {"docs": int(len(lengths)), "tokens": int(lengths.sum()), "mean_len": float(lengths.mean()),
            "p5_len": float(p[0]), "median_len": float(p[1]), "p95_len": float(p[2]), "max_len": int(lengths.max())}

"""read_json: the one way tinytensor reads a JSON file (config.json, index.json, checkpoint.json,
tokenizer.json, encoder.json), with every failure a ValueError that names the file and what is wrong.

Standard library only, so any layer may use it (the tokenizer package included).
"""
import json
import os
from typing import Optional


def no_duplicate_keys(pairs):
    """object_pairs_hook for json.loads: ValueError on a key repeated in one object (JSON allows it)."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def read_json(path, limit: Optional[int] = None, unique_keys: bool = False):
    """The parsed content of the UTF-8 JSON file at path.

    ValueError("<path>: ...") when the file cannot be read (OSError), holds more than `limit` bytes, is
    not UTF-8, is not valid JSON ("<path>:<line>: not valid JSON: ..."), nests too deeply, or (with
    unique_keys) repeats a key in an object.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read() if limit is None else f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if limit is not None and len(raw) > limit:
        raise ValueError(f"{path}: file is larger than the {limit} bytes allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys if unique_keys else None)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:     # from no_duplicate_keys
        raise ValueError(f"{path}: {e}") from None

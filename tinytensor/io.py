"""Saving and loading: tensors as safetensors files, and training checkpoints. No pickle anywhere.

`save(tensors, path)` / `load(path)`: a dict of named tensors in the safetensors format (an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw bytes),
written by the safetensors package and readable by any safetensors tool; bf16 is read through
ml_dtypes. A file that is truncated, corrupt or hostile raises ValueError naming the file and the fault;
nothing in a file is ever executed.

`save_checkpoint(dir, model=, optimizer=, scheduler=, step=, rng=, data_position=, extra=)` writes a
directory holding `tensors-<random>.safetensors` (every tensor: weights, optimizer moments) and
`checkpoint.json` (everything else, with the tensors file's name and SHA-256, and `checkpoint_sha256`: the
SHA-256 of its own content without that key, as json.dumps(..., sort_keys=True, separators=(",", ":"))
writes it). Each file is written to a temporary file in the same directory, flushed, fsynced and renamed
over its target with os.replace (atomic on POSIX and Windows). The tensors file always gets a fresh
name, so the previous checkpoint's files are untouched until the new checkpoint.json replaces the old
one: that rename is the commit point.
A crash before it leaves the previous checkpoint.json pointing at its own, intact tensors file; a crash
after it leaves the new checkpoint complete. Stale files from either case are removed by the next save.
Left out: sharded files, memory-mapped loading, concurrent writers to one directory.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random as _pyrandom
import re
import secrets
import tempfile
import threading
from typing import Optional

import numpy as np
import safetensors
import safetensors.numpy

from .dtype import bfloat16, bool_, float16, float32, float64, int8, int16, int32, int64, uint8
from .jsonfile import no_duplicate_keys, read_json
from .random import Generator, default_generator
from .tensor import Tensor

_DTYPES = {"F64": float64, "F32": float32, "F16": float16, "BF16": bfloat16, "I64": int64, "I32": int32,
           "I16": int16, "I8": int8, "U8": uint8, "BOOL": bool_}
MAX_HEADER = 100_000_000  # the safetensors limit on the JSON header
MAX_JSON = 256_000_000
CHECKPOINT_FILE = "checkpoint.json"
_TENSORS_FILE = re.compile(r"tensors-[0-9a-f]{16}\.safetensors")
_UMASK_LOCK = threading.Lock()
_OUR_TEMP = re.compile(r"\.(checkpoint\.json|tensors-[0-9a-f]{16}\.safetensors)\..*\.tmp")


# ---- files ------------------------------------------------------------------------------------------

def _fsync_dir(directory: str) -> None:
    """Make a rename durable: fsync the directory entry (POSIX; a no-op where directories can't be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status, 4.7+);
    elsewhere set and restored at once under a lock (os.umask can only be read by setting it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _atomic_write(path: str, data: bytes) -> None:
    """Write data to a temp file beside path, fsync it, then os.replace it over path: all or nothing.

    The file gets the permissions open() would give a new file (0o666 less the umask), not mkstemp's 0o600.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# ---- safetensors ----------------------------------------------------------------------------------

def _to_numpy(tensors, op: str) -> dict:
    if not isinstance(tensors, dict):
        raise TypeError(f"{op}: expected a dict of name -> Tensor (e.g. model.state_dict()), "
                        f"got {type(tensors).__name__}")
    arrays = {}
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, Tensor):
            raise TypeError(f"{op}: entries must be str -> Tensor, got {type(name).__name__} -> {type(t).__name__}")
        if name == "__metadata__":
            raise ValueError(f"{op}: the name '__metadata__' is reserved by the safetensors format")
        a = t.detach().numpy()
        arrays[name] = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
    return arrays


def _serialize(tensors: dict, metadata: Optional[dict], op: str) -> bytes:
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError(f"{op}: metadata must be a dict of str -> str")
    return safetensors.numpy.save(_to_numpy(tensors, op), metadata=metadata)


def save(tensors: dict, path, metadata: Optional[dict] = None) -> None:
    """Write a dict of named tensors (e.g. model.state_dict()) to path in the safetensors format, atomically."""
    _atomic_write(os.fspath(path), _serialize(tensors, metadata, "save"))


def load(path, device: str = "cpu") -> dict:
    """Read a safetensors file into a dict of name -> Tensor (each owning its memory), in file order."""
    path = os.fspath(path)
    return {k: Tensor._from_numpy(a, device) for k, a in _parse(_read(path), path).items()}


def read_header(path) -> dict:
    """The tensors a safetensors file holds, {name: (dtype name, shape)}, from its header alone.

    Reads only the 8-byte length and the JSON header (checked as load checks it, against the file's
    size), so a caller can check names and shapes before allocating anything.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"file is truncated: {len(head)} bytes, too short for the 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER or 8 + n > size:
                raise ValueError(f"header length {n} exceeds the {MAX_HEADER}-byte limit or the file's {size} bytes")
            try:
                header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=no_duplicate_keys)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise ValueError(f"header is not valid UTF-8 JSON ({type(e).__name__}: {e})") from None
        entries = _check_header(header, size - 8 - n)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return {name: (kind, tuple(shape)) for name, kind, shape in entries}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_header(header, data_len: int) -> list:
    """Validate a parsed header against the data size; return [(name, dtype name, shape)] in data order."""
    if not isinstance(header, dict):
        raise ValueError(f"header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise ValueError("__metadata__ must map strings to strings")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"entry {name!r} must have exactly dtype, shape and data_offsets")
        kind, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if kind not in _DTYPES:
            raise ValueError(f"entry {name!r} has unsupported dtype {kind!r} (supported: {', '.join(_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
            raise ValueError(f"entry {name!r} has an invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise ValueError(f"entry {name!r} has invalid data_offsets {offsets!r}")
        nbytes = math.prod(shape) * _DTYPES[kind].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise ValueError(f"entry {name!r}: shape {shape} of {kind} needs {nbytes} bytes, data_offsets "
                             f"{offsets} give {offsets[1] - offsets[0]}")
        entries.append((offsets[0], offsets[1], name, kind, shape))
    position = 0
    for begin, end, name, _, _ in sorted(entries):
        if begin != position:
            raise ValueError(f"entry {name!r} starts at byte {begin}, expected {position} (overlap or hole)")
        position = end
    if position != data_len:
        what = "truncated" if position > data_len else "has trailing bytes"
        raise ValueError(f"file {what}: the header describes {position} bytes of data, the file holds {data_len}")
    return [(name, kind, shape) for _, _, name, kind, shape in sorted(entries)]


def _parse(data: bytes, path: str) -> dict:
    """Bytes of a safetensors file -> {name: ndarray}; ValueError('<path>: <what is wrong>') otherwise."""
    try:
        if len(data) < 8:
            raise ValueError(f"file is truncated: {len(data)} bytes, too short for the 8-byte header length")
        n = int.from_bytes(data[:8], "little")
        if n > MAX_HEADER:
            raise ValueError(f"header length {n} exceeds the {MAX_HEADER}-byte limit (corrupt or not safetensors)")
        if 8 + n > len(data):
            raise ValueError(f"file is truncated: header length {n}, but only {len(data) - 8} bytes follow")
        try:
            header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicate_keys)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"header is not valid UTF-8 JSON ({type(e).__name__}: {e})") from None
        entries = _check_header(header, len(data) - 8 - n)
        try:
            raw = dict(safetensors.deserialize(data))
        except Exception as e:  # the package's own check (SafetensorError); ours above should catch it first
            raise ValueError(f"safetensors rejected the file: {e}") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    arrays = {}
    for name, kind, shape in entries:
        a = np.frombuffer(raw[name]["data"], dtype=_DTYPES[kind].np).reshape(shape)
        if kind == "BOOL" and a.size and a.view(np.uint8).max() > 1:
            raise ValueError(f"{path}: entry {name!r} is BOOL but holds bytes other than 0 and 1")
        arrays[name] = a
    return arrays


# ---- checkpoints ----------------------------------------------------------------------------------

def _split(obj, name: str, tensors: dict):
    """A JSON-able copy of obj with each Tensor replaced by {"__tensor__": its name in `tensors`}."""
    if isinstance(obj, Tensor):
        if name in tensors:
            raise ValueError(f"save_checkpoint: two tensors would both be stored as {name!r}")
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {str(k) if _is_int(k) else k: _split(v, f"{name}/{k}" if name else str(k), tensors)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{name}/{i}" if name else str(i), tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj, tensors: dict, path: str):
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            name = obj["__tensor__"]
            if not isinstance(name, str) or name not in tensors:
                raise ValueError(f"{path}: refers to tensor {name!r}, which the tensors file does not hold")
            return tensors[name]
        return {k: _join(v, tensors, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors, path) for v in obj]
    return obj


def _rng_state(gen):
    if isinstance(gen, Generator):
        return {"kind": "tinytensor", "state": gen.get_state()}
    if isinstance(gen, np.random.Generator):
        return {"kind": "numpy", "state": gen.bit_generator.state}
    if isinstance(gen, _pyrandom.Random):
        version, internal, gauss = gen.getstate()
        return {"kind": "python", "state": [version, list(internal), gauss]}
    raise TypeError(f"save_checkpoint: rng entries must be tt.Generator, numpy Generator or random.Random, "
                    f"got {type(gen).__name__}")


def _set_rng_state(gen, saved: dict) -> None:
    if isinstance(gen, Generator) and saved.get("kind") == "tinytensor":
        gen.set_state(saved["state"])
    elif isinstance(gen, np.random.Generator) and saved.get("kind") == "numpy":
        gen.bit_generator.state = saved["state"]
    elif isinstance(gen, _pyrandom.Random) and saved.get("kind") == "python":
        version, internal, gauss = saved["state"]
        gen.setstate((version, tuple(internal), gauss))
    else:
        raise ValueError(f"saved state of kind {saved.get('kind')!r} does not fit a {type(gen).__name__}")


def save_checkpoint(path, *, model=None, optimizer=None, scheduler=None, step: int = 0, rng: Optional[dict] = None,
                    data_position=None, extra=None) -> None:
    """Save everything a run needs to continue exactly into the directory `path` (atomically; see the module doc).

    rng maps names to generators (tt.Generator, numpy Generator, random.Random); by default tinytensor's
    default generator (dropout masks, randn, ...) is saved as "tinytensor". data_position and extra must be
    JSON-serialisable (an index, a dict of counters, ...).
    """
    path = os.fspath(path)
    rng = {"tinytensor": default_generator} if rng is None else rng
    tree = {"rng": {name: _rng_state(g) for name, g in rng.items()}}
    for key, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            tree[key] = obj.state_dict()
    tensors = {}
    doc = {"format": "tinytensor-checkpoint", "version": 2, "step": step, "data_position": data_position,
           "extra": extra, "state": _split(tree, "", tensors)}
    blob = _serialize(tensors, None, "save_checkpoint")
    doc["tensors_file"] = f"tensors-{secrets.token_hex(8)}.safetensors"
    doc["tensors_sha256"] = hashlib.sha256(blob).hexdigest()
    try:  # before touching the disk: a TypeError changes nothing
        doc["checkpoint_sha256"] = _doc_digest(doc)
        text = json.dumps(doc, indent=1).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"save_checkpoint: step, data_position and extra must be JSON-serialisable ({e})") from None
    os.makedirs(path, exist_ok=True)
    _atomic_write(os.path.join(path, doc["tensors_file"]), blob)  # a new name: the committed files stay intact
    _atomic_write(os.path.join(path, CHECKPOINT_FILE), text)  # the commit point
    for name in os.listdir(path):  # files of older checkpoints and of interrupted saves
        if (_TENSORS_FILE.fullmatch(name) and name != doc["tensors_file"]) or _OUR_TEMP.fullmatch(name):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(path, name))


def _doc_digest(doc: dict) -> str:
    """SHA-256 of checkpoint.json's content without its own checksum, in one canonical JSON form."""
    body = json.loads(json.dumps({k: v for k, v in doc.items() if k != "checkpoint_sha256"}))  # keys as JSON has them
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _read_checkpoint(path: str):
    json_path = os.path.join(path, CHECKPOINT_FILE)
    try:
        doc = read_json(json_path, limit=MAX_JSON, unique_keys=True)
    except ValueError as e:
        raise ValueError(f"{json_path}: not a valid checkpoint file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != "tinytensor-checkpoint" or doc.get("version") not in (1, 2):
        raise ValueError(f"{json_path}: not a tinytensor checkpoint (format/version missing or unknown)")
    if doc["version"] == 2 and not isinstance(doc.get("checkpoint_sha256"), str):
        raise ValueError(f"{json_path}: no checkpoint_sha256 (version 2 files carry the checksum of their content)")
    fname, digest = doc.get("tensors_file"), doc.get("tensors_sha256")
    if not isinstance(fname, str) or not _TENSORS_FILE.fullmatch(fname) or not isinstance(digest, str):
        raise ValueError(f"{json_path}: invalid tensors_file {fname!r} or tensors_sha256")
    if not isinstance(doc.get("state"), dict) or not isinstance(doc["state"].get("rng", {}), dict):
        raise ValueError(f"{json_path}: 'state' must be an object")
    tensors_path = os.path.join(path, fname)
    blob = _read(tensors_path)
    if hashlib.sha256(blob).hexdigest() != digest:
        raise ValueError(f"{tensors_path}: contents do not match the SHA-256 recorded in {json_path} (corrupt file)")
    tensors = {k: Tensor._from_numpy(a) for k, a in _parse(blob, tensors_path).items()}
    return doc, _join(doc["state"], tensors, json_path), json_path


def load_checkpoint(path, *, model=None, optimizer=None, scheduler=None, rng: Optional[dict] = None,
                    strict: bool = True) -> dict:
    """Restore what save_checkpoint stored into the objects given; return {"step", "data_position", "extra", "state"}.

    rng: generators to restore by name (default: tinytensor's default generator, if it was saved).
    All or nothing: every part is checked first (the model's names and shapes, the optimizer's and the
    scheduler's state, each rng state on a scratch generator, then checkpoint.json's checksum) and only
    then assigned, so a bad checkpoint raises ValueError (RuntimeError for a model mismatch, as
    load_state_dict) and leaves every object as it was. Version 1 files (before the checksum) still load.
    """
    path = os.fspath(path)
    doc, state, json_path = _read_checkpoint(path)
    installs = []
    for key, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if not isinstance(state.get(key), dict):
            raise ValueError(f"{json_path}: holds no {key} state")
        if key == "model":
            continue  # Module.load_state_dict checks everything before it copies: it runs first below
        try:
            installs.append(obj.prepare_load(state[key]) if hasattr(obj, "prepare_load")
                            else (lambda o=obj, s=state[key]: o.load_state_dict(s)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{json_path}: bad {key} state ({type(e).__name__}: {e})") from None
    saved = state.get("rng", {})
    targets = rng if rng is not None else ({"tinytensor": default_generator} if "tinytensor" in saved else {})
    for name, gen in targets.items():
        if not isinstance(saved.get(name), dict):
            raise ValueError(f"{json_path}: holds no rng state named {name!r}")
        try:
            _set_rng_state(_scratch(gen), saved[name])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"{json_path}: bad rng state {name!r} ({type(e).__name__}: {e})") from None
        installs.append(lambda g=gen, s=saved[name]: _set_rng_state(g, s))
    if doc["version"] >= 2 and _doc_digest(doc) != doc["checkpoint_sha256"]:
        raise ValueError(f"{json_path}: contents do not match its checkpoint_sha256 (corrupt or edited file)")
    if model is not None:
        model.load_state_dict(state["model"], strict=strict)
    for install in installs:
        install()
    return {"step": doc.get("step"), "data_position": doc.get("data_position"), "extra": doc.get("extra"),
            "state": state}


def _scratch(gen):
    """A new generator of gen's kind, to try a saved state on before touching gen."""
    if isinstance(gen, np.random.Generator):
        return np.random.Generator(type(gen.bit_generator)())
    return type(gen)()

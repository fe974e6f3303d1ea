"""Backends: `get(device)` returns the module that implements base.PRIMITIVES for a device."""
from __future__ import annotations

_loaded = {}


def get(device: str):
    be = _loaded.get(device)
    if be is not None:
        return be
    if device == "cpu":
        from . import cpu as be
    elif device == "cuda":
        from . import cuda as be
        be.require()  # a RuntimeError naming what is missing: CuPy, or a GPU and its driver
    else:
        raise RuntimeError(f"unknown device {device!r}")
    _loaded[device] = be
    return be

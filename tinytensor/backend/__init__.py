"""Backends: `get(device)` returns the module that implements base.PRIMITIVES for a device."""
from __future__ import annotations


def get(device: str):
    if device == "cpu":
        from . import cpu
        return cpu
    if device == "cuda":
        from .cuda import unavailable
        raise unavailable()
    raise RuntimeError(f"unknown device {device!r}")

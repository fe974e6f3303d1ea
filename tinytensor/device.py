"""Device names: "cpu" and "cuda" (with an optional index, "cuda:0"), as in PyTorch."""
from __future__ import annotations


class device:
    """A device such as device("cpu") or device("cuda:0"); compares equal to its name."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda") or (idx and not idx.isdigit()):
            raise RuntimeError(f"device: expected 'cpu' or 'cuda[:N]', got {spec!r}")
        self.type = kind
        self.index = int(idx) if idx else index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))


def as_device(d) -> str:
    """The backend name ('cpu' or 'cuda') for a device argument; None means cpu."""
    return "cpu" if d is None else device(d).type

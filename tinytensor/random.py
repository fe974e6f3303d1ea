"""Random numbers: one seeded Generator (NumPy's PCG64) behind manual_seed, rand, randn, ...

Numbers are drawn on the host and copied to the tensor's device, so a seed gives the same values
on every device. The streams differ from PyTorch's: the same seed does not give torch's numbers.
"""
from __future__ import annotations

import numpy as np


class Generator:
    """A seeded source of random numbers; `get_state`/`set_state` round-trip it exactly."""

    def __init__(self, seed: int = 0):
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> "Generator":
        self._rng = np.random.Generator(np.random.PCG64(int(seed)))
        self._seed = int(seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (as torch.manual_seed) and return it."""
    return default_generator.manual_seed(seed)


def seed_rng(generator) -> np.random.Generator:
    return (generator or default_generator).numpy

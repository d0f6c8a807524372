"""Benchmark data shared by the bare-MPyC baseline and the dnode run (no mpyc import here:
mpyc parses sys.argv when imported)."""

from __future__ import annotations

import numpy as np


def owner_values(n: int, seed: int, owner: int, owners: int = 3) -> list[int]:
    """Owner ``owner``'s part of N deterministic integer values in [0, 1000)."""
    sizes = [n // owners + (1 if i < n % owners else 0) for i in range(owners)]
    rng = np.random.default_rng([seed, owner])
    return [int(v) for v in rng.integers(0, 1000, size=sizes[owner])]

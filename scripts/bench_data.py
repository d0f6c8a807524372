"""Benchmark data shared by the bare-MPyC baseline and the dnode run (no mpyc import here:
mpyc parses sys.argv when imported)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

# the load when the benchmark started (this module is imported at its start; reports are
# written at the end, when other jobs may have come and gone)
_LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]


def owner_values(n: int, seed: int, owner: int, owners: int = 3) -> list[int]:
    """Owner ``owner``'s part of N deterministic integer values in [0, 1000)."""
    sizes = [n // owners + (1 if i < n % owners else 0) for i in range(owners)]
    rng = np.random.default_rng([seed, owner])
    return [int(v) for v in rng.integers(0, 1000, size=sizes[owner])]


def machine_info(**extra: Any) -> dict[str, Any]:
    """What every benchmark reports about the machine it ran on (figures are noisy here)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": _LOAD_AT_START,
        "loadavg_at_report": [round(x, 2) for x in os.getloadavg()],
        **extra,
    }

from __future__ import annotations

import os

# MPyC, web3 and friends must not pick up a developer's environment by accident
os.environ.pop("DNODE_PASSWORD", None)


def pytest_collection_modifyitems(config: object, items: list) -> None:
    """Slow (multi-process) modules first, in collection order otherwise: with two xdist
    workers the many short tests then fill the gaps, instead of one long end-to-end module
    running alone at the end (longest-first scheduling)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)

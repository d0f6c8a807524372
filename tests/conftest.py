from __future__ import annotations

import os

# MPyC, web3 and friends must not pick up a developer's environment by accident
os.environ.pop("DNODE_PASSWORD", None)


# Rough seconds per module on the 2-core CI machine (measured with --durations; only the
# order matters). Longest first: with two xdist workers the short tests then fill the gaps,
# instead of one long module running alone at the end (longest-processing-time scheduling).
MODULE_WEIGHT = {  # seconds, measured (pytest --durations) with the fork server
    "test_e2e_stats.py": 260,
    "test_e2e_capture.py": 230,
    "test_e2e_owner_agents.py": 260,
    "test_e2e_claims.py": 150,
    "test_e2e_sortition.py": 110,
    "test_dnode_stateful.py": 100,
    "test_he.py": 100,
    "test_malicious.py": 100,
    "test_e2e_chaos.py": 85,
    "test_e2e_dispute.py": 80,
    "test_e2e_consumer.py": 70,
    "test_compare_malicious.py": 70,
    "test_e2e_ops.py": 60,
    "test_e2e_he.py": 50,
    "test_e2e_anvil.py": 45,
    "test_e2e_ml_infer.py": 70,
    "test_by_hand.py": 70,
    "test_e2e_malicious.py": 31,
    "test_e2e_private.py": 27,
    "test_e2e.py": 27,
    "test_e2e_min_aggregation.py": 20,
}


def pytest_collection_modifyitems(config: object, items: list) -> None:
    """Heaviest modules first (stable: collection order otherwise), then slow-marked ones."""

    def weight(item: object) -> tuple[int, int]:
        name = item.path.name  # type: ignore[attr-defined]
        slow = item.get_closest_marker("slow") is not None  # type: ignore[attr-defined]
        return (-MODULE_WEIGHT.get(name, 0), 0 if slow else 1)

    items.sort(key=weight)

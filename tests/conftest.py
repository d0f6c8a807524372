from __future__ import annotations

import os

# MPyC, web3 and friends must not pick up a developer's environment by accident
os.environ.pop("DNODE_PASSWORD", None)

# The chain of the tests' dev clusters: anvil (the same JSON-RPC, a third of the CPU a busy
# cluster costs on the embedded py-evm devnet). The embedded devnet keeps its own end-to-end
# runs: test_e2e.py (engine="devnet"), test_by_hand.py (`dnode chain`), the chain-watch tests
# on both, and the devnet's own tests in tests/contracts (whose other tests run on anvil too:
# DNODE_CONTRACT_CHAIN, tests/contracts/dnode_chain.py).
# DNODE_CLUSTER_CHAIN=devnet runs every cluster on the embedded devnet. (Every other cluster
# test thus shows dnode needs nothing but standard JSON-RPC, as test_e2e_anvil.py did.)
os.environ.setdefault("DNODE_CLUSTER_CHAIN", "anvil")


# Rough seconds per module on the 2-core CI machine (measured with --durations; only the
# order matters). Longest first: with two xdist workers the short tests then fill the gaps,
# instead of one long module running alone at the end (longest-processing-time scheduling).
MODULE_WEIGHT = {  # seconds, measured (pytest --durations=0 on a clean clone, 2 workers, a fresh
    # machine, 2026-12-02 14:13: setup + call + teardown of each module's tests)
    "test_e2e_claims.py": 193,
    "test_e2e_capture.py": 165,
    "test_e2e_owner_agents.py": 139,
    "test_dnode_stateful.py": 120,
    "test_e2e_sortition.py": 113,
    "test_by_hand.py": 98,
    "test_e2e_stats.py": 83,
    "test_e2e_ml.py": 83,
    "test_e2e_he.py": 65,
    "test_e2e_ops.py": 62,
    "test_dnode_consumer.py": 51,
    "test_he.py": 48,
    "test_e2e_psi.py": 47,
    "test_ml_kmeans.py": 47,
    "test_e2e_dispute.py": 46,
    "test_malicious.py": 45,
    "test_e2e_synth.py": 44,
    "test_dnode_ranked.py": 44,
    "test_e2e_query.py": 39,
    "test_e2e_sdk_explorer.py": 36,
    "test_e2e_ml_federated.py": 32,
    "test_e2e_chaos.py": 32,
    "test_programs_cli.py": 31,
    "test_query_cli.py": 30,
    "test_e2e_consumer.py": 29,
    "test_e2e_malicious.py": 29,
    "test_e2e.py": 27,
    "test_dnode_court_sound.py": 24,
    "test_owner_cli.py": 23,
    "test_e2e_ml_infer.py": 22,
    "test_e2e_private.py": 22,
    "test_mpc.py": 21,
    "test_ethers_events.py": 19,
    "test_dp_ml.py": 18,
    "test_dnode_attacks.py": 18,
    "test_p2p.py": 18,
    "test_compare_malicious.py": 17,
    "test_e2e_min_aggregation.py": 17,
    "test_errors.py": 16,
    "test_dnode_disputes.py": 16,
    "test_dnode_datasets.py": 15,
}


def pytest_collection_modifyitems(config: object, items: list) -> None:
    """Heaviest modules first (stable: collection order otherwise), then slow-marked ones."""

    def weight(item: object) -> tuple[int, int]:
        name = item.path.name  # type: ignore[attr-defined]
        slow = item.get_closest_marker("slow") is not None  # type: ignore[attr-defined]
        return (-MODULE_WEIGHT.get(name, 0), 0 if slow else 1)

    items.sort(key=weight)

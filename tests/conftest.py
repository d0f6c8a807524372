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
MODULE_WEIGHT = {  # seconds, measured (pytest --durations=0, 2026-12-02, anvil clusters; the
    # contract modules re-estimated from a --durations=30 run on anvil at load 8)
    "test_e2e_capture.py": 200,
    "test_e2e_claims.py": 170,
    "test_e2e_owner_agents.py": 140,
    "test_he.py": 110,
    "test_by_hand.py": 100,
    "test_e2e_sortition.py": 100,
    "test_dnode_stateful.py": 90,
    "test_e2e_sdk_explorer.py": 60,
    "test_e2e_ops.py": 60,
    "test_dnode_ranked.py": 55,
    "test_dnode_court_sound.py": 55,
    "test_dnode_consumer.py": 50,
    "test_e2e_ml.py": 50,
    "test_e2e_ml_federated.py": 45,  # measured alone at load 5-9 (2026-12-02 11:23)
    "test_ml_federated.py": 30,
    "test_malicious.py": 50,
    "test_e2e_stats.py": 50,
    "test_e2e_chaos.py": 50,
    "test_dnode_tooling.py": 15,
    "test_e2e_query.py": 40,
    "test_e2e_synth.py": 40,
    "test_query_cli.py": 40,
    "test_e2e_he.py": 40,
    "test_e2e_dispute.py": 30,
    "test_e2e.py": 30,
    "test_mpc.py": 30,
    "test_nonce_lock.py": 30,
    "test_dnode_reverts.py": 25,
    "test_ethers_events.py": 25,
    "test_dnode_datasets.py": 20,
    "test_dnode_attacks.py": 20,
    "test_dnode_disputes.py": 20,
    "test_e2e_consumer.py": 20,
    "test_e2e_psi.py": 20,
    "test_ml_kmeans.py": 20,
    "test_e2e_ml_infer.py": 20,
    "test_e2e_private.py": 20,
    "test_dnode_sortition.py": 15,
}


def pytest_collection_modifyitems(config: object, items: list) -> None:
    """Heaviest modules first (stable: collection order otherwise), then slow-marked ones."""

    def weight(item: object) -> tuple[int, int]:
        name = item.path.name  # type: ignore[attr-defined]
        slow = item.get_closest_marker("slow") is not None  # type: ignore[attr-defined]
        return (-MODULE_WEIGHT.get(name, 0), 0 if slow else 1)

    items.sort(key=weight)

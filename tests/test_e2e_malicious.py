"""One deliberately malicious node: the task never finalizes with a wrong value (issue 13).

Three real node processes on the embedded devnet; node-3 is the ordinary node code, but its
MPyC party is tests/node/evil_party.py (injected through a test-only ``sitecustomize`` on
that node's PYTHONPATH only): it adds an offset to every product share it re-shares -- the
attack that made all parties sign a wrong variance before the checks existed.  The honest
seats detect it, refuse to sign and decline with the reason, which ``dnode task status``
shows; the requester gets a refund."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dnode.cli.devcluster import DevCluster
from dnode.contracts.client import TaskStatus

INPUTS = {"owner-a": [3, 5, 8], "owner-b": [13, 21]}

SITECUSTOMIZE = """
try:  # TEST ONLY: this node's MPyC party deviates (tests/node/evil_party.py)
    import dnode.node.mpc.executor as _ex

    _init = _ex.SubprocessExecutor.__init__

    def __init__(self, *a, **kw):
        kw.setdefault("party_args", ("-m", "tests.node.evil_party", "reshare", "600"))
        _init(self, *a, **kw)

    _ex.SubprocessExecutor.__init__ = __init__
except Exception:  # noqa: BLE001 - e.g. a process without the repo on its path
    pass
"""


class EvilNodeCluster(DevCluster):
    """A DevCluster whose node named ``evil`` runs with the sitecustomize above."""

    def __init__(self, workdir: Path, evil: str, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.evil, self._spawning_evil = evil, False
        self.evil_dir = workdir / "evil-site"
        self.evil_dir.mkdir(parents=True, exist_ok=True)
        (self.evil_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def _spawn(self, args: list[str], log_name: str, *a: Any, **kw: Any) -> Any:
        self._spawning_evil = log_name == self.evil
        try:
            return super()._spawn(args, log_name, *a, **kw)
        finally:
            self._spawning_evil = False

    def _env(self) -> dict[str, str]:
        env = super()._env()
        if self._spawning_evil:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.evil_dir), *filter(None, [env.get("PYTHONPATH")])]
            )
        return env


def test_malicious_node_cannot_finalize_a_wrong_value(tmp_path: Path) -> None:
    cluster = EvilNodeCluster(tmp_path, evil="node-3", challenge_period=4)
    with cluster.running():
        nodes = [cluster.start_node(f"node-{i}") for i in range(1, 4)]  # _env is not thread-safe
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        task_id = cluster.post_mpc(requester, list(owners.values()), program="mpc.variance")
        files = cluster.write_inputs(INPUTS)
        cluster.contribute_all(task_id, owners, files)

        chain = cluster.reader()  # wait in-process; then read the reasons as a user would
        cluster.watch(
            lambda: (
                bin(chain.task_info(task_id).declined_bitmap).count("1") >= 2
                or chain.task_info(task_id).status != TaskStatus.COMPUTING
            ),
            "two seats declined",
            180,
        )
        st = cluster.dnode(requester, "task", "status", str(task_id))
        assert st["status"] == "computing", st  # never reported, never finalized
        honest = [
            d
            for d in st["declines"]
            if d["node"].lower() in {n.member.address.lower() for n in nodes[:2]}
        ]
        assert len(honest) == 2, st
        for d in honest:
            assert "cheating detected: multiplication check failed" in d["reason"], d
        assert st["result_digest"] == "0x" + "00" * 32 and st["reported_at"] == 0
        # the task cannot reach a quorum any more: anyone can refund it
        out = cluster.dnode(requester, "task", "cancel", str(task_id))
        assert out["status"] == "refunded" and out["reason"] == "market: too many declines"
        for n in nodes[:2]:
            log = n.log_path.read_text()
            assert "cheating detected" in log and "Traceback" not in log

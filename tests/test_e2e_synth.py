"""Issue 18 (DP synthetic data across parties) through real node processes (real libp2p, MPyC
parties, the chain over JSON-RPC): owner A holds ids and ages, owner B ids and salaries of
partly the same people; each publishes a dataset with an ε budget. ``dnode synth --join id``
posts one synth.mst task over both (each budget charged its ε on-chain at posting), the
committee joins and measures in MPC and seals the noisy marginals to the requester, who
writes the synthetic table and its quality report. A second task that would overspend is
refused by the contract with its reason (and by the CLI in one line before paying); a task
posted to the contract with a charge below its noisy outputs' composed cost gets no seat.
One shared cluster for the module."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from dnode.cli.devcluster import DevCluster, Member
from dnode.contracts.client import ChainClient, connect
from dnode.contracts.errors import BudgetExhausted
from dnode.contracts.manifest import Deployment

pytestmark = pytest.mark.slow

BUDGET = "1.5"
EPS = "1"
AGES = {
    "table": "people",
    "columns": [{"name": "id", "type": "id"}, {"name": "age", "type": "int", "min": 18, "max": 81}],
}
SALARIES = {
    "table": "payroll",
    "columns": [
        {"name": "id", "type": "id"},
        {"name": "salary", "type": "int", "min": 0, "max": 159999},
    ],
}
SLOW = ["--input-timeout", "600", "--seat-timeout", "300", "--report-timeout", "1800"]


def _tables(tmp: Path) -> dict[str, Path]:
    """A: p0..p59 (ages), B: p20..p79 (salaries growing with age): 40 ids in common, and B
    holds one id twice (left out of the join inside the MPC: 39 joined rows)."""
    a = ["id,age"] + [f"p{i},{18 + (i * 7) % 64}" for i in range(60)]
    b = ["id,salary"] + [f"p{i},{min(159999, 20000 + 1500 * ((i * 7) % 64))}"
                         for i in range(20, 80)] + ["p30,99999"]  # fmt: skip
    out = {"owner-a": tmp / "ages.csv", "owner-b": tmp / "salaries.csv"}
    out["owner-a"].write_text("\n".join(a) + "\n")
    out["owner-b"].write_text("\n".join(b) + "\n")
    return out


class Setup:
    def __init__(self, cluster: DevCluster, tmp: Path) -> None:
        self.cluster = cluster
        cluster.start_nodes([f"node-{i}" for i in range(3)])
        self.requester = cluster.member("requester")
        self.owners: dict[str, Member] = {n: cluster.member(n) for n in ("owner-a", "owner-b")}
        self.files = _tables(tmp)
        self.schemas = {"owner-a": tmp / "people.json", "owner-b": tmp / "payroll.json"}
        self.schemas["owner-a"].write_text(json.dumps(AGES))
        self.schemas["owner-b"].write_text(json.dumps(SALARIES))
        self.datasets: dict[str, int] = {}
        for n, m in self.owners.items():
            pub = cluster.dnode(
                m, "data", "publish", "--schema", str(self.schemas[n]), "--rows", "61",
                "--price", "0.01ether", "--program", "synth.mst", "--epsilon", BUDGET,
            )  # fmt: skip
            self.datasets[n] = int(pub["dataset_id"])
        self.tmp = tmp

    def _args(self, *args: str) -> list[str]:
        ids = ",".join(str(d) for d in self.datasets.values())
        return [
            "synth", "--datasets", ids, "--schema", str(self.schemas["owner-a"]),
            "--schema", str(self.schemas["owner-b"]), "--join", "id", "--bins", "4", *SLOW,
            "--bootstrap", self.cluster.bootstrap()[0], *args,
        ]  # fmt: skip

    def synth(self, *args: str) -> dict[str, Any]:
        return self.cluster.dnode(self.requester, *self._args(*args))

    def synth_fails(self, *args: str) -> str:
        """Run ``dnode synth`` expecting a non-zero exit; returns its stderr."""
        c = self.cluster
        argv = ["--json", "--rpc-url", c.rpc_url, "--manifest", str(c.manifest),
                "--password-file", str(c.password_file), "--home", str(self.requester.home),
                *self._args(*args)]  # fmt: skip
        r = c._run_cli(argv, 300)
        assert r.returncode != 0, r.stdout
        return r.stderr.decode()

    def left(self, name: str) -> float:
        out = self.cluster.dnode(self.requester, "data", "show", str(self.datasets[name]))
        return float(out["budget_left"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("synth")
    cluster = DevCluster(tmp, challenge_period=4, accounts=12)
    with cluster.running():
        yield Setup(cluster, tmp)


def test_two_owners_vertical_synthetic_table_and_budgets(setup: Setup) -> None:
    s = setup
    assert s.left("owner-a") == pytest.approx(1.5) and s.left("owner-b") == pytest.approx(1.5)
    posted = s.synth("--epsilon", EPS, "--wait", "0")
    task_id = int(posted["task_id"])
    # charged at posting, on-chain, on both datasets: the task's ε (OpenDP's composition of
    # its releases, rounded up to a millionth)
    for n in s.owners:
        assert s.left(n) == pytest.approx(0.5, abs=1e-5)
    s.cluster.contribute_all(task_id, s.owners, s.files)
    out = s.tmp / "synth.csv"
    got = s.synth("--task", str(task_id), "--out", str(out), "--rows", "200", "--wait", "1800")
    g = got["guarantee"]
    assert float(g["epsilon"]) == pytest.approx(1.0, abs=1e-6)
    assert float(g["delta"]) <= 1e-9
    assert [r["name"] for r in g["releases"]] == ["one", "two"]  # two columns: no selection
    with out.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["age", "salary"]
    assert len(rows) == 201
    for age, salary in rows[1:]:
        assert 18 <= int(age) <= 81 and 0 <= int(salary) <= 159_999
    report = json.loads(Path(got["report"]).read_text())
    q = report["quality"]
    assert q["tree"] == [["age", "salary"]]
    assert set(q["tvd_1way_vs_noisy"]) == {"age", "salary"}
    assert 0 <= q["tvd_2way_vs_noisy"]["age~salary"] <= 1
    assert "minority clusters" in q["warning"]
    assert report["binning"]["age"] == ["[18,33]", "[34,49]", "[50,65]", "[66,81]"]
    # the noisy join is near the true one (39 joined rows; noise scale ~ 8 per cell)
    assert 0 < q["rows_noisy_total"] < 200
    # the budgets did not move after the result
    for n in s.owners:
        assert s.left(n) == pytest.approx(0.5, abs=1e-5)


def test_overspending_task_is_refused_on_chain_with_a_reason(setup: Setup) -> None:
    s = setup
    # the CLI refuses before paying, in one line
    err = s.synth_fails("--epsilon", EPS, "--wait", "0")
    assert "privacy budget" in err and len(err.strip().splitlines()) == 1, err
    # the contract refuses a post that skips the CLI's check, with its reason
    from dnode.scheduler.programs.synth.build import synth_params

    key = s.cluster.dev_key()
    chain = ChainClient(connect(s.cluster.rpc_url), Deployment.load(s.cluster.manifest),
                        Account.from_key(key))  # fmt: skip
    params = synth_params(
        [("people", _cols(AGES)), ("payroll", _cols(SALARIES))],
        [s.owners["owner-a"].address, s.owners["owner-b"].address],
        join="id", epsilon=EPS, bins=4, result_key="ab" * 32,
    )  # fmt: skip
    cost = params.spec.plan(params).cost(1)  # type: ignore[attr-defined]
    with pytest.raises(BudgetExhausted, match="datasets: privacy budget exhausted"):
        chain.post_data_task(
            params.spec.program_id, params.digest, datasets=list(s.datasets.values()),
            costs=[cost, cost], reward=10**17, seat_deadline=chain.block_timestamp() + 300,
        )  # fmt: skip
    for n in s.owners:
        assert s.left(n) == pytest.approx(0.5, abs=1e-5)


def _cols(schema: dict[str, Any]) -> tuple[Any, ...]:
    from dnode.scheduler.programs.schema import schema_from

    return schema_from(schema["columns"])


def test_attack_an_undercharged_synth_task_gets_no_seat(setup: Setup) -> None:
    """A requester posting to the contract directly charges each dataset 0.000001 for a
    synth task whose noisy marginals compose to 0.3: every node refuses a seat, saying why
    (node.task.seat.budget_refusal on synth.mst's own releases)."""
    import trio

    from dnode.node import peer_client
    from dnode.scheduler.programs.synth.build import synth_params

    s = setup
    chain = ChainClient(connect(s.cluster.rpc_url), Deployment.load(s.cluster.manifest),
                        Account.from_key(s.cluster.dev_key()))  # fmt: skip
    params = synth_params(
        [("people", _cols(AGES)), ("payroll", _cols(SALARIES))],
        [s.owners["owner-a"].address, s.owners["owner-b"].address],
        join="id", epsilon="0.3", bins=4, result_key="cd" * 32,
    )  # fmt: skip
    spec = params.spec
    attack = chain.post_data_task(
        spec.program_id, params.digest, datasets=list(s.datasets.values()), costs=[1, 1],
        reward=10**17, seat_deadline=chain.block_timestamp() + 60,
    )  # fmt: skip
    trio.run(peer_client.announce, [s.cluster.bootstrap()[0]], attack, params)
    for n in s.cluster.nodes:
        _wait(lambda n=n: f"task {attack}: not taking a seat: dataset" in
              n.log_path.read_text(errors="replace"), f"{n.member.name} refuses", 60)  # fmt: skip
    assert "compose to 0.3" in s.cluster.nodes[0].log_path.read_text(errors="replace")
    assert chain.task_info(attack).status.name.lower() == "open"


def _wait(cond: Any, what: str, timeout: float) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.5)
    return got

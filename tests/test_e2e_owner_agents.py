"""Issue 15, the owner agent end to end: real node processes, real libp2p and MPyC, the chain
only over JSON-RPC, and each data owner's agent (``dnode owner start``) as its own process
with its own keystore and TOML config. No ``dnode task contribute`` is run anywhere.

One cluster (3 nodes, 3 owners with agents) serves three cases, in order:
(a) a task is posted; the three agents contribute on their own; it finalizes with the
    correct mean, and ``task status --bootstrap`` shows every owner's delivered notice.
(b) agent A is paused before a task is posted; once the committee sits, one seat's node is
    paused too (down: requests to it time out); A shares, two seats acknowledge, A is killed
    (SIGKILL) and restarted; the seat comes back; A re-sends the SAME stored contribution
    (no second sharing; the seat's stored shares are byte-for-byte the pre-kill ones) and
    the task finalizes with the correct mean.
(c) a task whose reward is below owner C's minimum is pending at C (the requester sees why);
    ``dnode owner approve`` makes C contribute and it finalizes; on a second such task
    ``dnode owner reject --reason`` shows the reason to the requester.
(d) the marketplace: three owners publish datasets, a requester browses, samples and buys a
    task over them with a private result; the agents serve it and each owner is paid.
(e) an agent whose policy asks more than its dataset's on-chain price keeps such a task
    pending, the requester sees the reason, the owner rejects it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
import trio

from dnode.cli.devcluster import ClusterError, DevCluster, Member, NodeProc
from dnode.contracts.client import ChainClient
from dnode.node.metrics import parse_metrics
from dnode.node.owner.state import OwnerState
from dnode.node.protocol import Contribution
from dnode.oracle.encoding import AggregateResult
from tests.test_e2e_capture import INPUTS, _chain, _wait, holds_number

pytestmark = pytest.mark.slow

C_MIN_REWARD = "0.5ether"
HIGH, LOW = "0.6ether", "0.3ether"


class Setup:
    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.dataset_ids: dict[str, int] = {}
        self.nodes = cluster.start_nodes([f"node-{i}" for i in range(3)])
        self.requester = cluster.member("requester")
        self.owners = {n: cluster.member(n) for n in INPUTS}
        self.files = cluster.write_inputs(INPUTS)
        self.agents: dict[str, NodeProc] = {}
        for name, m in self.owners.items():
            cfg = cluster.workdir / f"{name}.toml"
            policy = f'min_reward = "{C_MIN_REWARD}"\n' if name == "owner-c" else ""
            cfg.write_text(
                "poll_interval = 1.0\nretry_interval = 2.0\nnotice_interval = 10.0\n"
                f'[[dataset]]\nname = "{name}-values"\nfile = "{self.files[name]}"\n'
                f"[dataset.policy]\n{policy}"
            )
            extra = ["--log-format", "json"] if name == "owner-a" else []
            self.agents[name] = cluster.start_agent(m, cfg, extra)
        self.chain: ChainClient = _chain(cluster)
        values = [Fraction(v) for vs in INPUTS.values() for v in vs]
        self.expected = AggregateResult.from_fraction(sum(values) / len(values), len(values))

    def post(self, reward: str, *extra: str) -> int:
        return self.cluster.post_mpc(
            self.requester, list(self.owners.values()), reward=reward,
            extra=["--input-timeout", "300", *extra],
        )  # fmt: skip

    def result(self, task_id: int) -> dict[str, Any]:
        return self.cluster.dnode(self.requester, "task", "result", str(task_id), "--wait", "300")

    def owners_seen(self, task_id: int) -> dict[str, dict[str, Any]]:
        out = self.cluster.dnode(
            self.requester, "task", "status", str(task_id),
            "--bootstrap", self.cluster.bootstrap()[0],
        )  # fmt: skip
        return {o["owner"].lower(): o for o in out.get("owners", [])}

    def wait_owner(self, task_id: int, owner: Member, state: str, timeout: float = 90) -> dict:
        def seen() -> dict[str, Any] | None:
            o = self.owners_seen(task_id).get(owner.address.lower())
            return o if o and o["state"] == state else None

        return _wait(seen, f"owner {owner.name} {state} on task {task_id}", timeout)

    def log(self, name: str) -> str:
        return self.agents[name].log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    cluster = DevCluster(tmp_path_factory.mktemp("owner-agents"), challenge_period=5, accounts=16)
    with cluster.running():
        yield Setup(cluster)
        for p in [*cluster.nodes, *cluster.agents]:
            text = p.log_path.read_text(errors="replace")
            # a crash; (an MPC attempt that failed while a seat was paused is retried by the
            # node and logs MPyC's "Traceback (enclosing MPyC coroutine call)" line: not one)
            assert "Traceback (most recent call last)" not in text, text[-3000:]


def test_a_agents_contribute_without_any_manual_command(setup: Setup) -> None:
    s = setup
    task_id = s.post(HIGH)
    res = s.result(task_id)
    assert res["value_scaled"] == s.expected.value
    s.cluster.wait_status(s.requester, task_id, "finalized", timeout=120)
    for name, m in s.owners.items():
        assert f"task {task_id} round 0: sharing recorded" in s.log(name)
        assert s.wait_owner(task_id, m, "delivered")["reason"] == ""
    # owner A logs one JSON object per line
    line = next(ln for ln in s.log("owner-a").splitlines() if "sharing recorded" in ln)
    assert json.loads(line)["logger"] == "dnode.owner"
    # the agent's /status and /metrics
    import urllib.request

    url = s.agents["owner-a"].metrics
    assert url
    status = json.loads(urllib.request.urlopen(f"{url}/status", timeout=10).read())
    assert status["decisions"].get("accepted", 0) >= 1
    metrics = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    assert parse_metrics(metrics)["dnode_owner_deliveries_total"] == 3


def test_b_killed_agent_resumes_its_one_sharing_and_reaches_a_seat_that_was_down(
    setup: Setup,
) -> None:
    s, cl = setup, setup.cluster
    a = s.agents["owner-a"]
    a_addr = s.owners["owner-a"].address
    cl.signal_node(a, signal.SIGSTOP)  # A sees nothing until the committee sits
    task_id = s.post(HIGH)
    committee = _wait(lambda: s.chain.seats(task_id), "the committee", 180)
    boot = cl.bootstrap()[0]
    down_seat = next(i for i, m in enumerate(committee)
                     if not any(boot in x for x in _node(s, m).addrs))  # fmt: skip
    down = _node(s, committee[down_seat])
    cl.signal_node(down, signal.SIGSTOP)  # the seat is down: requests to it time out
    try:
        cl.signal_node(a, signal.SIGCONT)
        db = OwnerState(a.member.home / "owner-state")

        def half_delivered() -> list[bytes] | None:
            rows = db.sharing(task_id, 0)
            acked = [r.acked_at is not None for r in rows]
            if len(rows) == 3 and sum(acked) == 2 and rows[down_seat].attempts >= 1:
                return [r.contribution for r in rows]
            return None

        stored = _wait(half_delivered, "A's shares at the two live seats", 120)
        cl.kill_node(a)  # mid-task: one seat never acknowledged
        db.close()
        cl.restart_agent(a)
    finally:
        cl.signal_node(down, signal.SIGCONT)
    res = s.result(task_id)
    assert res["value_scaled"] == s.expected.value
    s.cluster.wait_status(s.requester, task_id, "finalized", timeout=120)
    text = s.log("owner-a")
    assert text.count(f"task {task_id} round 0: sharing recorded") == 1  # exactly once
    assert f"task {task_id} round 0: resuming the stored sharing (2 of 3 seats acked)" in text
    # the seat that was down holds exactly the contribution stored before the kill
    kept = down.member.home / "state" / f"task-{task_id}" / f"shares-{a_addr.lower()}.json"
    got = Contribution.parse("t", json.dumps(json.loads(kept.read_text())).encode())
    want = Contribution.parse("t", stored[down_seat])
    assert got.shares == want.shares and got.commitment == want.commitment
    # A retried that seat until it came back; every owner's shares reached it (B and C may
    # have delivered before it was paused: they are not held back)
    lines = [ln for ln in text.splitlines() if f"task {task_id} round 0: seat {down_seat} (" in ln]
    assert any("unreachable, retrying" in ln for ln in lines), lines
    for name in ("owner-a", "owner-b", "owner-c"):
        lines = [ln for ln in s.log(name).splitlines()
                 if f"task {task_id} round 0: seat {down_seat} (" in ln]  # fmt: skip
        assert "acknowledged the shares" in lines[-1], lines


def _node(s: Setup, address: str) -> NodeProc:
    return next(n for n in s.cluster.nodes if n.member.address.lower() == address.lower())


def test_c_pending_approve_and_reject_reach_the_requester(setup: Setup) -> None:
    s, cl = setup, setup.cluster
    c = s.owners["owner-c"]
    task_id = s.post(LOW)
    seen = s.wait_owner(task_id, c, "pending")
    assert "below the minimum 500000000000000000 wei" in seen["reason"]
    pend = cl.dnode(c, "owner", "pending")["pending"]
    assert [p["task_id"] for p in pend] == [task_id]
    for name in ("owner-a", "owner-b"):
        s.wait_owner(task_id, s.owners[name], "delivered")
    cl.dnode(c, "owner", "approve", str(task_id))
    res = s.result(task_id)
    assert res["value_scaled"] == s.expected.value
    assert s.wait_owner(task_id, c, "delivered")

    refused = s.post(LOW)
    s.wait_owner(refused, c, "pending")
    cl.dnode(c, "owner", "reject", str(refused), "--reason", "not for this requester")
    seen = s.wait_owner(refused, c, "rejected")
    assert seen["reason"] == "not for this requester"
    out = cl.dnode(None, "--home", str(s.requester.home), "task", "status", str(refused),
                   "--bootstrap", cl.bootstrap()[0])  # fmt: skip
    assert any(o["state"] == "rejected" for o in out["owners"])
    # approving a task that is no longer pending: one line, non-zero exit
    r = subprocess.run(
        [sys.executable, "-m", "dnode.cli", "--home", str(c.home), "owner", "approve",
         str(refused)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode != 0
    assert r.stderr.strip() == f"error: task {refused} is not pending (it is rejected)"


# ---- (d) the marketplace: datasets on-chain, a task bought over them, a private result ----

#: three tables with different schemas; the task reads the column they share
TABLES = {
    "owner-a": "income,age\n52000,41\n31000,29\n47000,55\n",
    "owner-b": "region,income\nnorth,61000\nsouth,38000\n",
    "owner-c": "income\n44000\n59000\n",
}
PRICE = 10**16  # 0.01 ether per task


def test_d_a_task_bought_over_three_datasets_pays_their_owners_privately(setup: Setup) -> None:
    s, cl = setup, setup.cluster
    ids: dict[str, int] = {}
    for name, m in s.owners.items():
        table = cl.workdir / f"{name}-table.csv"
        table.write_text(TABLES[name])
        schema = cl.workdir / f"{name}-schema.json"
        schema.write_text(json.dumps({"columns": TABLES[name].splitlines()[0].split(",")}))
        mock = cl.workdir / f"{name}-mock.csv"
        mock.write_text(TABLES[name].splitlines()[0] + "\n" + "1,2\n" * 2)
        pub = cl.dnode(
            m, "data", "publish", "--schema", str(schema), "--rows", "3", "--price", "0.01ether",
            "--program", "mpc.mean", "--epsilon", "1", "--sample", mock.as_uri(),
        )  # fmt: skip
        ids[name] = pub["dataset_id"]
        cfg = cl.workdir / f"{name}.toml"  # the agent now also serves this dataset
        cfg.write_text(
            cfg.read_text().replace("[[dataset]]", f'[[dataset]]\nname = "{name}-table"\n'
                                    f'file = "{table}"\ndataset_id = {pub["dataset_id"]}\n'
                                    "[dataset.policy]\n\n[[dataset]]", 1)
        )  # fmt: skip
        agent = s.agents[name]
        agent.proc.send_signal(signal.SIGTERM)
        agent.proc.wait(60)
        cl.restart_agent(agent)

    s.dataset_ids = ids  # (e) reuses them
    # the requester browses the catalogue and develops against a sample before paying
    listed = {d["dataset_id"]: d for d in cl.dnode(s.requester, "data", "list")["datasets"]}
    assert set(ids.values()) <= set(listed)
    assert all(listed[i]["price"] == PRICE for i in ids.values())
    out = cl.workdir / "sample.csv"
    cl.dnode(s.requester, "data", "sample", str(ids["owner-b"]), "--out", str(out))
    assert out.read_text().startswith("region,income")
    before = {n: s.chain.credits(m.address) for n, m in s.owners.items()}

    boot = cl.bootstrap()[0]
    sets = [a for i in ids.values() for a in ("--dataset", str(i))]
    posted = cl.dnode(
        s.requester, "task", "post", "--program", "mpc.mean", "--reward", HIGH,
        "--column", "income:int:0:1000000", *sets, "--privacy-cost", "0.1",
        "--private-result", "--input-timeout", "300", "--bootstrap", boot,
    )  # fmt: skip
    task_id = posted["task_id"]
    res = cl.dnode(s.requester, "task", "result", str(task_id), "--wait", "300",
                   "--bootstrap", boot)  # fmt: skip
    incomes = [int(r.split(",")[0 if n != "owner-b" else 1])
               for n, t in TABLES.items() for r in t.splitlines()[1:]]  # fmt: skip
    want = AggregateResult.from_fraction(Fraction(sum(incomes), len(incomes)), len(incomes))
    assert res["private"] is True and res["value_scaled"] == want.value, res
    cl.wait_status(s.requester, task_id, "finalized", timeout=120)

    # every agent contributed on its own and settled: each owner is credited its price
    for name, m in s.owners.items():
        assert f"task {task_id} round 0: sharing recorded" in s.log(name)
        _wait(lambda m=m, n=name: s.chain.credits(m.address) == before[n] + PRICE,
              f"{name} credited", 120)  # fmt: skip
        left = cl.dnode(s.requester, "data", "show", str(ids[name]))["budget_left"]
        assert left == pytest.approx(0.9)
    # the chain holds a digest; no node's log or state holds the mean or the total
    for n in cl.nodes:
        for f in [n.log_path, *(p for p in n.member.home.rglob("*") if p.is_file())]:
            data = f.read_bytes()
            assert not holds_number(data, str(sum(incomes))), f
            assert not holds_number(data, want.texts()[0]), f


def test_e_a_price_below_the_owners_minimum_stays_pending_with_the_reason(setup: Setup) -> None:
    """The owner's agent asks more than the dataset's on-chain price (its policy's min_price):
    the task is not served, and the requester sees why (the refusal the issue lists as "price
    below the owner's minimum"); the owner rejects it from the pending list."""
    s, cl = setup, setup.cluster
    ids, c = s.dataset_ids, s.owners["owner-c"]
    cfg = cl.workdir / "owner-c.toml"
    text = cfg.read_text()
    assert "[dataset.policy]\n\n[[dataset]]" in text  # the table's policy, set in (d)
    cfg.write_text(
        text.replace(
            "[dataset.policy]\n\n[[dataset]]",
            '[dataset.policy]\nmin_price = "0.02ether"\n\n[[dataset]]',
            1,
        )
    )
    agent = s.agents["owner-c"]
    agent.proc.send_signal(signal.SIGTERM)
    agent.proc.wait(60)
    cl.restart_agent(agent)

    sets = [a for i in ids.values() for a in ("--dataset", str(i))]
    posted = cl.dnode(
        s.requester, "task", "post", "--program", "mpc.mean", "--reward", HIGH,
        "--column", "income:int:0:1000000", *sets, "--privacy-cost", "0.1",
        "--input-timeout", "300", "--bootstrap", cl.bootstrap()[0],
    )  # fmt: skip
    task_id = posted["task_id"]
    seen = s.wait_owner(task_id, c, "pending")
    assert (
        "price 10000000000000000 wei is below the minimum 20000000000000000 wei" in (seen["reason"])
    ), seen
    cl.dnode(c, "owner", "reject", str(task_id), "--reason", "price below my minimum")
    assert s.wait_owner(task_id, c, "rejected")["reason"] == "price below my minimum"


def test_f_a_dp_task_charges_its_composed_cost_and_an_undercharged_one_is_refused(
    setup: Setup,
) -> None:
    """Issue 18: a stats task with --epsilon over two datasets charges each dataset's budget
    the composed cost of its noisy outputs (derived, not typed in), the result states the
    guarantee, and ``data show`` lists the charge. A requester posting straight to the
    contract with a charge of 0.01 for epsilon = 5 outputs finds no node to compute it and no
    owner agent to serve it; once refunded and settled, its charge is released."""
    s, cl = setup, setup.cluster
    ids = [s.dataset_ids["owner-a"], s.dataset_ids["owner-b"]]  # (owner C's policy: pending)

    def left() -> dict[int, int]:  # micro-epsilon, read from the chain
        return {i: s.chain.dataset_info(i).budget_left for i in ids}

    before = left()
    boot = cl.bootstrap()[0]
    sets = [a for i in ids for a in ("--dataset", str(i))]
    column = "income:int:0:100000"
    posted = cl.dnode(
        s.requester, "task", "post", "--program", "mpc.mean", "--reward", HIGH,
        "--column", column, *sets, "--epsilon", "0.5", "--input-timeout", "300",
        "--bootstrap", boot,
    )  # fmt: skip
    task_id = posted["task_id"]
    assert posted["privacy_costs"] == [0.5, 0.5] and posted["dp"]["epsilon"] == "0.5"
    res = cl.dnode(s.requester, "task", "result", str(task_id), "--wait", "300",
                   "--bootstrap", boot)  # fmt: skip
    g = res["dp"]
    assert g["epsilon"] == "0.5" and float(g["delta"]) <= 1e-9, g
    assert g["releases"] == [{"name": "sum", "size": 1, "sensitivity_l1": 100000,
                              "scale": "200000", "epsilon": "0.5"}], g  # fmt: skip
    assert "discrete Laplace" in g["mechanism"]
    # the on-chain budget dropped by exactly the composed cost (OpenDP: 0.5 for one release)
    assert left() == {i: before[i] - 500_000 for i in ids}
    # the CLI never lets a DP task's charge be typed in
    with pytest.raises(ClusterError, match="derived from --epsilon"):
        cl.dnode(s.requester, "task", "post", "--program", "mpc.mean", "--reward", HIGH,
                 "--column", column, *sets, "--epsilon", "5", "--privacy-cost", "0.01")  # fmt: skip

    # the attack: straight to the contract, 0.01 charged for epsilon 5 outputs
    from eth_account import Account

    from dnode.contracts.client import connect
    from dnode.contracts.manifest import Deployment
    from dnode.node import peer_client
    from dnode.scheduler.programs import Column, TaskParams

    attacker = ChainClient(connect(cl.rpc_url), Deployment.load(cl.manifest),
                           Account.from_key(cl.dev_key()))  # fmt: skip
    owners = tuple(s.chain.dataset_info(i).owner for i in ids)
    params = TaskParams("mpc.mean", owners, args={"epsilon": "5"},
                        columns=(Column.parse_flag(column),), input_timeout=60)  # fmt: skip
    spec = params.spec
    now = attacker.block_timestamp()
    before = left()
    attack = attacker.post_data_task(
        spec.program_id, params.digest, datasets=ids, costs=[10_000, 10_000],
        reward=10**17, seat_deadline=now + 8, capability=spec.capability_bit,
    )  # fmt: skip
    trio.run(peer_client.announce, [boot], attack, params)
    for n in cl.nodes:  # every node refuses, saying why
        _wait(lambda n=n: f"task {attack}: not taking a seat: dataset" in
              n.log_path.read_text(errors="replace"), f"{n.member.name} refuses", 60)  # fmt: skip
    assert "compose to 5" in cl.nodes[0].log_path.read_text(errors="replace")
    # and so does each owner's agent (its data is what the budget protects)
    for name in ("owner-a", "owner-b"):
        _wait(lambda name=name: f"task {attack}: refused because dataset" in s.log(name),
              f"{name}'s agent refuses", 60)  # fmt: skip
    assert left() == {i: before[i] - 10_000 for i in ids}
    # nobody sat: after its seat deadline it is refunded, and settling releases the charge
    _wait(lambda: attacker.block_timestamp() > now + 8, "the seat deadline", 90)
    attacker.cancel(attack)
    attacker.settle_datasets(attack)
    assert left() == before
    # the ledger (dnode data show): the DP task's charge and the released one
    shown = cl.dnode(s.requester, "data", "show", str(ids[0]))
    assert shown["budget_left"] == pytest.approx(before[ids[0]] / 1e6)
    by_task = {e["task_id"]: e for e in shown["ledger"]}
    assert by_task[task_id]["cost"] == 0.5 and by_task[task_id]["state"] in ("charged", "spent")
    assert by_task[attack] == {"task_id": attack, "cost": 0.01, "state": "released"}

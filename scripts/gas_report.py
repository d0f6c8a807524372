"""Gas of the dnode task lifecycle (m = 3), measured on the embedded devnet over JSON-RPC.

For each registry size (default 10 and 1000 registered nodes, all able to sit) the script
deploys a fresh contract, registers the nodes, then runs 10 tasks back to back as real nodes
run them (issue 12: ranked formation):

    post_task -> form_committee (the best-ranked 3, as the nodes rank them, right after the
    seed block: no skip) -> report (3 of 3 signatures, the 160-byte aggregate the CLI's mean
    produces) -> finalize (after the challenge window)

and finally every node paid withdraws once: its credits from all the tasks it signed (pull
payments batch across tasks). The lifecycle cost per task (`total`) is the mean of each step
over the 10 tasks plus the withdrawals divided by 10; `within_250k` says whether it fits the
250,000 budget. Three nodes hold most of the stake, so they are ranked first almost always
and withdrawals stay batched. Posting and reporting must cost the same (within 5%) whatever
the number of registered nodes; so must committee formation, whose ranked check reads the
slots of the draws ranked above the worst member only, never a registry loop.

Then, on a separate deployment of 9 equal nodes, one dispute of a reported task by its
requester, measured on every way it can end (chain snapshots rewind between them): `dispute`,
`form_rerun_committee` (the best-ranked m + 2 = 5 right after the seed block), `report_rerun`
upheld and overturned (3 of 5 signatures), and `resolve_dispute` when no re-execution
committee formed. Not part of the lifecycle total.

Then 5 consumer tasks (docs/protocol.md, "Consuming results") through the example dApp
contracts/examples/price_feed.vy: `request` (the dApp posts with itself as callback, cap
150k), `report` (which also stores the result bytes), `finalize` (which calls the dApp back;
it decodes the mean and sets its price). Plain tasks do not pay for any of this.

Then the data marketplace (issue 15), on a deployment of 9 equal nodes: `register_dataset`
(one allowed program, a 40-character locator), `update_dataset`, `post_data_task` over 1 and
over 3 datasets (beside a plain `post_task` on the same deployment), `settle_datasets` of
each once finalized (the owners' prices to their credits) and of a refunded one (prices back,
budget released), and an owner's `withdraw`.

    python scripts/gas_report.py            # table
    python scripts/gas_report.py --json     # machine-readable
    python scripts/gas_report.py --only data --json   # the data marketplace alone (~20 s)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account  # noqa: E402
from eth_utils import keccak  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.logs import DISCARD  # noqa: E402

from dnode.contracts.client import ChainClient, connect, send_transaction  # noqa: E402
from dnode.contracts.compile import VYPER_DIR, compile_file  # noqa: E402
from dnode.contracts.deploy import deploy  # noqa: E402
from dnode.contracts.devnet import start_in_thread  # noqa: E402
from dnode.oracle.attestation import sign_join, sign_report  # noqa: E402
from dnode.oracle.encoding import AggregateResult  # noqa: E402
from dnode.scheduler.candidates import candidates_for, lookup_draws  # noqa: E402

ETHER = 10**18
BUDGET = 250_000
TASKS = 10
M = 3
CHALLENGE = 60
STEPS = ("post_task", "form_committee", "report", "finalize")
CONSUMER_TASKS = 5
CONSUMER_STEPS = ("request (post_task via the dApp)", "report (+ stores result)",
                  "finalize (+ callback)", "report (plain task, same result)")  # fmt: skip
# what the dApp decodes: abi(int256[] [42.5 * 10**18], uint8 18, uint256 15), 160 bytes
MEAN_RESULT = AggregateResult((425 * 10**17,), 18, 15).encode()
EXAMPLE = Path(__file__).resolve().parent.parent / "contracts" / "examples" / "price_feed.vy"
MEMBER_STAKE = 300 * ETHER  # 3,000 sortition slots each: the members are drawn early
SLOT = ETHER // 10  # seat collateral = min stake here: a filler node owns one slot
RESULT = MEAN_RESULT  # what `dnode task post --program mpc.mean` gets reported (160 bytes)
SIGNERS = 3


def _acct(label: str):
    return Account.from_key(keccak(text=f"dnode-gas/{label}"))


class _Deployment:
    """A fresh devnet with dnode deployed (min stake = seat collateral = SLOT); ``funded``
    makes a funded account's client (draw lookups off-chain, as nodes do)."""

    def __init__(self) -> None:
        self.server, url = start_in_thread(port=0)
        self.w3 = connect(url, timeout=120)
        self.deployer = _acct("deployer")
        self.fund(self.deployer.address, 100 * ETHER)
        self.dep = deploy(
            self.w3,
            self.deployer,
            min_stake=SLOT,
            seat_collateral=SLOT,
            unbond_delay=3600,
            challenge_period=CHALLENGE,
        )

    def fund(self, address: str, wei: int) -> None:
        self.w3.eth.send_transaction({"from": self.w3.eth.accounts[0], "to": address, "value": wei})

    def client(self, acct) -> ChainClient:
        c = ChainClient(self.w3, self.dep, acct)
        c.draw_lookup = lookup_draws
        return c

    def funded(self, label: str, wei: int = 10 * ETHER) -> ChainClient:
        acct = _acct(label)
        self.fund(acct.address, wei)
        return self.client(acct)

    def equal_nodes(self, prefix: str, count: int, slots: int = 2) -> dict[str, ChainClient]:
        """``count`` registered nodes of ``slots`` sortition slots each, by lower-case address."""
        everyone = {}
        for i in range(count):
            c = self.funded(f"{prefix}-node{i}", ETHER)
            c.register(f"12D3KooW{prefix}{i}", 1)
            c.stake(slots * SLOT)
            everyone[c.account.address.lower()] = c
        return everyone

    def __enter__(self) -> _Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def _fill_registry(w3: Web3, client_for, count: int, fillers: list[ChainClient]) -> None:
    """Register `count` extra nodes (funded, registered, staked: one sortition slot each), all
    able to sit on the measured tasks: when one is ranked among the first three it sits."""
    funder = w3.eth.accounts[0]
    for i in range(count):
        acct = _acct(f"filler{i}")
        w3.eth.send_transaction({"from": funder, "to": acct.address, "value": ETHER})
        c = client_for(acct)
        c.register(f"12D3KooWfiller{i}", 1)
        c.stake(SLOT)
        fillers.append(c)


def measure(n_nodes: int) -> dict:
    with _Deployment() as d:
        w3, dep, deployer, client_for = d.w3, d.dep, d.deployer, d.client
        members = []
        for i in range(M):
            acct = _acct(f"member{i}")
            w3.eth.send_transaction(
                {"from": w3.eth.accounts[0], "to": acct.address, "value": 2 * MEMBER_STAKE}
            )
            c = client_for(acct)
            c.register(f"12D3KooWmember{i}", 1)
            c.set_terms(0, 16)  # declared capacity (checked per seat), no price (the CLI default)
            c.stake(MEMBER_STAKE)
            while c.slots_owned(acct.address) < MEMBER_STAKE // (ETHER // 10):
                c.sync_slots()  # stake() appends at most 64 slots per call
            members.append(c)
        fillers: list[ChainClient] = []
        _fill_registry(w3, client_for, n_nodes - M, fillers)
        everyone = {c.account.address.lower(): c for c in [*members, *fillers]}
        requester_acct = _acct("requester")
        w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": requester_acct.address, "value": 100 * ETHER}
        )
        requester = client_for(requester_acct)

        gas: dict[str, list[int]] = {s: [] for s in STEPS}
        for k in range(TASKS):
            now = int(w3.eth.get_block("latest")["timestamp"])
            task_id = requester.post_task(
                b"\x01" * 32,
                keccak(text=f"params-{k}"),
                capability=1,
                committee_size=M,
                seat_deadline=now + 100,
                report_deadline=now + 1000,
                reward=3 * 10**17 + k,
            )
            gas["post_task"].append(requester.last_tx.gas_used)
            w3.provider.make_request("anvil_mine", ["0x1"])  # the seed block
            seated = _ranked(requester, task_id, everyone)
            submitter = seated[k % M]
            sigs = [
                None
                if c is submitter
                else sign_join(c.account, dep.chain_id, dep.address, task_id, 0)
                for c in seated
            ]
            submitter.form_committee(task_id, [c.account.address for c in seated], sigs)
            gas["form_committee"].append(submitter.last_tx.gas_used)
            report_sigs = [
                sign_report(c.account, dep.chain_id, dep.address, task_id, RESULT)
                for c in seated[:SIGNERS]
            ]
            submitter.report(task_id, RESULT, report_sigs)
            gas["report"].append(submitter.last_tx.gas_used)
            w3.provider.make_request(
                "evm_mine", [int(w3.eth.get_block("latest")["timestamp"]) + CHALLENGE + 1]
            )
            submitter.finalize(task_id)
            gas["finalize"].append(submitter.last_tx.gas_used)
        # one more formation with members that ask a price: one extra storage read per seat
        for c in members:
            c.set_terms(10**17, 16)
        now = int(w3.eth.get_block("latest")["timestamp"])
        priced = requester.post_task(
            b"\x01" * 32,
            keccak(text="params-priced"),
            capability=1,
            committee_size=M,
            seat_deadline=now + 100,
            report_deadline=now + 1000,
            reward=3 * 10**17,
        )
        w3.provider.make_request("anvil_mine", ["0x1"])
        seated = _ranked(requester, priced, everyone)
        sigs = [None] + [
            sign_join(c.account, dep.chain_id, dep.address, priced, 0) for c in seated[1:]
        ]
        seated[0].form_committee(priced, [c.account.address for c in seated], sigs)
        form_priced = seated[0].last_tx.gas_used
        withdrawals = []
        for c in everyone.values():
            if c.credits() > 0:
                c.withdraw()
                withdrawals.append(c.last_tx.gas_used)
        per_step = {s: round(statistics.mean(v)) for s, v in gas.items()}
        per_step["withdraw (amortized)"] = round(sum(withdrawals) / TASKS)
        consumer = _consumer_tasks(w3, dep, deployer, everyone)
        return {
            "registered_nodes": n_nodes,
            "tasks": TASKS,
            "committee_size": M,
            "result_bytes": len(RESULT),
            "report_signatures": SIGNERS,
            "steps": per_step,
            "first_task": {s: v[0] for s, v in gas.items()},
            "withdrawals": withdrawals,
            "form_committee_members_with_price": form_priced,
            "total_per_task": sum(per_step.values()),
            "total": sum(per_step.values()),
            "within_250k": sum(per_step.values()) <= BUDGET,
            "consumer": consumer,
        }


def _ranked(
    requester: ChainClient, task_id: int, everyone: dict[str, ChainClient]
) -> list[ChainClient]:
    """The best-ranked m nodes, as every node ranks them (what the contract accepts with no
    skip right after the seed block)."""
    cands = candidates_for(requester, requester.task_info(task_id))
    if cands is None:
        raise SystemExit(f"task {task_id}: no sortition seed")
    return [everyone[c.address.lower()] for c in cands.ranking(want=M).candidates]


def measure_disputes() -> dict:
    """Gas of each way a dispute ends, on one reported task (rewound between endings), with
    9 equal nodes (two slots each) so the re-execution's ranking walk stays short."""
    with _Deployment() as d:
        everyone = d.equal_nodes("disputes", 3 * M)
        requester = d.funded("disputes-requester", ETHER)
        return _dispute_paths(d.w3, requester, everyone)


def _dispute_paths(w3: Web3, requester: ChainClient, everyone: dict[str, ChainClient]) -> dict:
    dep = requester.deployment
    now = int(w3.eth.get_block("latest")["timestamp"])
    task_id = requester.post_task(
        b"\x01" * 32,
        keccak(text="params-disputed"),
        capability=1,
        committee_size=M,
        seat_deadline=now + 100,
        report_deadline=now + 1000,
        reward=10**17,
    )
    w3.provider.make_request("anvil_mine", ["0x1"])
    seated = _ranked(requester, task_id, everyone)
    sigs = [None] + [
        sign_join(c.account, dep.chain_id, dep.address, task_id, 0) for c in seated[1:]
    ]
    seated[0].form_committee(task_id, [c.account.address for c in seated], sigs)
    seated[0].report(
        task_id,
        RESULT,
        [sign_report(c.account, dep.chain_id, dep.address, task_id, RESULT) for c in seated],
    )
    requester.dispute(task_id)
    gas = {"dispute": requester.last_tx.gas_used}
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    w3.provider.make_request("anvil_mine", ["0x1"])  # the re-execution's seed block
    cands = candidates_for(requester, requester.task_info(task_id), 1)
    if cands is None:
        raise SystemExit(f"task {task_id}: no re-execution seed")
    rerun = [everyone[c.address.lower()] for c in cands.ranking(want=M + 2).candidates]
    sigs = [None] + [sign_join(c.account, dep.chain_id, dep.address, task_id, 1) for c in rerun[1:]]
    rerun[0].form_rerun_committee(task_id, [c.account.address for c in rerun], sigs)
    gas["form_rerun_committee"] = rerun[0].last_tx.gas_used
    formed = w3.provider.make_request("evm_snapshot", [])["result"]
    for name, result in (("report_rerun (upheld)", RESULT), ("report_rerun (overturned)", b"x")):
        rsigs = [
            sign_report(c.account, dep.chain_id, dep.address, task_id, result) for c in rerun[:3]
        ]
        rerun[0].report_rerun(task_id, result, rsigs)
        gas[name] = rerun[0].last_tx.gas_used
        w3.provider.make_request("evm_revert", [formed])
        formed = w3.provider.make_request("evm_snapshot", [])["result"]
    w3.provider.make_request("evm_revert", [snap])
    period = int(dep.params["dispute_period"])
    w3.provider.make_request(
        "evm_mine", [int(w3.eth.get_block("latest")["timestamp"]) + period // 4 + 1]
    )
    requester.resolve_dispute(task_id)
    gas["resolve_dispute (no re-execution committee)"] = requester.last_tx.gas_used
    return gas


def _consumer_tasks(w3: Web3, dep, operator, everyone: dict[str, ChainClient]) -> dict:
    """Mean gas of the consumer-task steps, through the PriceFeed example dApp."""
    art = compile_file(EXAMPLE, [VYPER_DIR])
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    ctor = factory.constructor(dep.address, keccak(text="mpc.mean"))
    receipt = send_transaction(w3, operator, "deploy", to=None, data=ctor.data_in_transaction)
    feed = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    gas: dict[str, list[int]] = {s: [] for s in CONSUMER_STEPS}
    delivered = 0
    requester = ChainClient(w3, dep, operator)
    for k in range(2 * CONSUMER_TASKS):
        consumer = k % 2 == 0  # alternate with plain tasks reporting the same bytes
        if consumer:
            data = feed.encode_abi("request", args=[keccak(text=f"feed-{k}"), M, 100, 1000])
            receipt = send_transaction(
                w3, operator, "request", to=feed.address, data=data, value=3 * 10**17
            )
            gas[CONSUMER_STEPS[0]].append(int(receipt["gasUsed"]))
            (ev,) = feed.events.PriceRequested().process_receipt(receipt, errors=DISCARD)
            task_id = int(ev["args"]["task_id"])
        else:
            now = int(w3.eth.get_block("latest")["timestamp"])
            task_id = requester.post_task(
                keccak(text="mpc.mean"),
                keccak(text=f"plain-{k}"),
                committee_size=M,
                seat_deadline=now + 100,
                report_deadline=now + 1000,
                reward=3 * 10**17,
            )
        w3.provider.make_request("anvil_mine", ["0x1"])  # the seed block
        seated = _ranked(requester, task_id, everyone)
        submitter = seated[k % M]
        sigs = [
            None if c is submitter else sign_join(c.account, dep.chain_id, dep.address, task_id, 0)
            for c in seated
        ]
        submitter.form_committee(task_id, [c.account.address for c in seated], sigs)
        signers = [seated[k % M], seated[(k + 1) % M]]
        report_sigs = [
            sign_report(c.account, dep.chain_id, dep.address, task_id, MEAN_RESULT) for c in signers
        ]
        submitter.report(task_id, MEAN_RESULT, report_sigs)
        gas[CONSUMER_STEPS[1 if consumer else 3]].append(submitter.last_tx.gas_used)
        w3.provider.make_request(
            "evm_mine", [int(w3.eth.get_block("latest")["timestamp"]) + CHALLENGE + 1]
        )
        submitter.finalize(task_id)
        if consumer:
            gas[CONSUMER_STEPS[2]].append(submitter.last_tx.gas_used)
            delivered += submitter.task_info(task_id).callback_ok is True
    if delivered != CONSUMER_TASKS or feed.functions.price().call() != 425 * 10**17:
        raise SystemExit(f"consumer callbacks: only {delivered}/{CONSUMER_TASKS} delivered")
    return {
        "tasks": CONSUMER_TASKS,
        "result_bytes": len(MEAN_RESULT),
        "callback_gas_cap": 150_000,
        "steps": {s: round(statistics.mean(v)) for s, v in gas.items()},
    }


def measure_data() -> dict:
    """Gas of the data marketplace steps (9 equal nodes, m = 3, 3 owners)."""
    with _Deployment() as d:
        everyone = d.equal_nodes("data", 3 * M)
        return _data_paths(d.w3, d.funded, everyone)


def _data_paths(w3: Web3, funded, everyone: dict[str, ChainClient]) -> dict:
    program = keccak(text="stats.mean")
    owners = [funded(f"data-owner{i}") for i in range(3)]
    requester = funded("data-requester")
    dep = requester.deployment
    now = int(w3.eth.get_block("latest")["timestamp"])
    gas: dict[str, int] = {}
    ids = []
    for i, o in enumerate(owners):
        ids.append(
            o.register_dataset(
                schema_digest=keccak(text=f"schema{i}"),
                rows=1000,
                price=10**16,
                expiry=now + 10**6,
                programs=[program],
                budget=10**7,
                locator="https://example.org/samples/table0.csv",
            )
        )
        gas.setdefault("register_dataset", o.last_tx.gas_used)
    owners[0].update_dataset(ids[0], price=2 * 10**16)
    gas["update_dataset"] = owners[0].last_tx.gas_used

    def run(task_id: int) -> None:
        w3.provider.make_request("anvil_mine", ["0x1"])
        seated = _ranked(requester, task_id, everyone)
        sigs = [None] + [
            sign_join(c.account, dep.chain_id, dep.address, task_id, 0) for c in seated[1:]
        ]
        seated[0].form_committee(task_id, [c.account.address for c in seated], sigs)
        seated[0].report(
            task_id,
            RESULT,
            [sign_report(c.account, dep.chain_id, dep.address, task_id, RESULT) for c in seated],
        )
        t = int(w3.eth.get_block("latest")["timestamp"])
        w3.provider.make_request("evm_mine", [t + CHALLENGE + 1])
        seated[0].finalize(task_id)

    def post(datasets: list[int]) -> int:
        seat_dl = int(w3.eth.get_block("latest")["timestamp"]) + 100
        if not datasets:
            return requester.post_task(
                program, keccak(text="p"), seat_deadline=seat_dl, reward=10**17
            )
        return requester.post_data_task(
            program,
            keccak(text="p"),
            datasets=datasets,
            costs=[100_000] * len(datasets),
            reward=10**17,
            seat_deadline=seat_dl,
        )

    plain = post([])
    gas["post_task (plain, same deployment)"] = requester.last_tx.gas_used
    run(plain)
    one = post(ids[:1])
    gas["post_data_task (1 dataset)"] = requester.last_tx.gas_used
    run(one)
    three = post(ids)
    gas["post_data_task (3 datasets)"] = requester.last_tx.gas_used
    run(three)
    requester.settle_datasets(one)
    gas["settle_datasets (paid, 1 dataset)"] = requester.last_tx.gas_used
    requester.settle_datasets(three)
    gas["settle_datasets (paid, 3 datasets)"] = requester.last_tx.gas_used
    refunded = post(ids[1:2])
    t = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request("evm_mine", [t + 101])
    requester.cancel(refunded)
    requester.settle_datasets(refunded)
    gas["settle_datasets (refund, 1 dataset)"] = requester.last_tx.gas_used
    owners[1].withdraw()
    gas["withdraw (owner)"] = owners[1].last_tx.gas_used
    return gas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument(
        "--nodes", type=int, nargs="+", default=[10, 1000], help="registry sizes to measure"
    )
    ap.add_argument("--only", choices=["data"], help="measure one section alone")
    args = ap.parse_args(argv)
    started = time.monotonic()
    if args.only == "data":
        data = measure_data()
        if args.json:
            print(json.dumps({"data": data, "seconds": round(time.monotonic() - started, 1)}))
        else:
            for s, g in data.items():
                print(f"{s:<46}{g:>10}")
        return 0
    runs = [measure(n) for n in args.nodes]
    disputes = measure_disputes()
    data = measure_data()
    lo, hi = runs[0], runs[-1]
    flat = {
        s: abs(hi["steps"][s] - lo["steps"][s]) / lo["steps"][s] <= 0.05
        for s in ("post_task", "form_committee", "report")
    }
    out = {
        "budget": BUDGET,
        "total": hi["total"],
        "within_250k": hi["total"] <= BUDGET,
        "runs": runs,
        "within_budget": all(r["total_per_task"] <= BUDGET for r in runs),
        "flat_within_5pct": flat,
        "disputes": disputes,
        "data": data,
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        names = list(lo["steps"])
        header = f"{'step':<22}" + "".join(f"{r['registered_nodes']:>10} nodes" for r in runs)
        print(f"dnode lifecycle gas, m={M}, mean over {TASKS} tasks (devnet, py-evm, Prague)")
        print(header)
        for s in names:
            print(f"{s:<22}" + "".join(f"{r['steps'][s]:>16}" for r in runs))
        print(f"{'total per task':<22}" + "".join(f"{r['total_per_task']:>16}" for r in runs))
        print(f"budget {BUDGET}: {'OK' if out['within_budget'] else 'EXCEEDED'}; flat: {flat}")
        print(f"consumer task (PriceFeed example), mean over {CONSUMER_TASKS} tasks")
        for s in CONSUMER_STEPS:
            print(f"{s:<34}" + "".join(f"{r['consumer']['steps'][s]:>12}" for r in runs))
        print("dispute paths (9 equal nodes, m = 3, re-execution 5 seats, 3 signatures)")
        for s, g in disputes.items():
            print(f"{s:<46}{g:>10}")
        print("data marketplace (9 equal nodes, m = 3, 3 owners)")
        for s, g in data.items():
            print(f"{s:<46}{g:>10}")
    return 0 if out["within_budget"] and all(flat.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Committee sortition at network scale, with the node's own selection code.

Runs ``scheduler.sortition`` (the functions the node, the CLI and the contract tests use) over a
registry of N nodes whose stakes follow a Pareto distribution, and reports:

* fairness: each node's share of seats against its share of stake, over many tasks (committee
  of 3), with the max relative deviation over nodes holding >= 0.1% of the stake and the
  binomial noise floor of the smallest such node;
* capture: the probability that a coalition (random nodes holding 10%, 20%, 33% of the stake)
  gets a majority of a committee of 3, 5, 7, (a) when the best-ranked candidates form it (what
  honest nodes do) and (b) when the coalition submits the formation transaction itself and
  seats any eligible candidates within the initial window of 2m + 4 draws (and after one
  doubling of it), which is all the contract can enforce;
* cost: selection time per task at 1,000 and 10,000 nodes.

Every task gets a fresh random seed (a block hash nobody knew when the task was posted) and a
random requester, who is excluded. Capacity and price are not modelled (every node eligible).

    python scripts/simulate_scheduler.py --json
    python scripts/simulate_scheduler.py --tasks 2000000 --json   # below the 5% noise floor
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dnode.scheduler.sortition import ESCALATE_BLOCKS, SlotTable, rank, window  # noqa: E402

ETHER = 10**18
MIN_STAKE = ETHER  # deploy default
SLOT_STAKE = ETHER // 10  # = seat collateral (deploy default)
THRESHOLD = 0.001  # nodes holding >= 0.1% of stake are checked for proportionality
TOLERANCE = 0.05


def registry(n: int, alpha: float, rng: random.Random) -> tuple[SlotTable, list[str], list[int]]:
    """n nodes with Pareto(alpha) stakes of at least MIN_STAKE, registered in random order."""
    addrs = [f"0x{i:040x}" for i in range(1, n + 1)]
    stakes = [int(MIN_STAKE * rng.paretovariate(alpha)) for _ in range(n)]
    table = SlotTable(SLOT_STAKE)
    for a, s in zip(addrs, stakes, strict=True):
        table.set_stake(a, s)
    return table, addrs, stakes


def select(table: SlotTable, seed: bytes, task_id: int, m: int, excluded: str) -> list[str]:
    """The best-ranked m eligible candidates: what honest nodes seat."""
    r = rank(
        seed,
        task_id,
        0,
        table.slot_count,
        table.holder,
        lambda a: "the requester" if a == excluded else None,
        window(m, 1 << 20),
        want=m,
    )
    return r.addresses()


def fairness(n: int, alpha: float, tasks: int, m: int, rng: random.Random) -> dict:
    table, addrs, stakes = registry(n, alpha, rng)
    total = sum(stakes)
    seats = dict.fromkeys(addrs, 0)
    t0 = time.perf_counter()
    for task_id in range(1, tasks + 1):
        seed = rng.randbytes(32)
        for a in select(table, seed, task_id, m, rng.choice(addrs)):
            seats[a] += 1
    elapsed = time.perf_counter() - t0
    all_seats = tasks * m
    rows = []
    for a, s in zip(addrs, stakes, strict=True):
        share = s / total
        if share >= THRESHOLD:
            got = seats[a] / all_seats
            expected = all_seats * share
            rows.append(
                {
                    "node": a,
                    "stake_share": share,
                    "seat_share": got,
                    "relative_deviation": got / share - 1,
                    "z": (seats[a] - expected) / math.sqrt(expected * (1 - share)),
                }
            )
    rows.sort(key=lambda r: -r["stake_share"])
    smallest = min(r["stake_share"] for r in rows)
    noise = math.sqrt((1 - smallest) / (all_seats * smallest))
    worst = max(abs(r["relative_deviation"]) for r in rows)
    return {
        "nodes": n,
        "pareto_alpha": alpha,
        "tasks": tasks,
        "committee": m,
        "total_stake_ether": total / ETHER,
        "largest_stake_share": max(stakes) / total,
        "checked_nodes": len(rows),
        "max_relative_deviation": worst,
        "noise_floor_1sigma_smallest_checked": noise,
        "tolerance": TOLERANCE,
        "within_tolerance": worst <= TOLERANCE,
        "seconds": elapsed,
        "per_node": rows,
    }


def coalition(n: int, alpha: float, tasks: int, rng: random.Random) -> dict:
    table, addrs, stakes = registry(n, alpha, rng)
    total = sum(stakes)
    out: dict = {}
    for target in (0.10, 0.20, 0.33):
        order = list(range(n))
        rng.shuffle(order)
        members: set[str] = set()
        held = 0
        for i in order:
            if held >= target * total:
                break
            members.add(addrs[i])
            held += stakes[i]
        row: dict = {"stake_share": held / total, "nodes": len(members)}
        for m in (3, 5, 7):
            quorum = m // 2 + 1
            honest = 0
            captured = [0, 0]  # in the first window, after one doubling of it
            for task_id in range(1, tasks + 1):
                seed = rng.randbytes(32)
                requester = rng.choice(addrs)
                best = select(table, seed, task_id, m, requester)
                honest += sum(a in members for a in best) >= quorum
                for doublings in (0, 1):
                    r = rank(
                        seed,
                        task_id,
                        0,
                        table.slot_count,
                        table.holder,
                        lambda a, req=requester: "the requester" if a == req else None,
                        window(m, doublings * ESCALATE_BLOCKS),
                    )
                    own = sum(a in members for a in r.addresses())
                    captured[doublings] += own >= quorum and len(r.candidates) >= m
            row[f"m{m}"] = {
                "honest_ranking": honest / tasks,
                "coalition_forms_in_window": captured[0] / tasks,
                "coalition_forms_after_one_doubling": captured[1] / tasks,
            }
        out[f"{round(target * 100)}%"] = row
    out["tasks_per_cell"] = tasks
    return out


def timing(sizes: list[int], alpha: float, tasks: int, rng: random.Random) -> dict:
    out: dict = {}
    for n in sizes:
        table, addrs, _ = registry(n, alpha, rng)
        seeds = [rng.randbytes(32) for _ in range(tasks)]
        reqs = [rng.choice(addrs) for _ in range(tasks)]
        t0 = time.perf_counter()
        for task_id in range(tasks):
            # the node's real work: the ranking incl. m backups
            rank(
                seeds[task_id],
                task_id + 1,
                0,
                table.slot_count,
                table.holder,
                lambda a, req=reqs[task_id]: "the requester" if a == req else None,
                window(3, 1 << 20),
                want=6,
            )
        out[str(n)] = {
            "us_per_task": (time.perf_counter() - t0) / tasks * 1e6,
            "slots": table.slot_count,
        }
    a, b = sizes[0], sizes[-1]
    ratio = out[str(b)]["us_per_task"] / out[str(a)]["us_per_task"]
    bound = (b * math.log(b)) / (a * math.log(a))
    out["ratio"] = ratio
    out["n_log_n_ratio"] = bound
    out["within_n_log_n"] = ratio <= bound
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--alpha", type=float, default=1.5, help="Pareto shape of the stakes.")
    ap.add_argument("--tasks", type=int, default=100_000, help="Tasks for the fairness run.")
    ap.add_argument("--coalition-tasks", type=int, default=20_000, help="Tasks per table cell.")
    ap.add_argument("--timing-tasks", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    report = {
        "command": " ".join(sys.argv),
        "fairness": fairness(args.nodes, args.alpha, args.tasks, 3, rng),
        "coalition": coalition(args.nodes, args.alpha, args.coalition_tasks, rng),
        "selection_time": timing([1_000, args.nodes], args.alpha, args.timing_tasks, rng),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    f = report["fairness"]
    print(
        f"fairness: {f['nodes']} nodes, {f['tasks']} tasks, committee {f['committee']}: "
        f"max relative deviation {f['max_relative_deviation']:.2%} over {f['checked_nodes']} "
        f"nodes >= 0.1% of stake (noise 1 sigma {f['noise_floor_1sigma_smallest_checked']:.2%})"
    )
    for share, row in report["coalition"].items():
        if isinstance(row, dict):
            print(share, json.dumps(row))
    print("selection time", json.dumps(report["selection_time"]))


if __name__ == "__main__":
    main()

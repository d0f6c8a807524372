"""Committee sortition at network scale, with the node's own selection code.

Runs ``scheduler.sortition`` (the functions the node, the CLI and the contract tests use) over a
registry of N nodes whose stakes follow a Pareto distribution, and reports:

* fairness: each node's share of seats against its share of stake, over many tasks (committee
  of 3), with the max relative deviation over nodes holding >= 0.1% of the stake and the
  binomial noise floor of the smallest such node;
* capture: the probability that a coalition (random nodes holding 10%, 20%, 33% of the stake)
  gets a majority of a committee of 3, 5, 7 (a) with honest sampling: the best-ranked online
  candidates form it, and (b) when the coalition sends the formation itself and uses its full
  skip budget (m, the contract's cap) to leave out the best-ranked honest candidates, after
  which every skipped honest candidate that is online claims its seat back during the claim
  period (displacing the worst-ranked member), as the contract allows; with a fraction of the
  honest nodes offline (0% and 20%; offline nodes neither form nor claim). The ratio (b)/(a)
  is the coalition's gain from sending the formation; (c) is what free skips would give
  without claims, for comparison;
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

from dnode.scheduler.sortition import MAX_DRAW, SlotTable, rank  # noqa: E402

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
        MAX_DRAW + 1,
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


OFFLINE = (0.0, 0.2)  # fractions of the honest nodes offline (they neither form nor claim)
BOUND = 1.5  # the coalition's formation may gain at most this factor (issue 12)


def formed_by_coalition(
    ranked: list[str], members: set[str], online: set[str], m: int, claims: bool
) -> list[str]:
    """The committee after the coalition sends the formation with its full skip budget (m):
    its worst member may be the (2m)-th ranked candidate, so it seats all its own among the
    first 2m and fills up with the best-ranked others; then (claims) every skipped honest
    candidate that is online, best-ranked first, displaces the worst-ranked member."""
    window = ranked[: 2 * m]
    own = [a for a in window if a in members][:m]
    rest = [a for a in window if a not in members and a in online][: m - len(own)]
    if len(own) + len(rest) < m:  # not enough online candidates: wait for more skips
        rest += [a for a in window if a not in members and a not in rest][
            : m - len(own) - len(rest)
        ]
    committee = sorted(own + rest, key=ranked.index)
    if not claims:
        return committee
    worst = max(ranked.index(a) for a in committee)
    for a in ranked[:worst]:
        if a in committee or a in members or a not in online:
            continue
        if ranked.index(a) > max(ranked.index(x) for x in committee):
            break
        committee.remove(max(committee, key=ranked.index))  # the worst-ranked member goes
        committee.append(a)
    return committee


def honest_sampling(ranked: list[str], online: set[str], members: set[str], m: int) -> list[str]:
    """The best-ranked m candidates that are online (offline ones are skipped)."""
    return [a for a in ranked if a in members or a in online][:m]


def coalition(n: int, alpha: float, tasks: int, rng: random.Random) -> dict:
    table, addrs, stakes = registry(n, alpha, rng)
    total = sum(stakes)
    out: dict = {"bound": BOUND}
    worst_ratio = 0.0
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
        honest_nodes = [a for a in addrs if a not in members]
        counts = {
            (f, m, k): 0 for f in OFFLINE for m in (3, 5, 7) for k in ("honest", "claims", "free")
        }
        for task_id in range(1, tasks + 1):
            seed = rng.randbytes(32)
            # the requester is the coalition's own (unstaked) account: nobody is excluded
            ranked = rank(
                seed, task_id, 0, table.slot_count, table.holder, lambda a: None,
                MAX_DRAW + 1, want=40,
            ).addresses()  # fmt: skip
            for f in OFFLINE:
                online = {a for a in ranked if a not in members and rng.random() >= f}
                for m in (3, 5, 7):
                    q = m // 2 + 1

                    def maj(c: list[str], q: int = q, own: set[str] = members) -> int:
                        return int(sum(a in own for a in c) >= q)

                    counts[(f, m, "honest")] += maj(honest_sampling(ranked, online, members, m))
                    c = formed_by_coalition(ranked, members, online, m, True)
                    counts[(f, m, "claims")] += maj(c)
                    counts[(f, m, "free")] += maj(
                        formed_by_coalition(ranked, members, online, m, False)
                    )
        row: dict = {
            "stake_share": held / total,
            "nodes": len(members),
            "honest_nodes": len(honest_nodes),
        }
        for f in OFFLINE:
            for m in (3, 5, 7):
                h = counts[(f, m, "honest")] / tasks
                c = counts[(f, m, "claims")] / tasks
                free = counts[(f, m, "free")] / tasks
                ratio = c / h if h else (1.0 if c == 0 else math.inf)
                worst_ratio = max(worst_ratio, ratio)
                row[f"m{m}_offline{round(f * 100)}%"] = {
                    "honest_sampling": h,
                    "coalition_forms_full_budget_with_claims": c,
                    "ratio": ratio,
                    "within_bound": ratio <= BOUND,
                    "coalition_forms_free_skips_no_claims": free,
                    "free_skips_ratio": free / h if h else None,
                }
        out[f"{round(target * 100)}%"] = row
    out["tasks_per_cell"] = tasks
    out["max_ratio"] = worst_ratio
    out["within_bound"] = worst_ratio <= BOUND
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
                MAX_DRAW + 1,
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
    print("coalition gain max ratio", report["coalition"]["max_ratio"])
    print("selection time", json.dumps(report["selection_time"]))


if __name__ == "__main__":
    main()

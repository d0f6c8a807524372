"""What a requester's task over published datasets needs from the catalogue: the owners who
will contribute, and the privacy cost it declares for each dataset (contract units)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dnode.cli.context import CliError
from dnode.contracts.client import ChainClient
from dnode.contracts.data_market import to_micro
from dnode.scheduler.dp import unit
from dnode.scheduler.programs import TaskParams


def dataset_owners(
    chain: ChainClient,
    datasets: Sequence[int],
    privacy_costs: Sequence[str],
    *,
    derived: bool = False,
) -> tuple[tuple[str, ...], list[int]]:
    """(owners in dataset order, per-dataset privacy cost in millionths); one-line errors for
    what the contract would refuse anyway, before anything is paid. ``derived``: a DP task
    (--epsilon/--rho): its cost is the composed cost of its noisy outputs (:func:`dp_costs`,
    once the params exist; 0 here), never a number the requester picks."""
    if len(set(datasets)) != len(datasets):
        raise CliError("a task names each dataset once")
    if derived:
        if privacy_costs:
            raise CliError(
                "--privacy-cost is derived from --epsilon/--rho (the composed cost of the "
                "task's noisy outputs): omit it"
            )
        privacy_costs = ["0"]
    elif not privacy_costs:
        raise CliError("a task over datasets declares --privacy-cost (ε or ρ it spends)")
    if len(privacy_costs) not in (1, len(datasets)):
        raise CliError(f"give one --privacy-cost, or one per --dataset ({len(datasets)})")
    try:
        costs = [0 if derived else to_micro(x) for x in privacy_costs] * (
            len(datasets) // len(privacy_costs)
        )
    except ValueError as e:
        raise CliError(f"--privacy-cost: {e}") from None
    owners: list[str] = []
    now = chain.block_timestamp()
    for ds, cost in zip(datasets, costs, strict=True):
        info = chain.dataset_info(ds)
        if not info.exists:
            raise CliError(f"dataset {ds} does not exist")
        if info.retired:
            raise CliError(f"dataset {ds} is retired")
        if now >= info.expiry:
            raise CliError(f"dataset {ds} expired at {info.expiry}")
        if cost and cost > info.budget_left:
            raise CliError(
                f"dataset {ds} has {info.budget_left / 1e6:g} of its privacy budget left, the "
                f"task would spend {cost / 1e6:g}"
            )
        if info.owner.lower() in {o.lower() for o in owners}:
            raise CliError(f"datasets of one owner ({info.owner}) cannot share a task")
        owners.append(info.owner)
    return tuple(owners), costs


def dp_costs(chain: ChainClient, datasets: Sequence[int], params: TaskParams) -> list[int]:
    """Per dataset, what a DP task charges its budget: the composed cost of the task's noisy
    outputs (scheduler.dp, OpenDP) in that budget's units (epsilon or rho), rounded up -- what
    every node checks before it computes (node.task.seat.budget_refusal)."""
    plan = params.spec.dp_plan(params)
    if plan is None:
        raise CliError(f"{params.program}: the task asks for no differential privacy")
    out = []
    for ds in datasets:
        info = chain.dataset_info(ds)
        cost = plan.cost(info.budget_kind)
        if cost > info.budget_left:
            raise CliError(
                f"dataset {ds} has {info.budget_left / 1e6:g} {unit(info.budget_kind)} of its "
                f"privacy budget left; the task's noisy outputs compose to {cost / 1e6:g}"
            )
        out.append(cost)
    return out


def asks_dp(args: dict[str, Any]) -> bool:
    """Whether a program's arguments ask for differential privacy (--epsilon / --rho)."""
    return any(args.get(k) is not None for k in ("epsilon", "rho"))

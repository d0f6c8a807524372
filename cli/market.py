"""What a requester's task over published datasets needs from the catalogue: the owners who
will contribute, and the privacy cost it declares for each dataset (contract units)."""

from __future__ import annotations

from collections.abc import Sequence

from dnode.cli.context import CliError
from dnode.contracts.client import ChainClient
from dnode.contracts.data_market import to_micro


def dataset_owners(
    chain: ChainClient, datasets: Sequence[int], privacy_costs: Sequence[str]
) -> tuple[tuple[str, ...], list[int]]:
    """(owners in dataset order, per-dataset privacy cost in millionths); one-line errors for
    what the contract would refuse anyway, before anything is paid."""
    if len(set(datasets)) != len(datasets):
        raise CliError("a task names each dataset once")
    if not privacy_costs:
        raise CliError("a task over datasets declares --privacy-cost (ε or ρ it spends)")
    if len(privacy_costs) not in (1, len(datasets)):
        raise CliError(f"give one --privacy-cost, or one per --dataset ({len(datasets)})")
    try:
        costs = [to_micro(x) for x in privacy_costs] * (len(datasets) // len(privacy_costs))
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
        if cost > info.budget_left:
            raise CliError(
                f"dataset {ds} has {info.budget_left / 1e6:g} of its privacy budget left, the "
                f"task would spend {cost / 1e6:g}"
            )
        if info.owner.lower() in {o.lower() for o in owners}:
            raise CliError(f"datasets of one owner ({info.owner}) cannot share a task")
        owners.append(info.owner)
    return tuple(owners), costs

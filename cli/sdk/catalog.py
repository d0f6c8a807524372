"""The dataset catalogue: what a publisher declares and what a task over datasets needs
(its owners, the privacy cost it declares per dataset). Shared by :class:`Client` and
``dnode data``/``dnode task post --dataset``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_utils import keccak

from dnode.cli.sdk.errors import SdkError
from dnode.contracts.client import ChainClient
from dnode.contracts.data_market import (
    MAX_LOCATOR,
    MAX_PROGRAMS,
    MICRO,
    BudgetKind,
    DatasetInfo,
    to_micro,
)
from dnode.scheduler.dp import unit
from dnode.scheduler.programs import TaskParams, get_program, program_by_id
from dnode.scheduler.programs.registry import all_programs

_DURATION = re.compile(r"\s*([0-9]+)\s*([smhd]?)\s*")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int) -> int:
    """``3600``, ``90m``, ``12h``, ``30d`` -> seconds.

    >>> parse_duration("90m"), parse_duration("30d"), parse_duration(5)
    (5400, 2592000, 5)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    dnode.cli.sdk.errors.SdkError: 'soon' is not a duration (try 3600, 90m, 12h, 30d)
    """
    m = _DURATION.fullmatch(str(text))
    if not m or int(m.group(1)) == 0:
        raise SdkError(f"{text!r} is not a duration (try 3600, 90m, 12h, 30d)")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def program_ids(programs: Sequence[str], families: Sequence[str]) -> list[bytes]:
    """Program ids allowed by name and by family (a family is expanded here: the contract
    only checks ids).

    >>> len(program_ids(["mpc.mean"], [])), program_ids(["mpc.mean"], []) == program_ids(
    ...     ["mpc.mean", "mpc.mean"], [])
    (1, True)
    """
    ids: list[bytes] = []
    for name in programs:
        ids.append(get_program(name).program_id)
    for family in families:
        members = [s.program_id for s in all_programs() if s.family == family]
        if not members:
            known = sorted({s.family for s in all_programs() if s.family})
            raise SdkError(f"unknown program family {family!r} (known: {', '.join(known)})")
        ids.extend(members)
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_PROGRAMS:
        raise SdkError(f"{len(unique)} programs allowed; a dataset allows at most {MAX_PROGRAMS}")
    return unique


def schemas_by_digest(paths: Sequence[str | Path]) -> dict[bytes, tuple[str, tuple[Any, ...]]]:
    """Public schema files (table name, columns) keyed by the digest a dataset is published
    with: a dataset names its schema by digest only."""
    from dnode.scheduler.programs.query.build import read_schema

    out: dict[bytes, tuple[str, tuple[Any, ...]]] = {}
    for p in map(Path, paths):
        try:
            data = p.read_bytes()
        except OSError as e:
            raise SdkError(f"cannot read schema {p}: {e.strerror}") from None
        out[keccak(data)] = read_schema(p)
    return out


def schema_of(info: DatasetInfo, dataset: int, by_digest: dict[bytes, Any]) -> Any:
    """The schema file (from :func:`schemas_by_digest`) dataset ``dataset`` was published with."""
    found = by_digest.get(bytes(info.schema_digest))
    if found is None:
        raise SdkError(f"dataset {dataset}: no --schema file has its schema digest "
                       f"0x{bytes(info.schema_digest).hex()}")  # fmt: skip
    return found


def digest_of(schema: Path | None, digest: str | None) -> bytes:
    """The schema digest of a dataset: keccak of its schema file, or given as hex."""
    if (schema is None) == (digest is None):
        raise SdkError("give exactly one of --schema FILE or --schema-digest 0x...")
    if schema is not None:
        try:
            return keccak(Path(schema).read_bytes())
        except OSError as e:
            raise SdkError(f"cannot read schema {schema}: {e.strerror}") from None
    text = str(digest).removeprefix("0x")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise SdkError("--schema-digest must be 32 bytes of hex")
    return bytes.fromhex(text)


def check_locator(locator: str | None) -> None:
    if locator is not None and len(locator.encode()) > MAX_LOCATOR:
        raise SdkError(f"--sample locator is longer than {MAX_LOCATOR} bytes")


def budget_of(epsilon: str | float | None, rho: str | float | None) -> tuple[BudgetKind, int]:
    """The privacy budget a dataset declares: exactly one of ε (pure DP) or ρ (zCDP).

    >>> budget_of("1", None)
    (<BudgetKind.EPSILON: 1>, 1000000)
    """
    if (epsilon is None) == (rho is None):
        raise SdkError("give exactly one privacy budget: --epsilon (pure DP) or --rho (zCDP)")
    try:
        if epsilon is not None:
            return BudgetKind.EPSILON, to_micro(str(epsilon))
        return BudgetKind.RHO, to_micro(str(rho))
    except ValueError as e:
        raise SdkError(str(e)) from None


def describe(d: DatasetInfo, now: int) -> dict[str, Any]:
    """The JSON of one dataset, with program names where the registry knows the id."""
    names = []
    for pid in d.programs:
        spec = program_by_id(pid)
        names.append(spec.name if spec else "0x" + pid.hex())
    state = "retired" if d.retired else ("expired" if now >= d.expiry else "live")
    return {
        "dataset_id": d.dataset_id,
        "owner": d.owner,
        "state": state,
        "schema_digest": "0x" + d.schema_digest.hex(),
        "rows": d.rows,
        "price": d.price,
        "expiry": d.expiry,
        "budget_kind": d.budget_kind.name.lower(),
        "budget": d.budget / MICRO,
        "budget_left": d.budget_left / MICRO,
        "budget_micro": d.budget,
        "budget_left_micro": d.budget_left,
        "programs": names,
        "sample": d.locator,
    }


def dataset_owners(
    chain: ChainClient,
    datasets: Sequence[int],
    privacy_costs: Sequence[str | float],
    *,
    derived: bool = False,
) -> tuple[tuple[str, ...], list[int]]:
    """(owners in dataset order, per-dataset privacy cost in millionths); one-line errors for
    what the contract would refuse anyway, before anything is paid. ``derived``: a DP task
    (--epsilon/--rho): its cost is the composed cost of its noisy outputs (:func:`dp_costs`,
    once the params exist; 0 here), never a number the requester picks."""
    if len(set(datasets)) != len(datasets):
        raise SdkError("a task names each dataset once")
    if derived:
        if privacy_costs:
            raise SdkError(
                "--privacy-cost is derived from --epsilon/--rho (the composed cost of the "
                "task's noisy outputs): omit it"
            )
        privacy_costs = ["0"]
    elif not privacy_costs:
        raise SdkError("a task over datasets declares --privacy-cost (ε or ρ it spends)")
    if len(privacy_costs) not in (1, len(datasets)):
        raise SdkError(f"give one --privacy-cost, or one per --dataset ({len(datasets)})")
    try:
        costs = [0 if derived else to_micro(str(x)) for x in privacy_costs] * (
            len(datasets) // len(privacy_costs)
        )
    except ValueError as e:
        raise SdkError(f"--privacy-cost: {e}") from None
    owners: list[str] = []
    now = chain.block_timestamp()
    for ds, cost in zip(datasets, costs, strict=True):
        info = chain.dataset_info(ds)
        if not info.exists:
            raise SdkError(f"dataset {ds} does not exist")
        if info.retired:
            raise SdkError(f"dataset {ds} is retired")
        if now >= info.expiry:
            raise SdkError(f"dataset {ds} expired at {info.expiry}")
        if cost and cost > info.budget_left:
            raise SdkError(
                f"dataset {ds} has {info.budget_left / 1e6:g} of its privacy budget left, the "
                f"task would spend {cost / 1e6:g}"
            )
        if info.owner.lower() in {o.lower() for o in owners}:
            raise SdkError(f"datasets of one owner ({info.owner}) cannot share a task")
        owners.append(info.owner)
    return tuple(owners), costs


def ledger(chain: ChainClient, dataset_id: int) -> list[dict[str, Any]]:
    """Every task that charged the dataset's privacy budget (TaskDatasets events), with what
    became of the charge: ``charged`` (the task has not ended or is not settled: counted as
    spent), ``spent`` (it delivered a result: the owner was paid), ``released`` (refunded
    before any committee formed: the budget came back, DatasetRefunded), ``refunded, kept``
    (refunded after its committee formed: its seats may have opened outputs, so the charge
    stays)."""
    out: dict[int, dict[str, Any]] = {}
    for ev in chain.events(chain.deployment.deploy_block):
        a = ev.args
        if ev.name == "TaskDatasets":
            for i, cost in zip(a["dataset_ids"], a["costs"], strict=True):
                if int(i) == dataset_id:
                    t = int(a["task_id"])
                    out[t] = {"task_id": t, "cost": int(cost) / MICRO, "state": "charged"}
        elif ev.name in ("DatasetRefunded", "DatasetPaid") and int(a["dataset_id"]) == dataset_id:
            e = out.get(int(a["task_id"]))
            if e is not None and ev.name == "DatasetPaid":
                e["state"] = "spent"
            elif e is not None:  # refunded: released unless its committee had formed
                e["state"] = "released" if int(a["released"]) else "refunded, kept"
    return [out[k] for k in sorted(out)]


def dp_costs(chain: ChainClient, datasets: Sequence[int], params: TaskParams) -> list[int]:
    """Per dataset, what a DP task charges its budget: the composed cost of the task's noisy
    outputs (scheduler.dp, OpenDP) in that budget's units (epsilon or rho), rounded up -- what
    every node checks before it computes (node.task.seat.budget_refusal)."""
    plan = params.spec.dp_plan(params)
    if plan is None:
        raise SdkError(f"{params.program}: the task asks for no differential privacy")
    out = []
    for ds in datasets:
        info = chain.dataset_info(ds)
        cost = plan.cost(info.budget_kind)
        if cost > info.budget_left:
            raise SdkError(
                f"dataset {ds} has {info.budget_left / 1e6:g} {unit(info.budget_kind)} of its "
                f"privacy budget left; the task's noisy outputs compose to {cost / 1e6:g}"
            )
        out.append(cost)
    return out


def asks_dp(args: dict[str, Any]) -> bool:
    """Whether a program's arguments ask for differential privacy (--epsilon / --rho)."""
    return any(args.get(k) is not None for k in ("epsilon", "rho"))

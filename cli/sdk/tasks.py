"""Tasks and their results: building a table program's params, the minimum aggregation,
waiting on the chain, a task's timeline, and the decoded result."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from eth_utils import is_address, to_checksum_address

from dnode.cli.sdk.errors import SdkError, WaitTimeout
from dnode.cli.sdk.run import Progress, to_thread
from dnode.contracts.client import TERMINAL_STATUSES, ChainClient, TaskInfo, TaskStatus
from dnode.node.aggregation import DEFAULT_MIN_OWNERS, MinAggregation
from dnode.oracle.codecs import TensorResult
from dnode.scheduler.programs import Column, ProgramSpec, TaskParams


class _Client(Protocol):
    """What a :class:`Task` needs of its :class:`~dnode.cli.sdk.client.Client`."""

    @property
    def chain(self) -> ChainClient: ...

    def result(self, task_id: int, params: TaskParams | None = None) -> Result: ...


TERMINAL = set(TERMINAL_STATUSES)

#: what a refund's on-chain reason means, in words (``dnode task status``, the explorer)
REFUND_REASONS = {
    "sortition: seats not filled": "not enough eligible candidates joined before the seat deadline",
    "sortition: seed expired": "the committee did not form within 256 blocks of the seed block",
    "market: report deadline missed": "the committee did not report before the report "
    "deadline (seats that neither reported nor declined were slashed)",
    "market: too many declines": "so many seats declined that no quorum was possible",
}

#: the lifecycle a progress bar walks: open -> computing -> reported -> finalized
STEPS = {
    TaskStatus.OPEN: 1,
    TaskStatus.COMPUTING: 2,
    TaskStatus.REPORTED: 3,
    TaskStatus.DISPUTED: 3,
    TaskStatus.RECOMPUTING: 3,
    TaskStatus.FINALIZED: 4,
    TaskStatus.OVERTURNED: 4,
    TaskStatus.REFUNDED: 4,
}


def min_aggregation(
    owners: Sequence[str], min_owners: int | None, min_values: int | None, allow_single: bool
) -> MinAggregation:
    """The task's minimum aggregation; refuses one that would publish a single owner's data.

    >>> min_aggregation(["0xA", "0xB"], None, None, False)
    MinAggregation(owners=2, values=2)
    >>> min_aggregation(["0xA"], None, None, False)
    Traceback (most recent call last):
    ...
    dnode.cli.sdk.errors.SdkError: a task with one data owner publishes a result of that \
owner's data alone; pass --allow-single-owner to post it anyway
    """
    k = min_owners if min_owners is not None else (1 if allow_single else DEFAULT_MIN_OWNERS)
    if k < 2 and not allow_single:
        raise SdkError("--min-owners 1 publishes one owner's data: add --allow-single-owner")
    if owners and len(set(o.lower() for o in owners)) < k:
        if len(owners) == 1:
            raise SdkError(
                "a task with one data owner publishes a result of that owner's data alone; "
                "pass --allow-single-owner to post it anyway"
            )
        raise SdkError(f"{len(owners)} data owners cannot meet --min-owners {k}")
    v = min_values if min_values is not None else k
    if v < k:
        raise SdkError(f"--min-values {v} is below --min-owners {k}")
    return MinAggregation(owners=k, values=v)


def columns_of(columns: Sequence[str | Column], schema: Path | str | None) -> list[Column]:
    """Columns from flags (``age:int:0:120``), Column objects and a JSON schema file."""
    cols = [c if isinstance(c, Column) else Column.parse_flag(c) for c in columns]
    if schema is not None:
        try:
            doc = json.loads(Path(schema).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SdkError(f"cannot read --schema {schema}: {e}") from None
        cols += [Column.from_dict(d) for d in (doc.get("columns", doc) if isinstance(doc, dict)
                                               else doc)]  # fmt: skip
    return cols


def plain_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Program arguments as the params carry them: Python floats become the decimal string
    they were written as (params are exact: no binary float reaches a digest).

    >>> plain_args({"q": [0.25, 0.5], "k": 3, "bins": "0,10,20"})
    {'q': ['0.25', '0.5'], 'k': 3, 'bins': '0,10,20'}
    """

    def plain(v: Any) -> Any:
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return {str(k): plain(v) for k, v in args.items()}


def table_params(
    spec: ProgramSpec,
    owners: Sequence[str],
    columns: Sequence[str | Column],
    schema: Path | str | None,
    args: Mapping[str, Any],
    input_timeout: int,
    max_rows: int,
    extra: Mapping[str, Any] | None = None,
    result_key: str = "",
) -> TaskParams:
    """The params of a table program (one-line errors); ``extra``: public policy the nodes
    enforce (e.g. the minimum aggregation, node.aggregation).

    >>> from dnode.scheduler.programs import get_program
    >>> p = table_params(get_program("mpc.mean"), ["0x" + "11" * 20, "0x" + "22" * 20],
    ...                  ["age:int:0:120"], None, {}, 120, 1000)
    >>> p.program, [c.name for c in p.columns], len(p.digest)
    ('mpc.mean', ['age'], 32)
    """
    if not spec.uses_table:
        raise SdkError(f"{spec.name} runs on encrypted data: post it with dnode task post --data")
    for o in owners:
        if not is_address(o):
            raise SdkError(f"data owner {o!r} is not an address")
    if not owners:
        raise SdkError(f"{spec.name} needs at least one --owner (a data owner's address)")
    return TaskParams(
        program=spec.name,
        owners=tuple(to_checksum_address(o) for o in owners),
        args=plain_args(args),
        columns=tuple(columns_of(columns, schema)),
        input_timeout=input_timeout,
        max_rows=max_rows,
        extra=dict(extra or {}),
        result_key=result_key,  # validated with the rest: a program may require one
    )


def wait_for(
    chain: ChainClient,
    task_id: int,
    want: set[TaskStatus],
    timeout: float,
    what: str,
    on_status: Callable[[TaskStatus], None] | None = None,
    poll: float = 0.5,
) -> TaskStatus:
    """Poll the chain until the task is in ``want`` or a final status; ``on_status`` sees
    each status read (a progress bar, a spinner). Raises :class:`WaitTimeout`."""
    deadline = time.monotonic() + timeout
    while True:
        st = chain.task_info(task_id).status
        if st == TaskStatus.NONE:
            raise SdkError(f"task {task_id} does not exist")
        if on_status is not None:
            on_status(st)
        if st in want or st in TERMINAL:
            return st
        if time.monotonic() > deadline:
            raise WaitTimeout(task_id, timeout, what, st.name.lower())
        time.sleep(poll)


def declines(chain: ChainClient, task_id: int) -> list[dict[str, Any]]:
    """Every seat given up, with the reason its node stated (e.g. a minimum not met)."""
    return [
        {
            "round": int(e.args["round"]),
            "seat": int(e.args["seat"]),
            "node": e.args["node"],
            "reason": e.args["reason"],
        }
        for e in chain._task_logs(task_id)
        if e.name == "SeatDeclined"
    ]


#: a task's timeline: each event's step in the state machine
TIMELINE_STEPS = {
    "TaskPosted": "posted",
    "TaskDatasets": "posted",
    "CallbackRegistered": "posted",
    "CommitteeFormed": "seated",
    "SeatClaimed": "seated",
    "SeatDeclined": "declined",
    "CoSigned": "computing",
    "ResultReported": "reported",
    "TaskDisputed": "challenged",
    "DisputeResolved": "resolved",
    "Slashed": "slashed",
    "CallbackDelivered": "finalized",
    "TaskFinalized": "finalized",
    "TaskRefunded": "refunded",
}


def timeline(chain: ChainClient, task_id: int) -> list[dict[str, Any]]:
    """The task's events in chain order, each with its step, block, time and details (the
    committee's draws, a decline's or refund's reason).

    The chain cannot see inputs arriving at the seats (they go peer to peer): the step after
    ``seated`` is ``reported`` unless a seat declined; the explorer adds the nodes' view."""
    from dnode.contracts.client import unpack_draws

    out: list[dict[str, Any]] = []
    stamps: dict[int, int] = {}
    for e in chain._task_logs(task_id):
        if e.block_number not in stamps:
            stamps[e.block_number] = chain.block_timestamp(e.block_number)
        item: dict[str, Any] = {
            "step": TIMELINE_STEPS.get(e.name, e.name),
            "event": e.name,
            "block": e.block_number,
            "time": stamps[e.block_number],
            "tx": e.tx_hash,
        }
        a = e.args
        if e.name == "CommitteeFormed":
            members = list(a["members"])
            item["members"] = members
            item["draws"] = unpack_draws(int(a["draws"]), len(members))
            item["round"] = int(a["round"])
        elif e.name == "SeatClaimed":
            item |= {"node": a["node"], "seat": int(a["seat"]), "draw": int(a["draw"])}
        elif e.name == "SeatDeclined":
            item |= {"node": a["node"], "seat": int(a["seat"]), "reason": a["reason"]}
        elif e.name == "TaskRefunded":
            item["reason"] = a["reason"]
            item["why"] = REFUND_REASONS.get(a["reason"], a["reason"])
        elif e.name == "Slashed":
            item |= {"node": a["node"], "amount": int(a["amount"])}
        elif e.name == "TaskPosted":
            item |= {"requester": a["requester"], "reward": int(a["reward"])}
        elif e.name == "ResultReported":
            item["signers_bitmap"] = int(a["signers_bitmap"])
        out.append(item)
    return out


@dataclass(frozen=True)
class Result:
    """A task's attested result, checked against the on-chain digest and decoded.

    ``values`` are floats for plotting; ``decimal_values`` are exact; ``named`` labels them
    when the task's params are known (``mean``, ``q0.5``, ``region=EU/COUNT(*)``, ...).

    >>> from dnode.oracle.encoding import AggregateResult
    >>> from fractions import Fraction
    >>> r = Result.from_decoded(7, "mpc.mean", "finalized", TensorResult(
    ...     AggregateResult.from_fraction(Fraction(89, 2), 6), (1,), (("mean",),)), "0x00", True)
    >>> r.value, r.named, r.count
    (44.5, {'mean': 44.5}, 6)
    """

    task_id: int
    program: str | None
    status: str
    values: list[float]
    decimal_values: list[Decimal]
    named: dict[str, float]
    count: int
    shape: tuple[int, ...]
    labels: tuple[tuple[str, ...], ...]
    digest: str
    final: bool
    private: bool = False
    line: str = field(default="", repr=False)  # for people: values to 9 significant digits
    fetched_from: str = field(default="", repr=False)  # a private result's source
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the decoded JSON

    @property
    def value(self) -> float:
        """The first value (the answer of a one-value program such as ``mpc.mean``)."""
        return self.values[0]

    @classmethod
    def from_decoded(
        cls,
        task_id: int,
        program: str | None,
        status: str,
        decoded: TensorResult,
        digest: str,
        final: bool,
        private: bool = False,
        fetched_from: str = "",
    ) -> Result:
        v = decoded.value
        exact = [Decimal(x).scaleb(-v.decimals) for x in v.values]
        floats = [float(x) for x in exact]
        keys = list(decoded.named())
        return cls(
            task_id=task_id,
            program=program,
            status=status,
            values=floats,
            decimal_values=exact,
            named=dict(zip(keys, floats, strict=True)),
            count=v.count,
            shape=tuple(decoded.shape),
            labels=tuple(tuple(a) for a in decoded.labels),
            digest=digest,
            final=final,
            private=private,
            line=decoded.line(),
            fetched_from=fetched_from,
            raw=decoded.to_json(),
        )

    def rows(self) -> list[dict[str, Any]]:
        """2-D results (GROUP BY, covariance, k-means) as one dict per row; 1-D: one row.

        >>> from dnode.oracle.encoding import AggregateResult
        >>> from fractions import Fraction
        >>> r = Result.from_decoded(1, "x", "reported", TensorResult(
        ...     AggregateResult.from_fractions([Fraction(1), Fraction(2), Fraction(3),
        ...     Fraction(4)], 4), (2, 2), (("a", "b"), ("x", "y"))), "0x", False)
        >>> r.rows()
        [{'': 'a', 'x': 1.0, 'y': 2.0}, {'': 'b', 'x': 3.0, 'y': 4.0}]
        """
        if len(self.shape) == 2 and len(self.labels) == 2:
            rows, cols = self.labels
            n = len(cols)
            return [
                {"": r, **{c: self.values[i * n + j] for j, c in enumerate(cols)}}
                for i, r in enumerate(rows)
            ]
        return [dict(self.named)]

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "program": self.program,
            "status": self.status,
            "private": self.private,
            **self.raw,
            "result_digest": self.digest,
            "final": self.final,
        }


class Task:
    """A posted task: follow it, wait for it, read its result (sync or ``async``).

    Obtained from :meth:`Client.post`, :meth:`Client.query` or :meth:`Client.task`.
    """

    def __init__(self, client: _Client, task_id: int, params: TaskParams | None = None) -> None:
        self.client = client
        self.id = task_id
        self.params = params
        self.announced_to = 0
        self.privacy_costs: list[int] = []  # per dataset, in millionths (ε or ρ), if posted here

    def __repr__(self) -> str:
        prog = self.params.program if self.params else "?"
        return f"<Task {self.id} {prog}>"

    def info(self) -> TaskInfo:
        """The task as the chain has it (rebuilt from its events)."""
        info = self.client.chain.task_info(self.id)
        if info.status == TaskStatus.NONE:
            raise SdkError(f"task {self.id} does not exist")
        return info

    def status(self) -> str:
        """``open``, ``computing``, ``reported``, ``finalized``, ``refunded``, ..."""
        return self.info().status.name.lower()

    def timeline(self) -> list[dict[str, Any]]:
        """Its events through the state machine (see :func:`timeline`)."""
        return timeline(self.client.chain, self.id)

    def declines(self) -> list[dict[str, Any]]:
        return declines(self.client.chain, self.id)

    def why_waiting(self) -> str:
        """For an open task: why it still waits for its committee (eligible candidates, prices,
        capacity, stake), from the sortition as the chain has it now; "" otherwise."""
        info = self.info()
        return why_waiting(self.client.chain, info)[0] if info.status == TaskStatus.OPEN else ""

    def refund_reason(self) -> str | None:
        """Why it was refunded, in words (None unless refunded)."""
        info = self.info()
        if info.status != TaskStatus.REFUNDED:
            return None
        return REFUND_REASONS.get(info.refund_reason, info.refund_reason or "no reason recorded")

    def cancel(self) -> str:
        """Refund a task whose committee missed its deadline (non-delivering seats are
        slashed); returns the refund's on-chain reason. Signs with the client's account."""
        self.info()
        signer = getattr(self.client, "signer", None)
        if signer is None:
            raise SdkError("cancelling needs a client with an account")
        signer.cancel(self.id)
        return self.info().refund_reason

    def wait(
        self,
        until: Sequence[str] = ("reported", "finalized"),
        timeout: float = 600.0,
        progress: bool = True,
        on_status: Callable[[TaskStatus], None] | None = None,
    ) -> str:
        """Block until the task reaches one of ``until`` (or a final status); returns the
        status. ``progress`` shows a notebook-friendly bar (tqdm.auto)."""
        want = {TaskStatus[s.upper()] for s in until}
        bar = Progress(4, f"task {self.id}", enabled=progress)

        def seen(st: TaskStatus) -> None:
            bar.update(STEPS.get(st, 0), st.name.lower())
            if on_status is not None:
                on_status(st)

        try:
            st = wait_for(self.client.chain, self.id, want, timeout,
                          f"waiting for {' or '.join(until)}", seen)  # fmt: skip
        finally:
            bar.close()
        return st.name.lower()

    def result(self, wait: float = 0.0, progress: bool = True) -> Result:
        """The attested result, checked and decoded (waiting up to ``wait`` seconds for it).
        A refunded task raises :class:`SdkError` with the refund's reason."""
        if wait:
            self.wait(timeout=wait, progress=progress)
        info = self.info()
        if info.status == TaskStatus.REFUNDED:
            raise SdkError(f"task {self.id} was refunded: {self.refund_reason()}")
        return self.client.result(self.id, params=self.params)

    async def wait_async(self, **kw: Any) -> str:
        """:meth:`wait` without blocking the caller's event loop."""
        return await to_thread(self.wait, **kw)

    async def result_async(self, wait: float = 0.0, progress: bool = True) -> Result:
        """:meth:`result` without blocking the caller's event loop (e.g. in Jupyter)."""
        return await to_thread(self.result, wait, progress)


STATUS_SCAN = 256  # draws `task status` examines


def why_waiting(chain: ChainClient, t: TaskInfo) -> tuple[str, dict[str, object]]:
    """Why an open task is still waiting, from the sortition as the chain has it now: one
    line, and the figures behind it (offer per seat, eligible candidates, who was skipped
    and why)."""
    from dnode.cli.units import fmt_eth
    from dnode.scheduler.candidates import candidates_for, seed_state

    m = t.committee_size
    cands = candidates_for(chain, t)
    if cands is None:
        _, since = seed_state(chain, t.seed_block)
        if since <= 0:
            return (
                f"waiting for {m} of {m} seats: the sortition seed (block {t.seed_block}) is "
                "not mined yet",
                {},
            )
        return (
            f"waiting for {m} of {m} seats: the sortition seed (block {t.seed_block}) is more "
            "than 256 blocks old; the committee can no longer form (cancel to refund)",
            {},
        )
    r = cands.ranking(limit=STATUS_SCAN)
    offer = cands.pool.offer
    eligible = len(r.candidates)
    extra: dict[str, object] = {
        "offer_per_seat": offer,
        "window": cands.pool.window,
        "eligible_candidates": r.addresses(),
        "skipped": dict(r.rejected),
    }
    if eligible >= m:
        return (
            f"waiting for {m} of {m} seats: {eligible} eligible candidates drawn; the committee "
            "binds once the best-ranked of them have joined",
            extra,
        )
    why = [f"waiting for {m - eligible} of {m} seats: only {eligible} eligible candidate(s) "
           f"among the nodes drawn"]  # fmt: skip
    kinds = list(r.rejected.values())
    priced = sum(k.startswith("price") for k in kinds)
    if priced:
        why.append(f"no eligible node offers price <= {fmt_eth(offer)} per seat "
                   f"({priced} drawn node(s) ask more)")  # fmt: skip
    full = sum(k.startswith("at capacity") for k in kinds)
    if full:
        why.append(f"{full} drawn node(s) at capacity")
    poor = sum(k.startswith("not enough free stake") for k in kinds)
    if poor:
        why.append(f"{poor} drawn node(s) lack free stake for the collateral")
    other = len(kinds) - priced - full - poor
    if other:
        why.append(f"{other} drawn node(s) excluded or lacking the capability")
    if not r.rejected and not r.candidates:
        why.append("no node is staked")
    return "; ".join(why), extra

"""Minimum aggregation: an MPC result is published on chain, so it must aggregate enough people.

A single-owner ``mpc.sum`` publishes that owner's raw sum (and ``mpc.variance`` its sum of
squares) to everyone, while the CLI says no node saw a plaintext; with two owners one can
subtract its own input and learn the other's (issue 13, finding 8).  So every MPC task
declares a minimum number of distinct contributing owners and of values, in its params
(``extra["min_aggregation"] = {"owners": k, "values": v}``, covered by the on-chain params
digest); absent, the defaults apply (:data:`DEFAULT_MIN_OWNERS` owners, as many values).
Nodes check it once the inputs are in, BEFORE computing: a task below it is declined with a
reason that ``dnode task status`` shows.  ``dnode task post`` refuses a task whose owner list
cannot reach its minimum, and a minimum of one owner needs ``--allow-single-owner``.

What remains (docs/protocol.md, "Minimum aggregation"): the minimum counts addresses, not
people -- a requester who controls k-1 owner keys (sybils) or posts two tasks differing in
one owner (differencing) still isolates an owner; only the owners' care about which tasks they
contribute to prevents that.  HE tasks are exempt: their result is encrypted to the requester,
who is also their only data owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dnode.node.errors import MpcError

__all__ = [
    "DEFAULT_MIN_OWNERS",
    "AggregationTooSmall",
    "MinAggregation",
    "declared",
    "enforce",
    "values_per_owner",
]

DEFAULT_MIN_OWNERS = 2
KEY = "min_aggregation"


@dataclass(frozen=True)
class MinAggregation:
    owners: int = DEFAULT_MIN_OWNERS
    values: int = DEFAULT_MIN_OWNERS

    def __post_init__(self) -> None:
        if not (isinstance(self.owners, int) and isinstance(self.values, int)):
            raise ValueError("min_aggregation owners/values must be integers")
        if self.owners < 1 or self.values < self.owners:
            raise ValueError(
                f"min_aggregation needs owners >= 1 and values >= owners "
                f"(got owners={self.owners}, values={self.values})"
            )

    def to_extra(self) -> dict[str, Any]:
        """The params ``extra`` entry (empty for the defaults: old params keep their digest)."""
        if self == MinAggregation():
            return {}
        return {KEY: {"owners": self.owners, "values": self.values}}


class AggregationTooSmall(MpcError):
    """The inputs in hand aggregate fewer owners or values than the task requires."""

    def __init__(self, task_id: int, owners: int, values: int, rule: MinAggregation) -> None:
        self.owners, self.values, self.rule = owners, values, rule
        super().__init__(
            task_id,
            f"aggregate too small: {owners}/{rule.owners} owners, {values}/{rule.values} values",
        )


def declared(extra: Mapping[str, Any] | None) -> MinAggregation:
    """The task's declared minimum (defaults if absent); ValueError if malformed."""
    raw = (extra or {}).get(KEY)
    if raw is None:
        return MinAggregation()
    if not isinstance(raw, dict) or set(raw) - {"owners", "values"}:
        raise ValueError(f"malformed {KEY}: {raw!r}")
    owners: Any = raw.get("owners", DEFAULT_MIN_OWNERS)
    values: Any = raw.get("values", owners)
    return MinAggregation(owners=owners, values=values)


def enforce(
    task_id: int, extra: Mapping[str, Any] | None, contributions: Mapping[str, Any]
) -> None:
    """Raise :class:`AggregationTooSmall` unless ``contributions`` (owner -> number of values,
    or an object with ``shares``) meet the declared minimum; a malformed declaration counts as
    unmet.  Pass numbers when a contribution carries more than its values (the influence
    witness of :mod:`dnode.node.mpc.influence`), or the witness would count as values."""
    try:
        rule = declared(extra)
    except ValueError as e:
        raise MpcError(task_id, f"bad minimum aggregation: {e}") from None
    sizes = [
        c if isinstance(c, int) else len(c.shares) if hasattr(c, "shares") else len(c)
        for c in contributions.values()
    ]
    owners = sum(1 for n in sizes if n > 0)
    values = sum(sizes)
    if owners < rule.owners or values < rule.values:
        raise AggregationTooSmall(task_id, owners, values, rule)


def values_per_owner(params: Any, contributions: Mapping[str, Any]) -> dict[str, int]:
    """How many VALUES each owner's shares carry: rows x columns of its table. A contribution
    ends with the owner's influence witness (:mod:`dnode.node.mpc.influence`), which is not
    data, and an encoding may use several integers per value (one-hot)."""
    from dnode.node.mpc.influence import table_rows, task_witness

    w = task_witness(params)
    width = max(params.spec.width(params), 1)
    cols = max(len(params.columns), 1)
    out = {}
    for o, c in contributions.items():
        rows = len(c.shares) // width if w is None else table_rows(len(c.shares), w)
        out[o] = rows * cols
    return out

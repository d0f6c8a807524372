"""Shared helpers of the ML family: a common fixed-point scale across columns, public draws."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from eth_utils import keccak

from dnode.scheduler.errors import InvalidTaskParams

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView

NUMERIC = ("int", "fixed")


def common_scale(params: TaskView) -> int:
    """The decimal scale every column is brought to inside the MPC (the largest declared)."""
    return max((c.scale for c in params.columns), default=0)


def multipliers(params: TaskView) -> list[int]:
    """Per column: the public factor that lifts its encoding to the common scale."""
    s = common_scale(params)
    return [10 ** (s - c.scale) for c in params.columns]


def bounds_at_common(params: TaskView) -> list[tuple[int, int]]:
    """Per column: the declared range (lo, hi) encoded at the common scale."""
    return [(c.enc_lo * m, c.enc_hi * m) for c, m in zip(params.columns, multipliers(params),
                                                          strict=True)]  # fmt: skip


def public_uniform(seed: int, label: str, lo: Fraction, hi: Fraction, scale: int) -> Fraction:
    """A public draw in [lo, hi] at ``scale`` decimals, from keccak(seed, label): every node
    and the requester (and scikit-learn in a test) obtain the same value."""
    steps = int((hi - lo) * 10**scale)
    h = int.from_bytes(keccak(text=f"dnode.ml:{seed}:{label}"), "big")
    return lo + Fraction(h % (steps + 1), 10**scale)


def need_rows(name: str, k: int, rows: int, what: str = "clusters") -> None:
    if rows < k:
        raise InvalidTaskParams(f"{name}: k={k} {what} but only {rows} row(s) of data")


# ---- federated steps (ml.kmeans_step, ml.logreg_step) ----------------------------------------

#: the kernel both federated steps run: add every owner's one row of statistics (range-checked
#: by the witness checks, ``influence_checks``) and open the total
FEDERATED_KERNEL = "dnode.node.engines.mpc.kernels.federated"


def constraint(terms: list[tuple[int, int]], upper: int, const: int = 0
               ) -> tuple[list[tuple[int, int]], int, int]:  # fmt: skip
    """The check ``const + sum(coef * row[column] for column, coef in terms) >= 0`` that every
    owner's row of statistics must pass (``ProgramSpec.influence_checks``, proven with the
    owner's witness bits: node.mpc.influence ``Check``); ``upper``: the largest value an
    honest row gives it (the width of its bits).  An upper side is another check
    (``n hi - S >= 0`` beside ``S - n lo >= 0``)."""
    return [(int(i), int(c)) for i, c in terms], int(const), int(upper)


def checks_bits(checks: list[tuple[list[tuple[int, int]], int, int]]) -> int:
    """Bits of the largest checked quantity."""
    return max((u for _, _, u in checks), default=1).bit_length() or 1


def round_div(num: int, den: int) -> int:
    """num / den rounded to the nearest integer (halves away from zero), exactly."""
    q, r = divmod(abs(num), den)
    q += 2 * r >= den
    return q if num >= 0 else -q


def cluster_labels(k: int, params: TaskView) -> tuple[tuple[str, ...], ...]:
    """Labels of a clustering output: one row per centroid, the columns and its size."""
    return (tuple(f"c{i}" for i in range(k)), (*(c.name for c in params.columns), "size"))


def check_logreg_params(name: str, params: TaskView) -> None:
    """Logistic regression's shared rules: the last column is a 0/1 label, C > 0."""
    from dnode.scheduler.programs.schema import parse_decimal

    y = params.columns[-1]
    if y.type != "int" or y.lo != 0 or y.hi != 1:
        raise InvalidTaskParams(
            f"{name}: the last column ({y.name!r}) is the label and must be declared "
            "int with range [0, 1]"
        )
    if parse_decimal(str(params.args.get("c", "1"))) <= 0:
        raise InvalidTaskParams(f"{name}: c (scikit-learn C) must be > 0")

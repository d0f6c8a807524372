"""``ml.infer``: score the owners' rows with a linear model that stays secret-shared (kernel:
``node.engines.mpc.kernels.infer``).

The model -- one coefficient per column (in the column's own units), then the intercept, as
exact decimals of ``--model-scale`` digits -- is contributed by one data owner, the *model
owner* (``--model-owner``, default the first owner), secret-shared into the committee exactly
like a table: the committee of each task is a fresh sortition, so "keeping the model
secret-shared" means its holder shares it into every task's committee; no seat, and no other
owner, ever sees it in the clear.  The other owners contribute the rows to score.

Encoding (``width = d + v (d + 1)`` integers per row, d = the task's columns, v = 1 weight
vector for a binary model, ``--classes`` k > 2 for a multinomial one): a row to score is
``[x_1 .. x_d, 0 .. 0]``; the model owner's file has the columns ``w_<column>`` and
``intercept`` (multinomial: ``w<k>_<column>``, ``intercept<k>`` per class k;
:meth:`Infer.owner_columns`) and exactly one row, encoded ``[0 .. 0, W_1 .. W_d, B, ...]``
(W = w 10**model_scale).  Every owner's influence witness proves
its column sums and sums of squares within the declared bounds (``moments = 1``): for the
model owner's single row that is an owner-side bit-decomposition range proof of every model
value (|W_j|, |B| <= model_bound 10**model_scale, checked inside the MPC); for a data owner
with n_k rows it bounds every value by sqrt(n_k) times its column's bound.

Inside the MPC: the model values are range-checked again by a checked bit decomposition
(:meth:`TableSession.check_range`; an out-of-range coefficient aborts naming its owner even
without witnesses), then every owner's influence checks run -- all before anything that
depends on the rows and the model together.  The score at the common integer scale
``Z = sum_j W_j X_j 10**(S - s_j) + B 10**S`` (S: the largest column scale) is a
secret x secret inner product, exact (no truncation: its sign is the sign of
``x . w + b``); one checked comparison per row gives the class ``[Z > 0]`` (scikit-learn's
``predict`` for a binary linear classifier); multinomial: the running argmax of the k scores,
k - 1 checked comparisons per row, the first maximum winning (``numpy.argmax``, hence
scikit-learn's ``predict``).  The comparison width covers every model and
every row that passed the checks, so it never aborts on them.

Revealed: the classes only (one bit per row, in owner order), to the committee and everyone
when at most 16 rows may be scored (``--max-rows`` counts the model's row too), else
privately to the requester (sealed shares; the committee opens nothing).  The number of rows
each owner contributed is public (as in every program).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import NUMERIC, common_scale, multipliers
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import Column, parse_decimal

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.tables import Table

KERNEL = "dnode.node.engines.mpc.kernels.infer"
MAX_FIELD_BITS = 256
MAX_MODEL_SCALE = 18
MAX_CLASSES = 16
FIELD_EXTRA_BITS = 32  # MPyC's secint(bits) field: a prime of bits + 32 bits (-K 30)


class Infer(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = KERNEL
    input_types = NUMERIC
    max_columns = 64
    moments = 1  # sums of squares witnessed: every value is bounded, comparisons never wrap
    args = (
        Arg("model_owner", "str", "address of the owner that shares the model (default: the "
            "first owner)"),
        Arg("model_scale", "int", "decimals of the model's coefficients and intercept",
            default=6),
        Arg("model_bound", "decimal", "declared bound |w_j|, |b| <= this of the secret model",
            default="1000"),
        Arg("classes", "int", "2: one weight vector, class [x.w + b > 0]; k > 2: one per class "
            "(multinomial), class argmax_k x.w_k + b_k", default=2),
    )  # fmt: skip
    reveals = "the class of each scored row; never the model"
    dp_refusal = ("its output is one class per scored row, each a function of that row alone: DP "
                  "would have to randomise every answer; train the model with DP instead "
                  "(ml.logreg / ml.ridge --epsilon)")  # fmt: skip
    revealed_to = "the committee, then everyone (at most 16 rows); else only the requester"
    cost = (
        "a range check of the model; per row and weight vector a secret inner product, per row "
        "one checked comparison (multinomial: k - 1)"
    )

    # ---- the model owner and its columns -------------------------------------------------

    def model_owner(self, params: TaskView) -> int:
        """Index (in params.owners) of the owner that shares the model."""
        who = params.args.get("model_owner")
        owners = [o.lower() for o in params.owners]
        if not who:
            return 0
        if str(who).lower() not in owners:
            raise InvalidTaskParams(
                f"{self.name}: the model owner {who} is not one of the task's owners"
            )
        return owners.index(str(who).lower())

    def model_scale(self, params: TaskView) -> int:
        return int(params.args.get("model_scale", 6))

    def model_bound(self, params: TaskView) -> int:
        """The declared |value| bound of the model, encoded (at 10**model_scale)."""
        q = self.model_scale(params)
        return int(parse_decimal(str(params.args.get("model_bound", "1000"))) * 10**q)

    def classes(self, params: TaskView) -> int:
        return int(params.args.get("classes", 2))

    def vectors(self, params: TaskView) -> int:
        """Weight vectors in the model: 1 for a binary model, one per class otherwise."""
        k = self.classes(params)
        return 1 if k == 2 else k

    def model_columns(self, params: TaskView) -> tuple[Column, ...]:
        """What the model owner's file holds: one row, a coefficient per column, then the
        intercept (``w_<column>``, ``intercept``); multinomial: that block per class k
        (``w<k>_<column>``, ``intercept<k>``).  Fixed, ``model_scale`` decimals, declared
        range +-model_bound."""
        q = self.model_scale(params)
        m = parse_decimal(str(params.args.get("model_bound", "1000")))
        tags = [""] if self.vectors(params) == 1 else [str(k) for k in range(self.classes(params))]
        names = [n for t in tags for n in [*(f"w{t}_{c.name}" for c in params.columns),
                                           f"intercept{t}"]]  # fmt: skip
        return tuple(Column(n, "fixed", q, -m, m) for n in names)

    def owner_columns(self, params: TaskView, owner: int | None) -> tuple[Column, ...]:
        if owner is not None and owner == self.model_owner(params):
            return self.model_columns(params)
        return tuple(params.columns)

    def width(self, params: TaskView) -> int:
        return len(params.columns) + self.vectors(params) * (len(params.columns) + 1)

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        d = len(params.columns)
        rows = list(zip(*table.data, strict=True))
        if tuple(c.name for c in table.columns) == tuple(c.name for c in
                                                         self.model_columns(params)):  # fmt: skip
            if len(rows) != 1:
                raise InvalidTaskParams(
                    f"{self.name}: the model owner's file must hold exactly one row (the "
                    f"model), it holds {len(rows)}"
                )
            return [0] * d + [int(v) for v in rows[0]]
        pad = [0] * (self.width(params) - d)
        return [v for r in rows for v in [*(int(x) for x in r), *pad]]

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        mb = max(1, self.model_bound(params))
        data = [max(1, c.bound) for c in params.columns]
        return (*data, *[mb] * (self.width(params) - len(data))), self.moments

    # ---- validation ----------------------------------------------------------------------

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        if len(params.owners) < 2:
            raise InvalidTaskParams(
                f"{self.name}: needs a model owner and at least one owner of rows to score "
                f"({len(params.owners)} owner(s) named)"
            )
        self.model_owner(params)
        q = params.args.get("model_scale", 6)
        if not 0 <= int(q) <= MAX_MODEL_SCALE:
            raise InvalidTaskParams(f"{self.name}: model_scale must be 0..{MAX_MODEL_SCALE}")
        if not 2 <= self.classes(params) <= MAX_CLASSES:
            raise InvalidTaskParams(f"{self.name}: classes must be 2..{MAX_CLASSES}")
        if parse_decimal(str(params.args.get("model_bound", "1000"))) <= 0:
            raise InvalidTaskParams(f"{self.name}: model_bound must be > 0")
        if (parse_decimal(str(params.args.get("model_bound", "1000"))) * 10**int(q)
                ).denominator != 1:  # fmt: skip
            raise InvalidTaskParams(f"{self.name}: model_bound has more than {q} decimals")
        if params.max_rows < 2:
            raise InvalidTaskParams(f"{self.name}: max_rows counts the model's row too: at least 2")
        if params.max_rows - 1 > MAX_RESULT_VALUES and not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name}: up to {params.max_rows - 1} rows do not fit the on-chain result "
                f"({MAX_RESULT_VALUES} values); ask for a private result or lower --max-rows"
            )
        self.field_bits(params)

    # ---- engine side ---------------------------------------------------------------------

    def value_bounds(self, params: TaskView) -> list[int]:
        """Per column: the largest |value| a row that passed its owner's influence checks can
        hold (sum of squares <= n_k B**2 bounds each value by sqrt(n_k) B)."""
        root = math.isqrt(max(1, params.max_rows - 1)) + 1
        return [root * max(1, c.bound) for c in params.columns]

    def cmp_bits(self, params: TaskView) -> int:
        mb = self.model_bound(params)
        mult = multipliers(params)
        bound = sum(mb * x * k for x, k in zip(self.value_bounds(params), mult, strict=True))
        bound += mb * 10 ** common_scale(params)
        # multinomial: the difference of two classes' scores is compared (twice the bound)
        return bound.bit_length() + 2 + (self.vectors(params) > 1)

    def field_bits(self, params: TaskView) -> int:
        # every owner's witnessed quantities (influence.table_layout: at level 1 the largest
        # is n**2 B**2) must not wrap modulo p (influence.table_fits); MPyC's field for
        # ``bits`` has bits + SEC_PARAM + 2 = bits + 32 bits (node.mpc.sharing.field_modulus)
        n = max(2, params.max_rows)
        got = self.influence(params)
        assert got is not None
        wit = max((n * n * b * b).bit_length() for b in got[0])
        need = max(self.cmp_bits(params), wit + 4 - FIELD_EXTRA_BITS,
                   (self.model_bound(params) * 2).bit_length() + 4)  # fmt: skip
        bits = max(32, need)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the model and column ranges need {bits}-bit scores (at most "
                f"{MAX_FIELD_BITS}); lower model_scale, model_bound or the columns' ranges"
            )
        return bits

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        mb = self.model_bound(params)
        return {
            "features": len(params.columns),
            "vectors": self.vectors(params),
            "model_owner": self.model_owner(params),
            "multipliers": multipliers(params),
            "intercept_multiplier": 10 ** common_scale(params),
            "model_bound": mb,
            "cmp_bits": self.cmp_bits(params),
        }

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return ()  # one class per scored row, in owner order (the count is known at the end)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if revealed.get("error"):
            raise InvalidTaskParams(str(revealed["error"]))
        cls = [Fraction(int(v)) for v in revealed["classes"]]
        if len(cls) != rows - 1:
            raise InvalidTaskParams(f"{self.name}: {len(cls)} classes for {rows - 1} rows")
        return Output(tuple(cls), len(cls))


register(Infer(name="ml.infer", description="classes of the owners' rows under a linear model "
               "that one owner keeps secret-shared"))  # fmt: skip

"""``ml.predict``: score the owners' rows with a public linear model (e.g. the output of
``ml.logreg`` or ``ml.ridge``) and return each row's class (kernel:
``node.engines.mpc.kernels.predict``).

The model (coefficients in the columns' own units, then the intercept; exact decimals) is a
task argument, so the score ``z = x . w + b`` is a public linear combination of each secret row:
the MPC computes it exactly at a common integer scale without any product, and one checked
comparison per row gives the class ``[z > 0]`` (scikit-learn's ``predict`` for a binary
linear classifier).  Revealed: the classes only (one bit per row, in owner order), to the
committee and everyone when at most 16 rows may come (``--max-rows``), else privately to the
requester (sealed shares; the committee opens nothing).  A model that must stay secret:
``ml.infer`` (its owner shares it into each task's committee like a table).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import NUMERIC
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import parse_decimal

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView

KERNEL = "dnode.node.engines.mpc.kernels.predict"
MAX_FIELD_BITS = 256


class Predict(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = KERNEL
    input_types = NUMERIC
    max_columns = 64
    args = (
        Arg("model", "decimals", "coefficients (column units) then the intercept",
            required=True),
    )  # fmt: skip
    reveals = "the class of each row (one bit per row), nothing else"
    dp_refusal = ("its output is one class per scored row, each a function of that row alone: DP "
                  "would have to randomise every answer; train the model with DP instead "
                  "(ml.logreg / ml.ridge --epsilon)")  # fmt: skip
    revealed_to = "the committee, then everyone (at most 16 rows); else only the requester"
    cost = "one checked comparison per row"

    def _model(self, params: TaskView) -> list[Fraction]:
        return [parse_decimal(v) for v in params.args.get("model") or ()]

    def _scale(self, params: TaskView) -> int:
        """A power of ten that makes every A_j = w_j 10**(q - scale_j) and b 10**q integers."""
        m = self._model(params)
        q = 0
        while any((v * 10**q).denominator != 1 for v in m):
            q += 1
        return q + max((c.scale for c in params.columns), default=0)

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        if len(self._model(params)) != len(params.columns) + 1:
            raise InvalidTaskParams(
                f"{self.name}: model needs {len(params.columns) + 1} values (a coefficient per "
                f"column, then the intercept), got {len(self._model(params))}"
            )
        if params.max_rows > MAX_RESULT_VALUES and not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name}: up to {params.max_rows} rows do not fit the on-chain result "
                f"({MAX_RESULT_VALUES} values); ask for a private result or lower --max-rows"
            )
        self.field_bits(params)

    def weights(self, params: TaskView) -> tuple[list[int], int]:
        q = self._scale(params)
        m = self._model(params)
        a = [int(w * 10 ** (q - c.scale)) for w, c in zip(m, params.columns, strict=False)]
        return a, int(m[-1] * 10**q)

    def cmp_bits(self, params: TaskView) -> int:
        a, b = self.weights(params)
        bound = sum(abs(x) * c.bound for x, c in zip(a, params.columns, strict=True)) + abs(b)
        return bound.bit_length() + 2

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        need = max(self.cmp_bits(params), (n * max(1, *(c.bound for c in params.columns)))
                   .bit_length() + 2)  # fmt: skip
        bits = max(32, need)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the model with the declared ranges needs {bits}-bit scores "
                f"(at most {MAX_FIELD_BITS}); use fewer decimals"
            )
        return bits

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        a, b = self.weights(params)
        return {"a": a, "b": b, "cmp_bits": self.cmp_bits(params)}

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return ()  # one class per row, in owner order (the row count is known at the end)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        cls = [Fraction(int(v)) for v in revealed["classes"]]
        if len(cls) != rows:
            raise InvalidTaskParams(f"{self.name}: {len(cls)} classes for {rows} rows")
        return Output(tuple(cls), rows)


register(Predict(name="ml.predict", description="classes of the owners' rows under a public "
                 "linear model"))  # fmt: skip

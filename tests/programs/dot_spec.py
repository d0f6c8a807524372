"""test.dot: the inner product of two columns across every owner's rows (sum of a_i * b_i)."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from dnode.scheduler.programs import Output, ProgramSpec, TaskParams, register


class Dot(ProgramSpec):
    name = "test.dot"
    capability = "mpc"
    family = "test"
    description = "inner product of two columns (test-only program)"
    kernel = "tests.programs.dot_kernel"
    min_columns = max_columns = 2
    reveals = "the inner product only"
    cost = "one secure product per row"
    moments = 2  # it reveals a cross product: owners' witnesses bound S_ab

    def field_bits(self, params: TaskParams) -> int:
        a, b = params.columns
        return max(16, (params.max_rows * a.bound * b.bound).bit_length() + 2)

    def out_shape(self, params: TaskParams) -> tuple[int, ...]:
        return (1,)

    def labels(self, params: TaskParams) -> tuple[tuple[str, ...], ...]:
        return (("dot",),)

    def finish(self, params: TaskParams, revealed: Mapping[str, Any], rows: int) -> Output:
        a, b = params.columns
        value = Fraction(int(revealed["dot"]), 10 ** (a.scale + b.scale))
        return Output((value,), rows, *self.layout(params))


register(Dot())

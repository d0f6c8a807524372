"""HE element-wise polynomials: ``he.poly``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.ops.common import polyval
from dnode.node.he.params import HeParams, TensorSpec, _poly_depth


class Poly(HeOp):
    keys = frozenset({"coeffs"})

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        return _poly_depth(args.get("coeffs"), params.scheme == "bfv"), {"x"}  # type: ignore[arg-type]

    def relin(self, args: Mapping[str, Any]) -> bool:
        return True

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        ckks = params.scheme == "ckks"
        coeffs = [float(c) for c in args["coeffs"]] if ckks else [int(c) for c in args["coeffs"]]
        return h, [polyval(v, coeffs) for v in xs]


OPS: dict[str, HeOp] = {"he.poly": Poly("he.poly")}

"""HE reductions: ``he.sum``, ``he.mean`` (optionally along an axis), ``he.dot``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dnode.node.he.encode import TensorHeader
from dnode.node.he.errors import InvalidProgramArgs
from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.ops.common import add_all, plain_chunks, scalar_header
from dnode.node.he.params import HeParams, TensorSpec, _array_shape, _flat


class Sum(HeOp):
    rotates = True

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        return scalar_header(h), [add_all(xs).sum()]


class Mean(HeOp):
    keys = frozenset({"axis"})

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        x, axis = inputs["x"], args.get("axis")
        if axis is not None and (isinstance(axis, bool) or axis not in range(max(len(x.shape), 1))):
            raise InvalidProgramArgs(f"he.mean: axis {axis!r} out of range for shape {x.shape}")
        # BFV: encrypted sum, division by the public count later
        return (0 if params.scheme == "bfv" else 1), {"x"}

    def galois(self, args: Mapping[str, Any], x: TensorSpec) -> bool:
        axis = args.get("axis")
        if axis is None or len(x.shape) < 2:
            return True
        return (axis if x.order == "C" else 1 - axis) == 1

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        ckks = params.scheme == "ckks"
        axis = args.get("axis")
        if axis is None or len(h.shape) < 2:
            total = add_all(xs).sum()
            n = math.prod(h.shape)
            if ckks:
                return scalar_header(h), [total.mul(1.0 / n)]
            return scalar_header(h, {"divide": n}), [total]
        rows, cols = h.spec.physical
        phys_axis = axis if h.order == "C" else 1 - axis
        if phys_axis == 0:  # over physical rows: chunk-wise additions, no rotation
            out = [add_all([xs[r * h.chunks + c] for r in range(rows)]) for c in range(h.chunks)]
            shape: tuple[int, ...]
            count, shape, chunks, width = rows, (cols,), h.chunks, h.width
        else:  # within each physical row: rotate-and-sum
            out = [add_all(xs[r * h.chunks : (r + 1) * h.chunks]).sum() for r in range(rows)]
            count, shape, chunks, width = cols, (rows,), rows, 1
        if ckks:
            out = [v.mul(1.0 / count) for v in out]
            post = None
        else:
            post = {"divide": count}
        return TensorHeader(h.scheme, shape, "C", 1, chunks, width, post), out


class Dot(HeOp):
    keys = frozenset({"weights"})
    rotates = True

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        if "weights" not in args:
            raise InvalidProgramArgs("he.dot: needs 'weights'")
        x = inputs["x"]
        shape = _array_shape(args["weights"], "he.dot weights", integer=params.scheme == "bfv")
        if shape != x.shape:
            raise InvalidProgramArgs(f"he.dot: weights shape {shape} != input shape {x.shape}")
        if not any(_flat(args["weights"])):
            raise InvalidProgramArgs("he.dot: weights are all zero")
        return 1, {"x"}

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        ws = plain_chunks(args["weights"], h, params)
        prods = [v.mul(w) for v, w in zip(xs, ws, strict=True) if any(w)]
        return scalar_header(h), [add_all(prods).sum()]


OPS: dict[str, HeOp] = {
    "he.sum": Sum("he.sum"),
    "he.mean": Mean("he.mean"),
    "he.dot": Dot("he.dot"),
}

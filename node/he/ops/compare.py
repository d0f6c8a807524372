"""HE comparisons and indexing: ``he.compare`` (x > operand, by a polynomial sign
approximation) and ``he.take`` (elements of a vector at public indices).

``he.compare`` evaluates ``step(x - operand)`` ~ 1 where ``x > operand`` and ~ 0 where
``x < operand``: ``z = (x - operand) / bound`` (the requester promises ``|x - operand| <= bound``)
goes through composite odd polynomials approximating ``sign`` on ``[-1, 1]`` (Cheon, Kim, Kim,
Lee, Lee: "Efficient homomorphic comparison methods with optimal complexity", 2020:
``g3(z) = (4589 z - 16577 z^3 + 25614 z^5 - 12860 z^7) / 2^10`` then
``f3(z) = (35 z - 35 z^3 + 21 z^5 - 5 z^7) / 16``), and ``(1 + sign) / 2`` is folded into the
last polynomial. Documented error of the step value (before CKKS noise, which adds
``CKKS_RTOL_ATOL``), for ``|x - operand| >= margin * bound``:

=========== ========== ================= ========= ======
precision   polynomials depth (levels)   margin    error
=========== ========== ================= ========= ======
``low``     g3, f3      8                 0.1       0.107
``high``    g3, g3, f3  12                0.05      0.0063
=========== ========== ================= ========= ======

Closer to the operand than the margin the output is anywhere in ``[0, 1]``; read it by
rounding (``> 0.5``). Depth 8 fits N=16384; depth 12 needs N=32768 (chosen automatically by
``prepare_task``). Max/min over encrypted values would need a comparison per tree level
(``max(a, b) = (a + b) / 2 + |a - b| / 2``): 12+ levels per level of the tree, beyond 128-bit
CKKS parameters for more than two or three levels, so they are not offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dnode.node.he.encode import TensorHeader
from dnode.node.he.errors import InvalidProgramArgs, UnsupportedOperation
from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.ops.common import add_all, mul_plain, plain_chunks, polyval
from dnode.node.he.ops.elementwise import Binary
from dnode.node.he.params import HeParams, TensorSpec, _finite, poly_depth

G3 = [0.0, 4589 / 1024, 0.0, -16577 / 1024, 0.0, 25614 / 1024, 0.0, -12860 / 1024]
F3 = [0.0, 35 / 16, 0.0, -35 / 16, 0.0, 21 / 16, 0.0, -5 / 16]
CHAINS = {"low": (G3, F3), "high": (G3, G3, F3)}
#: (margin, max |step error|) per precision, measured on 400,001 points of [-1, 1]
ERROR = {"low": (0.1, 0.107), "high": (0.05, 0.0063)}


class Compare(Binary):
    keys = frozenset({"operand", "bound", "precision"})

    def __init__(self, name: str) -> None:
        super().__init__(name, "sub")

    def chain(self, args: Mapping[str, Any]) -> tuple[list[float], ...]:
        precision = args.get("precision", "low")
        if precision not in CHAINS:
            raise InvalidProgramArgs(f"he.compare: precision must be one of {sorted(CHAINS)}")
        return CHAINS[precision]

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        if params.scheme != "ckks":
            raise UnsupportedOperation("he.compare needs CKKS (a polynomial approximation)")
        _, names = super().check(params, args, inputs)
        bound = _finite(args.get("bound", 0.0), "he.compare bound")
        if not bound > 0:
            raise InvalidProgramArgs("he.compare: bound (>= |x - operand|) must be positive")
        return sum(poly_depth(len(p) - 1) for p in self.chain(args)), names

    def relin(self, args: Mapping[str, Any]) -> bool:
        return True

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, zs = super().run(args, params, tensors)  # x - operand
        polys = [list(p) for p in self.chain(args)]
        b = float(args["bound"])
        polys[0] = [c / b**i for i, c in enumerate(polys[0])]  # scaling folded in: no level
        polys[-1] = [0.5] + [c / 2 for c in polys[-1][1:]]  # (1 + sign) / 2 folded in
        out = []
        for z in zs:
            for p in polys:
                z = polyval(z, p)
            out.append(z)
        return h, out


class Take(HeOp):
    """``x[index]`` of a 1-D encrypted vector: one masked rotate-and-sum per index."""

    keys = frozenset({"index"})
    rotates = True

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        x, idx = inputs["x"], args.get("index")
        if len(x.shape) != 1:
            raise UnsupportedOperation("he.take: the input must be a vector")
        if not isinstance(idx, list) or not 1 <= len(idx) <= 64:
            raise InvalidProgramArgs("he.take: index must be a list of 1..64 positions")
        for i in idx:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < x.shape[0]:
                raise InvalidProgramArgs(f"he.take: index {i!r} out of range for {x.shape}")
        return 1, {"x"}

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        dtype = np.int64 if params.scheme == "bfv" else np.float64
        out = []
        for i in args["index"]:
            mask = np.zeros(h.shape, dtype=dtype)
            mask[i] = 1
            chunks = plain_chunks(mask, h, params)
            out.append(add_all([mul_plain(v, c) for v, c in zip(xs, chunks, strict=True)
                                if any(c)]).sum())  # fmt: skip
        k = len(out)
        return TensorHeader(h.scheme, (k,), "C", 1, k, 1, None), out


OPS: dict[str, HeOp] = {"he.compare": Compare("he.compare"), "he.take": Take("he.take")}

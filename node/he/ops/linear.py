"""HE linear layers: ``he.matmul`` (encrypted rows x plaintext matrix, + bias, + polynomial)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dnode.node.he.encode import TensorHeader
from dnode.node.he.errors import EvaluationFailed, InvalidProgramArgs, UnsupportedOperation
from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.ops.common import polyval
from dnode.node.he.params import HeParams, TensorSpec, _array_shape, _poly_depth


class MatMul(HeOp):
    keys = frozenset({"matrix", "bias", "poly"})
    rotates = True

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        x = inputs["x"]
        if params.scheme != "ckks":
            raise UnsupportedOperation("he.matmul needs CKKS (TenSEAL has no BFV vector-matrix)")
        if "matrix" not in args:
            raise InvalidProgramArgs("he.matmul: needs 'matrix' (features x outputs)")
        mshape = _array_shape(args["matrix"], "he.matmul matrix", integer=False)
        if len(mshape) != 2:
            raise InvalidProgramArgs("he.matmul: matrix must be 2-D (features x outputs)")
        if x.order != "C" or len(x.shape) not in (1, 2):
            raise UnsupportedOperation("he.matmul: input must be a C-order vector or matrix")
        n = x.shape[-1]
        if mshape[0] != n:
            raise InvalidProgramArgs(f"he.matmul: matrix has {mshape[0]} rows, input has {n}")
        if n > params.slots or mshape[1] > params.slots:
            raise UnsupportedOperation(f"he.matmul: dimensions must fit {params.slots} slots")
        if args.get("bias") is not None:
            bshape = _array_shape(args["bias"], "he.matmul bias", integer=False)
            if bshape != (mshape[1],):
                raise InvalidProgramArgs(f"he.matmul: bias must have {mshape[1]} entries")
        depth = 1
        if args.get("poly") is not None:
            depth += _poly_depth(args["poly"], False)
        return depth, {"x"}

    def relin(self, args: Mapping[str, Any]) -> bool:
        return args.get("poly") is not None

    def min_slots(self, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]) -> int:
        mat = args.get("matrix") or [[0]]
        return max(inputs["x"].shape[-1], len(mat[0]) if mat and mat[0] else 1)

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        # One dot product per output column. TenSEAL's own CKKSVector.matmul starts from a
        # fresh *encryption* of zero (random), so its result bytes differ between runs and
        # nodes could never agree on a digest; dot (multiply_plain + rotate-and-sum) is
        # deterministic. Output: per sample, m ciphertexts holding one value each.
        h, xs = tensors["x"]
        cols = np.asarray(args["matrix"], dtype=np.float64).T.tolist()
        bias = args.get("bias")
        poly = args.get("poly")
        out = []
        for v in xs:  # one ciphertext per sample (width = features)
            for j, col in enumerate(cols):
                if not any(col):
                    raise EvaluationFailed(f"he.matmul: matrix column {j} is all zero")
                y = v.dot(col)
                if bias is not None and bias[j]:
                    y = y.add(float(bias[j]))
                if poly is not None:
                    y = polyval(y, [float(c) for c in poly])
                out.append(y)
        m = len(cols)
        shape = (m,) if len(h.shape) == 1 else (h.shape[0], m)
        return TensorHeader(h.scheme, shape, "C", h.rows, m, 1, None), out


OPS: dict[str, HeOp] = {"he.matmul": MatMul("he.matmul")}

"""HE layout ops: ``he.transpose`` (free: flips the storage-order tag)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.params import HeParams


class Transpose(HeOp):
    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        if len(h.shape) < 2:
            return h, xs
        return replace(h, shape=h.shape[::-1], order="F" if h.order == "C" else "C"), xs


OPS: dict[str, HeOp] = {"he.transpose": Transpose("he.transpose")}

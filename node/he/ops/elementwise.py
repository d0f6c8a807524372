"""HE element-wise arithmetic with a scalar, a plaintext tensor or a second ciphertext:
``he.add``, ``he.sub``, ``he.mul`` (TenSEAL's method of the same name) and ``he.div`` (CKKS:
a product by the plaintext inverse)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dnode.node.he.errors import InvalidProgramArgs, UnsupportedOperation
from dnode.node.he.ops import HeOp, Tensor
from dnode.node.he.ops.common import mul_plain, plain_chunks
from dnode.node.he.params import HeParams, TensorSpec, _array_shape, _finite, _flat


class Binary(HeOp):
    """``x OP operand``, where OP is the TenSEAL vector method ``method``."""

    keys = frozenset({"operand"})
    method = "add"
    depth = 0
    zero_ok = True  # a zero scalar operand is allowed
    encrypted_ok = True  # the operand may be the encrypted input "y"

    def __init__(self, name: str, method: str, depth: int = 0, zero_ok: bool = True) -> None:
        super().__init__(name)
        self.method, self.depth, self.zero_ok = method, depth, zero_ok

    def operand(self, args: Mapping[str, Any]) -> tuple[str, Any]:
        op = args.get("operand")
        if not isinstance(op, Mapping) or len(op) != 1:
            raise InvalidProgramArgs(
                f'{self.name}: operand must be {{"scalar": v}}, {{"plain": [...]}} or '
                f'{{"input": "y"}}'
            )
        ((kind, value),) = op.items()
        return kind, value

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        self.check_keys(args)
        integer = params.scheme == "bfv"
        kind, value = self.operand(args)
        x = inputs["x"]
        if kind == "scalar":
            _finite(value, f"{self.name} scalar", integer=integer)
            if value == 0 and not self.zero_ok:
                raise InvalidProgramArgs(self.zero_message())
        elif kind == "plain":
            shape = _array_shape(value, f"{self.name} plain operand", integer=integer)
            if shape != x.shape and not (x.shape == () and shape == (1,)):
                raise InvalidProgramArgs(f"{self.name}: plain operand {shape} != input {x.shape}")
            self.check_plain(value)
        elif kind == "input":
            if not self.encrypted_ok:
                raise UnsupportedOperation(f"{self.name} by an encrypted value is not supported")
            if value != "y" or "y" not in inputs:
                raise InvalidProgramArgs(f"{self.name}: the encrypted operand must be input 'y'")
            if inputs["y"] != x:
                raise InvalidProgramArgs(
                    f"{self.name}: encrypted operands differ in shape/order "
                    f"({x.shape}/{x.order} vs {inputs['y'].shape}/{inputs['y'].order})"
                )
            return self.depth, {"x", "y"}
        else:
            raise InvalidProgramArgs(f"{self.name}: unknown operand kind {kind!r}")
        return self.depth, {"x"}

    def zero_message(self) -> str:
        return f"{self.name}: multiplying by 0 gives no ciphertext"

    def check_plain(self, value: Any) -> None:
        return None

    def relin(self, args: Mapping[str, Any]) -> bool:
        return self.depth > 0 and "input" in (args.get("operand") or {})

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        kind, value = self.operand(args)
        if kind == "scalar":
            # BFVVector takes no scalar operands: broadcast to a plaintext block
            s: Any = float(value) if params.scheme == "ckks" else [int(value)] * h.width
            return h, [getattr(v, self.method)(s) for v in xs]
        if kind == "plain":
            ps = plain_chunks(value, h, params)
            if self.method == "mul":
                return h, [mul_plain(v, p) for v, p in zip(xs, ps, strict=True)]
            return h, [getattr(v, self.method)(p) for v, p in zip(xs, ps, strict=True)]
        ys = tensors["y"][1]
        return h, [getattr(v, self.method)(y) for v, y in zip(xs, ys, strict=True)]


class Div(Binary):
    """Division by a scalar or a plaintext: a product by the inverse (CKKS only)."""

    encrypted_ok = False

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        if params.scheme == "bfv":
            raise UnsupportedOperation("he.div needs CKKS (BFV integers have no division)")
        return super().check(params, args, inputs)

    def zero_message(self) -> str:
        return "he.div: division by zero"

    def check_plain(self, value: Any) -> None:
        if any(v == 0 for v in _flat(value)):
            raise InvalidProgramArgs("he.div: plain divisor contains zero")

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        h, xs = tensors["x"]
        kind, value = self.operand(args)
        if kind == "scalar":
            return h, [v.mul(1.0 / float(value)) for v in xs]
        ps = plain_chunks(value, h, params)
        inv = [[1.0 / d if d else 0.0 for d in p] for p in ps]  # zeros only in padding
        return h, [mul_plain(v, p) for v, p in zip(xs, inv, strict=True)]


OPS: dict[str, HeOp] = {
    "he.add": Binary("he.add", "add"),
    "he.sub": Binary("he.sub", "sub"),
    "he.mul": Binary("he.mul", "mul", depth=1, zero_ok=False),
    "he.div": Div("he.div", "mul", depth=1, zero_ok=False),
}

"""HE kernels: one module per op family, each op one class (no chains of program names).

An op declares its argument keys, validates its arguments against the inputs' shapes and the
encryption parameters (returning the multiplicative depth it needs and the encrypted inputs it
expects), says whether it rotates slots (Galois keys) or multiplies ciphertexts
(relinearization keys), and evaluates deterministically (every member must produce the same
bytes). The program registry maps a program to its family module (``spec.kernel``); the module's
``OPS`` maps the program name to its op.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dnode.node.he.errors import InsufficientDepth, InvalidProgramArgs, UnsupportedOperation

if TYPE_CHECKING:
    from dnode.node.he.encode import TensorHeader
    from dnode.node.he.params import HeParams, TensorSpec

Tensor = tuple["TensorHeader", list[Any]]


class HeOp:
    """Base of every HE op; subclasses override what differs."""

    name: str = ""
    keys: frozenset[str] = frozenset()
    rotates: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    def check_keys(self, args: Mapping[str, Any]) -> None:
        if not isinstance(args, Mapping):
            raise InvalidProgramArgs(f"{self.name}: arguments must be an object")
        unknown = set(args) - set(self.keys)
        if unknown:
            raise InvalidProgramArgs(f"{self.name}: unknown arguments {sorted(unknown)}")

    def check(
        self, params: HeParams, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
    ) -> tuple[int, set[str]]:
        """(multiplicative depth, names of the encrypted inputs it takes); raises HeError."""
        self.check_keys(args)
        return 0, {"x"}

    def galois(self, args: Mapping[str, Any], x: TensorSpec) -> bool:
        return self.rotates

    def relin(self, args: Mapping[str, Any]) -> bool:
        return False

    def min_slots(self, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]) -> int:
        return 1

    def run(
        self, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
    ) -> Tensor:
        raise UnsupportedOperation(f"{self.name} cannot be evaluated")


def op_for(program: str) -> HeOp:
    """The op of an HE program, through the program registry (UnsupportedOperation if none)."""
    from dnode.scheduler.errors import UnknownProgram
    from dnode.scheduler.programs.registry import all_programs, get_program

    known = [p.name for p in all_programs() if p.kernel.startswith("dnode.node.he.ops.")]
    try:
        spec = get_program(program)
    except UnknownProgram:
        spec = None
    if spec is None or not spec.kernel.startswith("dnode.node.he.ops."):
        raise UnsupportedOperation(f"unknown HE program {program!r}; known: {known}")
    ops: dict[str, HeOp] = importlib.import_module(spec.kernel).OPS
    return ops[program]


def check_program(
    params: HeParams, program: str, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
) -> int:
    """Validate ``program(args)`` on inputs of these shapes under ``params``; return its depth.

    The program's own checks live in its op (``node.he.ops.<family>``); raises
    InvalidProgramArgs / UnsupportedOperation / InsufficientDepth with a clear message.
    """
    op = op_for(program)
    if "x" not in inputs:
        raise InvalidProgramArgs(f"{program}: needs an encrypted input named 'x'")
    depth, expected_inputs = op.check(params, args, inputs)
    if set(inputs) != expected_inputs:
        raise InvalidProgramArgs(
            f"{program}: expects encrypted inputs {sorted(expected_inputs)}, got {sorted(inputs)}"
        )
    if depth > params.depth:
        raise InsufficientDepth(
            f"{program} needs multiplicative depth {depth}, parameters give {params.depth} "
            f"({params.scheme}, N={params.poly_modulus_degree}, "
            f"coeff_mod_bit_sizes={list(params.coeff_mod_bit_sizes)}); add levels or raise N"
        )
    return depth


def needs_galois(program: str, args: Mapping[str, Any], x: TensorSpec) -> bool:
    """Whether evaluating ``program`` rotates slots (so the public context needs Galois keys)."""
    return op_for(program).galois(args, x)

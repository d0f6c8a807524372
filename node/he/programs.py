"""Node-side evaluation of HE programs: (public context, encrypted inputs, plaintext args) ->
result tensor blob.

Pure and deterministic: the same bytes in give byte-identical bytes out (TenSEAL/SEAL
evaluation has no randomness; the operation order below is fixed), so every committee member
computes the same result digest and signs it. ``tests/node/test_he.py`` checks this across
processes. Nothing here ever sees a secret key.

Programs (``x``, ``y``: encrypted inputs; everything else is public plaintext; each program's
code is its op in ``node.he.ops.<family>``, found through the program registry):

=============== ====================================================== ===============
program         args                                                   depth (CKKS)
=============== ====================================================== ===============
he.sum          ``{}`` -> sum of all elements                          0
he.mean         ``{"axis": null | 0 | 1}``                             1 (BFV: 0 [*])
he.dot          ``{"weights": [...]}`` (same shape as x) -> sum(w*x)   1
he.matmul       ``{"matrix": n x m, "bias": m | null, "poly": c|null}`` 1 + poly
                x is (n,) or (rows, n): linear model (+ activation)
he.poly         ``{"coeffs": [c0, c1, ...]}`` element-wise polynomial  ceil(log2(d+1))
he.add/sub/mul  ``{"operand": {"scalar": v} | {"plain": [...]} |     0 / 0 / 1
                {"input": "y"}}`` element-wise
he.div          ``{"operand": {"scalar": v} | {"plain": [...]}}``      1 (CKKS only)
he.transpose    ``{}`` (free: flips the storage-order tag)             0
=============== ====================================================== ===============

[*] BFV cannot divide: the node returns the encrypted sum with ``post = {"divide": n}``, and
the requester divides after decryption (the count is public anyway).
[**] degree 1: 1, else 1 + max(1, ceil(log2(d - 1))): degree 2-3: 2, 4-5: 3, 6-9: 4.

TenSEAL's own ``CKKSVector.matmul`` and ``polyval`` encrypt fresh values internally (random),
so their output bytes differ from run to run; both are re-implemented here from
deterministic operations (multiply, rotate-and-sum, add).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dnode.node.he.encode import DEFAULT_MAX_TENSOR_BYTES, TensorBlob
from dnode.node.he.errors import EvaluationFailed, HeError, InvalidProgramArgs
from dnode.node.he.ops import check_program, needs_galois, op_for
from dnode.node.he.params import HeParams, TensorSpec
from dnode.node.he.validate import DEFAULT_MAX_CONTEXT_BYTES, load_public_context, load_tensor

__all__ = ["evaluate", "needs_relin"]


def needs_relin(program: str, args: Mapping[str, Any]) -> bool:
    """Whether the program multiplies ciphertexts (so the context needs relinearization keys)."""
    return op_for(program).relin(args)


def evaluate(
    program: str,
    args: Mapping[str, Any],
    params: HeParams,
    context: bytes,
    inputs: Mapping[str, bytes],
    specs: Mapping[str, TensorSpec],
    *,
    max_context: int = DEFAULT_MAX_CONTEXT_BYTES,
    max_tensor: int = DEFAULT_MAX_TENSOR_BYTES,
) -> bytes:
    """Validate everything, evaluate ``program`` and return the result tensor blob.

    ``specs`` are the shapes the task declares for each input (``inputs`` must have the same
    names). Raises a :class:`node.he.errors.HeError` subclass for every refusal or failure.
    """
    check_program(params, program, args, specs)
    if set(inputs) != set(specs):
        raise InvalidProgramArgs(f"inputs {sorted(inputs)} != declared {sorted(specs)}")
    ctx = load_public_context(
        context,
        params,
        need_galois=needs_galois(program, args, specs["x"]),
        need_relin=needs_relin(program, args),
        max_size=max_context,
    )
    loaded = {
        name: load_tensor(ctx, inputs[name], params, specs[name], max_size=max_tensor, name=name)
        for name in sorted(specs)
    }
    tensors = {name: (t.header, vs) for name, (t, vs) in loaded.items()}
    try:
        header, vectors = op_for(program).run(args, params, tensors)
        out = [v.serialize() for v in vectors]
    except HeError:
        raise
    except (ValueError, RuntimeError, TypeError, ArithmeticError) as e:
        raise EvaluationFailed(f"{program}: TenSEAL evaluation failed: {str(e)[:200]}") from None
    return TensorBlob(header, out).pack()

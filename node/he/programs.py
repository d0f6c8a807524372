"""Node-side evaluation of HE programs: (public context, encrypted inputs, plaintext args) ->
result tensor blob.

Pure and deterministic: the same bytes in give byte-identical bytes out (TenSEAL/SEAL
evaluation has no randomness; the operation order below is fixed), so every committee member
computes the same result digest and signs it. ``tests/node/test_he.py`` checks this across
processes. Nothing here ever sees a secret key.

Programs (``x``, ``y``: encrypted inputs; everything else is public plaintext):

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

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from dnode.node.he.encode import (
    DEFAULT_MAX_TENSOR_BYTES,
    TensorBlob,
    TensorHeader,
    chunk_rows,
    to_physical,
)
from dnode.node.he.errors import EvaluationFailed, HeError, InvalidProgramArgs
from dnode.node.he.params import HeParams, TensorSpec, check_program, needs_galois
from dnode.node.he.validate import DEFAULT_MAX_CONTEXT_BYTES, load_public_context, load_tensor

__all__ = ["evaluate", "needs_relin"]


def needs_relin(program: str, args: Mapping[str, Any]) -> bool:
    """Whether the program multiplies ciphertexts (so the context needs relinearization keys)."""
    if program == "he.poly":
        return True
    if program == "he.matmul":
        return args.get("poly") is not None
    if program == "he.mul":
        return "input" in (args.get("operand") or {})
    return False


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
        header, vectors = _run(program, args, params, tensors)
        out = [v.serialize() for v in vectors]
    except HeError:
        raise
    except (ValueError, RuntimeError, TypeError, ArithmeticError) as e:
        raise EvaluationFailed(f"{program}: TenSEAL evaluation failed: {str(e)[:200]}") from None
    return TensorBlob(header, out).pack()


# ------------------------------------------------------------------------------------------

Tensor = tuple[TensorHeader, list[Any]]


def _add_all(vectors: list[Any]) -> Any:
    """Sum of same-level vectors, in a fixed order (no ``.copy()``: it copies the context)."""
    if len(vectors) == 1:
        return vectors[0]
    acc = vectors[0].add(vectors[1])
    for v in vectors[2:]:
        acc.add_(v)
    return acc


def _scalar_header(h: TensorHeader, post: dict[str, Any] | None = None) -> TensorHeader:
    return TensorHeader(h.scheme, (), "C", 1, 1, 1, post)


def _plain_chunks(value: Any, h: TensorHeader, params: HeParams) -> list[list[Any]]:
    """A plaintext operand (logical shape of h) in the same chunked layout as h's ciphertexts."""
    dtype = np.int64 if params.scheme == "bfv" else np.float64
    arr = np.asarray(value, dtype=dtype)
    if h.shape == () and arr.shape == (1,):
        arr = arr.reshape(())
    spec = h.spec
    return [c.tolist() for c in chunk_rows(to_physical(arr, spec), h.chunks, h.width)]


def _mul_plain(v: Any, chunk: list[Any]) -> Any:
    if not any(chunk):
        raise EvaluationFailed(
            "multiplying a ciphertext block by an all-zero plaintext block gives no ciphertext"
        )
    return v.mul(chunk)


def _polyval(x: Any, coeffs: list[Any]) -> Any:
    """c0 + c1 x + ... + cd x^d, deterministically (TenSEAL's polyval encrypts a fresh
    constant, i.e. uses randomness). Term i is (ci * x) * x^(i-1), powers by binary
    splitting: depth 1 + max(1, ceil(log2(d-1))) for d >= 2 (node.he.params.poly_depth).

    TenSEAL's ``a.mul(b)`` works on a copy of ``a`` but mod-switches ``b`` down *in place*
    when ``b`` is at a fresher level; so reused operands (x and its powers) are always the
    receiver or the deeper operand. (``.copy()`` would also do, but copies the whole
    context: ~0.3 s with Galois keys.)"""
    powers: dict[int, Any] = {1: x}

    def power(k: int) -> Any:
        if k not in powers:
            p = 1 << (k.bit_length() - 1)
            a, b = (k // 2, k // 2) if p == k else (p, k - p)  # b <= a: x^b is fresher
            powers[k] = power(b).mul(power(a))
        return powers[k]

    acc = None
    for i, c in enumerate(coeffs[1:], start=1):
        if not c:
            continue
        term = x.mul(c)
        if i > 1:
            term = power(i - 1).mul(term)  # term is a temporary: it may be switched down
        acc = term if acc is None else acc.add(term)
    assert acc is not None  # the leading coefficient is non-zero (checked)
    return acc.add(coeffs[0]) if coeffs[0] else acc


def _run(
    program: str, args: Mapping[str, Any], params: HeParams, tensors: Mapping[str, Tensor]
) -> Tensor:
    h, xs = tensors["x"]
    ckks = params.scheme == "ckks"
    n = math.prod(h.shape)

    if program == "he.sum":
        return _scalar_header(h), [_add_all(xs).sum()]

    if program == "he.mean":
        axis = args.get("axis")
        if axis is None or len(h.shape) < 2:
            total = _add_all(xs).sum()
            if ckks:
                return _scalar_header(h), [total.mul(1.0 / n)]
            return _scalar_header(h, {"divide": n}), [total]
        rows, cols = h.spec.physical
        phys_axis = axis if h.order == "C" else 1 - axis
        if phys_axis == 0:  # over physical rows: chunk-wise additions, no rotation
            out = [_add_all([xs[r * h.chunks + c] for r in range(rows)]) for c in range(h.chunks)]
            shape: tuple[int, ...]
            count, shape, chunks, width = rows, (cols,), h.chunks, h.width
        else:  # within each physical row: rotate-and-sum
            out = [_add_all(xs[r * h.chunks : (r + 1) * h.chunks]).sum() for r in range(rows)]
            count, shape, chunks, width = cols, (rows,), rows, 1
        if ckks:
            out = [v.mul(1.0 / count) for v in out]
            post = None
        else:
            post = {"divide": count}
        return TensorHeader(h.scheme, shape, "C", 1, chunks, width, post), out

    if program == "he.dot":
        ws = _plain_chunks(args["weights"], h, params)
        prods = [v.mul(w) for v, w in zip(xs, ws, strict=True) if any(w)]
        return _scalar_header(h), [_add_all(prods).sum()]

    if program == "he.matmul":
        # One dot product per output column. TenSEAL's own CKKSVector.matmul starts from a
        # fresh *encryption* of zero (random), so its result bytes differ between runs and
        # nodes could never agree on a digest; dot (multiply_plain + rotate-and-sum) is
        # deterministic. Output: per sample, m ciphertexts holding one value each.
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
                    y = _polyval(y, [float(c) for c in poly])
                out.append(y)
        m = len(cols)
        shape = (m,) if len(h.shape) == 1 else (h.shape[0], m)
        return TensorHeader(h.scheme, shape, "C", h.rows, m, 1, None), out

    if program == "he.poly":
        coeffs = [float(c) for c in args["coeffs"]] if ckks else [int(c) for c in args["coeffs"]]
        return h, [_polyval(v, coeffs) for v in xs]

    if program == "he.transpose":
        if len(h.shape) < 2:
            return h, xs
        return replace(h, shape=h.shape[::-1], order="F" if h.order == "C" else "C"), xs

    # element-wise binary operations
    ((kind, value),) = args["operand"].items()
    if kind == "scalar":
        # BFVVector takes no scalar operands: broadcast to a plaintext block
        s: Any = float(value) if ckks else [int(value)] * h.width
        if program == "he.add":
            return h, [v.add(s) for v in xs]
        if program == "he.sub":
            return h, [v.sub(s) for v in xs]
        if program == "he.mul":
            return h, [v.mul(s) for v in xs]
        return h, [v.mul(1.0 / float(value)) for v in xs]  # he.div (CKKS only, checked)
    if kind == "plain":
        ps = _plain_chunks(value, h, params)
        if program == "he.add":
            return h, [v.add(p) for v, p in zip(xs, ps, strict=True)]
        if program == "he.sub":
            return h, [v.sub(p) for v, p in zip(xs, ps, strict=True)]
        if program == "he.mul":
            return h, [_mul_plain(v, p) for v, p in zip(xs, ps, strict=True)]
        inv = [[1.0 / d if d else 0.0 for d in p] for p in ps]  # zeros only in padding
        return h, [_mul_plain(v, p) for v, p in zip(xs, inv, strict=True)]
    ys = tensors["y"][1]
    if program == "he.add":
        return h, [v.add(y) for v, y in zip(xs, ys, strict=True)]
    if program == "he.sub":
        return h, [v.sub(y) for v, y in zip(xs, ys, strict=True)]
    return h, [v.mul(y) for v, y in zip(xs, ys, strict=True)]  # he.mul

"""Deterministic TenSEAL building blocks shared by the HE op families."""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.node.he.encode import TensorHeader, chunk_rows, to_physical
from dnode.node.he.errors import EvaluationFailed
from dnode.node.he.params import HeParams


def add_all(vectors: list[Any]) -> Any:
    """Sum of same-level vectors, in a fixed order (no ``.copy()``: it copies the context)."""
    if len(vectors) == 1:
        return vectors[0]
    acc = vectors[0].add(vectors[1])
    for v in vectors[2:]:
        acc.add_(v)
    return acc


def scalar_header(h: TensorHeader, post: dict[str, Any] | None = None) -> TensorHeader:
    return TensorHeader(h.scheme, (), "C", 1, 1, 1, post)


def plain_chunks(value: Any, h: TensorHeader, params: HeParams) -> list[list[Any]]:
    """A plaintext operand (logical shape of h) in the same chunked layout as h's ciphertexts."""
    dtype = np.int64 if params.scheme == "bfv" else np.float64
    arr = np.asarray(value, dtype=dtype)
    if h.shape == () and arr.shape == (1,):
        arr = arr.reshape(())
    spec = h.spec
    return [c.tolist() for c in chunk_rows(to_physical(arr, spec), h.chunks, h.width)]


def mul_plain(v: Any, chunk: list[Any]) -> Any:
    if not any(chunk):
        raise EvaluationFailed(
            "multiplying a ciphertext block by an all-zero plaintext block gives no ciphertext"
        )
    return v.mul(chunk)


def polyval(x: Any, coeffs: list[Any]) -> Any:
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

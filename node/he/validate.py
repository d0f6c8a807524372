"""Defensive loading of untrusted HE contexts and ciphertexts (node side).

Everything a node evaluates comes from the requester and may be malformed or forged. Before a
blob reaches TenSEAL its size is capped; after, the context must be *public* (no secret key),
its SEAL parameters must be exactly the task's declared (128-bit secure, deep enough)
parameters, every ciphertext must be a fresh, size-2 ciphertext at the top level of that
context with the declared layout. TenSEAL/SEAL report garbage as ``ValueError`` /
``RuntimeError`` / ``TypeError`` with various messages; :func:`convert_errors` turns all of
them into :class:`MalformedBlob`.

Crash safety: fuzzing (random bytes, truncations, byte and bit flips of valid contexts and
ciphertexts; 1,200 cases during development, 60 more in tests/node/test_he.py) produced only
Python exceptions, no crash. The daemon still evaluates in a child process
(:mod:`node.he.runner`), so a crash, hang or memory blow-up in native code costs only that task.

A ciphertext that is well formed but encrypts something else than the requester claims cannot
be detected (no proof of plaintext knowledge); it only changes the requester's own result.
"""

from __future__ import annotations

from typing import Any

from dnode.node.he.encode import DEFAULT_MAX_TENSOR_BYTES, TensorBlob, layout_for
from dnode.node.he.errors import (
    BlobTooLarge,
    ContextNotPublic,
    MalformedBlob,
    ParamsMismatch,
    convert_errors,
)
from dnode.node.he.params import HeParams, TensorSpec

# a public CKKS context with Galois keys at N=16384 is ~150 MB; 32768 is not offered by nodes
DEFAULT_MAX_CONTEXT_BYTES = 256 * 1024 * 1024


_SEAL_SCHEMES = {1: "bfv", 2: "ckks"}  # seal::scheme_type values


def _level_bits(params: HeParams) -> list[int]:
    """Declared bit sizes of q at each level, key level first (special prime dropped next)."""
    bits = list(params.coeff_mod_bit_sizes)
    out = [sum(bits)]
    data = bits[:-1]
    while data:
        out.append(sum(data))
        data = data[:-1]
    return out


def check_context_params(ctx: Any, params: HeParams) -> None:
    """Raise ParamsMismatch unless ``ctx``'s SEAL parameters are exactly ``params``."""
    with convert_errors("context parameters"):
        sd = ctx.seal_context().data
        key = sd.key_context_data()
        parms = key.parms()
        scheme = int(parms.scheme())
        n = parms.poly_modulus_degree()
        levels: list[tuple[int, int]] = []
        cd = key
        while cd is not None and len(levels) < 64:
            levels.append((cd.chain_index(), cd.total_coeff_modulus_bit_count()))
            cd = cd.next_context_data()
        first = sd.first_context_data()
        half_t = first.plain_upper_half_threshold() if params.scheme == "bfv" else 0
    if _SEAL_SCHEMES.get(scheme) != params.scheme:
        raise ParamsMismatch(f"context scheme {scheme} != declared {params.scheme}")
    if n != params.poly_modulus_degree:
        raise ParamsMismatch(f"context N={n} != declared {params.poly_modulus_degree}")
    expected = _level_bits(params)
    nprimes = len(params.coeff_mod_bit_sizes)
    if len(levels) != len(expected):
        raise ParamsMismatch(
            f"context has {len(levels)} modulus levels, declared parameters give {len(expected)}"
        )
    for i, ((_, got), want) in enumerate(zip(levels, expected, strict=True)):
        k = nprimes - i  # primes at this level; each has exactly its bit size
        if not want - k < got <= want:
            raise ParamsMismatch(
                f"context modulus at level {i} has {got} bits, declared parameters give {want}"
            )
    if params.scheme == "ckks":
        if ctx.global_scale != params.scale:
            raise ParamsMismatch(f"context scale {ctx.global_scale} != 2^{params.scale_bits}")
    elif half_t != (params.plain_modulus + 1) // 2:
        raise ParamsMismatch("context plain modulus differs from the declared one")


def load_public_context(
    data: bytes,
    params: HeParams,
    *,
    need_galois: bool,
    need_relin: bool = True,
    max_size: int = DEFAULT_MAX_CONTEXT_BYTES,
) -> Any:
    """Deserialize an untrusted public context and check it against the task's parameters."""
    import tenseal as ts

    if len(data) > max_size:
        raise BlobTooLarge(f"context of {len(data)} bytes exceeds {max_size}")
    with convert_errors("context"):
        ctx = ts.context_from(bytes(data))
        private, has_sk = ctx.is_private(), ctx.has_secret_key()
    if private or has_sk:
        raise ContextNotPublic("the context contains a secret key; nodes only accept public ones")
    check_context_params(ctx, params)
    with convert_errors("context keys"):
        if need_galois and not ctx.has_galois_keys():
            raise MalformedBlob("the program rotates slots but the context has no Galois keys")
        if need_relin and not ctx.has_relin_keys():
            raise MalformedBlob("the context has no relinearization keys")
        # evaluation behaviour is ours to choose, not the sender's
        ctx.auto_relin = True
        ctx.auto_rescale = True
        ctx.auto_mod_switch = True
    return ctx


def load_tensor(
    ctx: Any,
    blob: bytes,
    params: HeParams,
    spec: TensorSpec,
    *,
    max_size: int = DEFAULT_MAX_TENSOR_BYTES,
    name: str = "x",
) -> tuple[TensorBlob, list[Any]]:
    """Parse an untrusted input tensor blob; returns it and its TenSEAL vectors."""
    import tenseal as ts

    t = TensorBlob.unpack(blob, max_size)
    h = t.header
    if h.scheme != params.scheme:
        raise ParamsMismatch(f"input {name!r} is {h.scheme}, the task uses {params.scheme}")
    if h.spec != spec:
        raise ParamsMismatch(
            f"input {name!r} has shape {h.shape}/{h.order}, the task declares "
            f"{spec.shape}/{spec.order}"
        )
    if (h.rows, h.chunks, h.width) != layout_for(spec, params.slots) or h.post is not None:
        raise MalformedBlob(f"input {name!r} does not have the standard layout")
    load = ts.ckks_vector_from if params.scheme == "ckks" else ts.bfv_vector_from
    with convert_errors(f"input {name!r}"):
        top = ctx.seal_context().data.first_parms_id()
        vectors = []
        for i, raw in enumerate(t.ciphertexts):
            v = load(ctx, raw)
            cts = v.ciphertext()
            seal_ct = cts[0] if isinstance(cts, list) else cts
            if isinstance(cts, list) and len(cts) != 1:
                raise MalformedBlob(f"input {name!r} ciphertext {i} is not a single ciphertext")
            if v.size() != h.width:
                raise MalformedBlob(f"input {name!r} ciphertext {i} holds {v.size()} values")
            if seal_ct.size() != 2 or seal_ct.is_transparent():
                raise MalformedBlob(f"input {name!r} ciphertext {i} is not a fresh ciphertext")
            if seal_ct.parms_id() != top:
                raise MalformedBlob(f"input {name!r} ciphertext {i} is not at the top level")
            if params.scheme == "ckks" and seal_ct.scale != params.scale:
                raise MalformedBlob(f"input {name!r} ciphertext {i} has a foreign scale")
            vectors.append(v)
    return t, vectors

"""Encryption parameters of an HE task, the 128-bit security check and the per-program depth check.

Pure Python (no TenSEAL import), so requesters, the scheduler and nodes can validate a task's
parameters before touching any ciphertext.

Security: the total coefficient-modulus size ``log2 q`` (sum of the prime bit sizes, the
number SEAL itself checks) must not exceed the HomomorphicEncryption.org standard's bound for
classical 128-bit security with a ternary secret (Albrecht et al., "Homomorphic Encryption
Security Standard", 2018, table 1; the same table SEAL uses for ``sec_level_type::tc128``).

Depth: CKKS has ``len(coeff_mod_bit_sizes) - 2`` rescaling levels (the first prime holds the
final value, the last one is the special key-switching prime); every multiplication
(ciphertext x plaintext, scalar or ciphertext) consumes one level. BFV has no levels; its noise
budget is estimated with a conservative empirical formula (see :func:`bfv_depth`), checked
against measured decryption failures in ``tests/node/test_he.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dnode.node.he.errors import (
    InsecureParams,
    InsufficientDepth,
    InvalidProgramArgs,
    UnsupportedOperation,
)
from dnode.node.mpc.sharing import is_probable_prime

# max total coeff-modulus bits for classical 128-bit security (ternary secret), per N
SECURITY_128: dict[int, int] = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
MAX_PRIME_BITS = 60
MIN_PRIME_BITS = 20
# SEAL's default BFV coefficient moduli (CoeffModulus::BFVDefault, 128-bit)
BFV_DEFAULT_BITS: dict[int, tuple[int, ...]] = {
    4096: (36, 36, 37),
    8192: (43, 43, 44, 44, 44),
    16384: (48, 48, 48, 49, 49, 49, 49, 49, 49),
    32768: (55, 55, 55, 55, 55, 55, 56, 56, 56, 56, 56, 56, 56, 56, 56, 56),
}
CKKS_FIRST_BITS = 60
CKKS_SCALE_BITS = 40
CKKS_MIN_SCALE_BITS = 33
CKKS_INT_BITS = 20  # bits of the first prime above the scale: |values| < 2^19 at the end
BFV_DEFAULT_PLAIN_MODULUS = 1032193  # 20-bit prime, = 1 mod 2*16384: batching up to N=8192
MAX_POLY_DEGREE = 15
# Documented CKKS accuracy with the default parameters (scale 2^40, 60-bit first prime) for
# inputs and intermediates of magnitude <= 1e5: |decrypted - exact| <= atol + rtol * |exact|.
# Measured errors are 1e-9..1e-5 (tests/node/test_he.py, scripts/bench_he.py).
CKKS_RTOL_ATOL = (1e-4, 1e-4)

HE_PROGRAMS = (
    "he.sum",
    "he.mean",
    "he.dot",
    "he.matmul",
    "he.poly",
    "he.add",
    "he.sub",
    "he.mul",
    "he.div",
    "he.transpose",
)
# programs whose evaluation rotates slots (needs Galois keys), see needs_galois()
_ROTATING = {"he.sum", "he.dot", "he.matmul"}


@dataclass(frozen=True)
class HeParams:
    """Scheme and encryption parameters; constructing one enforces 128-bit security.

    * ``scheme``: ``"ckks"`` (approximate reals) or ``"bfv"`` (exact integers mod t);
    * ``poly_modulus_degree`` N: 4096, 8192, 16384 or 32768 (N/2 slots per ciphertext);
    * ``coeff_mod_bit_sizes``: bit size of each prime of q, special prime last;
    * ``scale_bits``: CKKS only, log2 of the encoding scale (= every middle prime's size);
    * ``plain_modulus``: BFV only, a prime t = 1 mod 2N (batching).
    """

    scheme: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int = 0
    plain_modulus: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeff_mod_bit_sizes", tuple(self.coeff_mod_bit_sizes))
        n, bits = self.poly_modulus_degree, self.coeff_mod_bit_sizes
        if self.scheme not in ("ckks", "bfv"):
            raise InsecureParams(f"unknown scheme {self.scheme!r} (ckks or bfv)")
        if n not in SECURITY_128:
            raise InsecureParams(
                f"poly_modulus_degree {n} unsupported; use one of {sorted(SECURITY_128)}"
            )
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in bits):
            raise InsecureParams("coeff_mod_bit_sizes must be integers")
        if any(not MIN_PRIME_BITS <= b <= MAX_PRIME_BITS for b in bits):
            raise InsecureParams(
                f"each coefficient prime must have {MIN_PRIME_BITS}..{MAX_PRIME_BITS} bits"
            )
        if sum(bits) > SECURITY_128[n]:
            raise InsecureParams(
                f"coefficient modulus of {sum(bits)} bits with N={n} is below 128-bit "
                f"security (HomomorphicEncryption.org standard: at most {SECURITY_128[n]} bits)"
            )
        if self.scheme == "ckks":
            if len(bits) < 3:
                raise InsecureParams("CKKS needs at least 3 primes (first, >= 1 level, special)")
            if self.plain_modulus:
                raise InsecureParams("plain_modulus is a BFV parameter")
            if not 20 <= self.scale_bits <= 58:
                raise InsecureParams("CKKS scale_bits must be between 20 and 58")
            if any(b != self.scale_bits for b in bits[1:-1]):
                raise InsecureParams("CKKS middle primes must all have scale_bits bits")
            if bits[0] < self.scale_bits + 10 or bits[-1] < bits[0]:
                raise InsecureParams(
                    "CKKS first prime needs >= scale_bits + 10 bits (integer part) and the "
                    "special (last) prime at least as many as the first"
                )
        else:
            if len(bits) < 2:
                raise InsecureParams("BFV needs at least 2 primes")
            if self.scale_bits:
                raise InsecureParams("scale_bits is a CKKS parameter")
            t = self.plain_modulus
            if not isinstance(t, int) or not 2**16 < t < 2**60 or not is_probable_prime(t):
                raise InsecureParams("BFV plain_modulus must be a prime between 2^16 and 2^60")
            if t % (2 * n) != 1:
                raise InsecureParams(f"BFV plain_modulus must be 1 mod 2N = {2 * n} (batching)")

    # -- derived ----------------------------------------------------------------------
    @property
    def slots(self) -> int:
        """Values per ciphertext (N/2; BFV uses one of its two rows, to keep layouts equal)."""
        return self.poly_modulus_degree // 2

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def depth(self) -> int:
        """Multiplicative depth available to a program."""
        if self.scheme == "ckks":
            return len(self.coeff_mod_bit_sizes) - 2
        return bfv_depth(
            self.poly_modulus_degree, self.total_bits - self.coeff_mod_bit_sizes[-1], self.t_bits
        )

    @property
    def t_bits(self) -> int:
        return self.plain_modulus.bit_length() if self.plain_modulus else 0

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "scheme": self.scheme,
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
        }
        if self.scheme == "ckks":
            d["scale_bits"] = self.scale_bits
        else:
            d["plain_modulus"] = self.plain_modulus
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeParams:
        try:
            if not isinstance(d, Mapping):
                raise TypeError("params must be an object")
            extra = (
                set(d)
                - {"scheme", "poly_modulus_degree", "coeff_mod_bit_sizes"}
                - {"scale_bits" if d.get("scheme") == "ckks" else "plain_modulus"}
            )
            if extra:
                raise ValueError(f"unknown fields {sorted(extra)}")
            bits = d["coeff_mod_bit_sizes"]
            if not isinstance(bits, list):
                raise TypeError("coeff_mod_bit_sizes must be a list")
            return cls(
                scheme=d["scheme"],
                poly_modulus_degree=_int(d["poly_modulus_degree"]),
                coeff_mod_bit_sizes=tuple(_int(b) for b in bits),
                scale_bits=_int(d.get("scale_bits", 0)),
                plain_modulus=_int(d.get("plain_modulus", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InsecureParams(f"malformed HE parameters: {e}") from None


def _int(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"{x!r} is not an integer")
    return x


def bfv_depth(n: int, q_data_bits: int, t_bits: int) -> int:
    """Conservative number of sequential multiplications BFV decrypts correctly after.

    ``floor((log q - log t - log N - 10) / (log t + log N + 4))`` with ``q`` the data modulus
    (all primes but the special one). Measured with SEAL 4 / TenSEAL 0.3.18 (chain of x*x*...):
    N=4096,q=72,t=17b: 1 (formula 1); N=8192,q=120,t=20b: 2 (2); q=174,t=20b: 4 (3);
    q=174,t=17b: 5 (3); N=16384,q=389,t=20b: 10 (9).
    """
    log_n = int(math.log2(n))
    return max(0, (q_data_bits - t_bits - log_n - 10) // (t_bits + log_n + 4))


def default_params(scheme: str = "ckks", depth: int = 1, min_slots: int = 1) -> HeParams:
    """The smallest standard parameter set with ``depth`` levels and ``min_slots`` slots."""
    depth = max(depth, 1)
    for n in sorted(SECURITY_128):
        if n // 2 < min_slots:
            continue
        if scheme == "ckks":
            # scale 2^40 (first/special primes 60 bits) when it fits; otherwise a smaller
            # scale (>= 2^CKKS_MIN_SCALE_BITS, 20 integer bits) before doubling N: a
            # public context with Galois keys is ~35 MB at N=8192 but ~4x that at 16384
            scale = min(CKKS_SCALE_BITS, (SECURITY_128[n] - 2 * CKKS_INT_BITS) // (depth + 2))
            if scale >= CKKS_MIN_SCALE_BITS:
                outer = min(scale + CKKS_INT_BITS, CKKS_FIRST_BITS)
                bits = (outer,) + (scale,) * depth + (outer,)
                return HeParams("ckks", n, bits, scale_bits=scale)
        elif scheme == "bfv":
            t = BFV_DEFAULT_PLAIN_MODULUS if n <= 8192 else _bfv_plain_modulus(n)
            p = HeParams("bfv", n, BFV_DEFAULT_BITS[n], plain_modulus=t)
            if p.depth >= depth:
                return p
        else:
            raise InsecureParams(f"unknown scheme {scheme!r} (ckks or bfv)")
    raise InsufficientDepth(
        f"no 128-bit secure {scheme} parameter set has depth {depth} and {min_slots} slots"
    )


def _bfv_plain_modulus(n: int, bits: int = 20) -> int:
    t = (2**bits // (2 * n)) * 2 * n + 1
    while not is_probable_prime(t):
        t += 2 * n
    return t


# ------------------------------------------------------------------------------------------
# programs: argument validation, depth, key needs (pure; evaluation is node.he.programs)


def _finite(x: Any, what: str, *, integer: bool = False) -> float | int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise InvalidProgramArgs(f"{what} must be a number, not {type(x).__name__}")
    if isinstance(x, float) and not math.isfinite(x):
        raise InvalidProgramArgs(f"{what} must be finite")
    if integer and not isinstance(x, int):
        raise InvalidProgramArgs(f"{what} must be an integer under BFV")
    return x


def _array_shape(x: Any, what: str, *, integer: bool) -> tuple[int, ...]:
    """Shape of a nested list of numbers (rectangular, 1-D or 2-D), validating entries."""
    if not isinstance(x, list) or not x:
        raise InvalidProgramArgs(f"{what} must be a non-empty list")
    if all(not isinstance(r, list) for r in x):
        for v in x:
            _finite(v, f"{what} entry", integer=integer)
        return (len(x),)
    if not all(isinstance(r, list) and r for r in x):
        raise InvalidProgramArgs(f"{what} must be a list of numbers or a list of rows")
    width = len(x[0])
    if any(len(r) != width for r in x):
        raise InvalidProgramArgs(f"{what} rows must all have the same length")
    for r in x:
        for v in r:
            _finite(v, f"{what} entry", integer=integer)
    return (len(x), width)


def _check_keys(args: Mapping[str, Any], allowed: set[str], program: str) -> None:
    if not isinstance(args, Mapping):
        raise InvalidProgramArgs(f"{program}: arguments must be an object")
    unknown = set(args) - allowed
    if unknown:
        raise InvalidProgramArgs(f"{program}: unknown arguments {sorted(unknown)}")


def _poly_depth(coeffs: Sequence[Any], integer: bool) -> int:
    if not isinstance(coeffs, list) or not 2 <= len(coeffs) <= MAX_POLY_DEGREE + 1:
        raise InvalidProgramArgs(
            f"polynomial coefficients: a list of 2..{MAX_POLY_DEGREE + 1} numbers (c0, c1, ...)"
        )
    for c in coeffs:
        _finite(c, "polynomial coefficient", integer=integer)
    if coeffs[-1] == 0:
        raise InvalidProgramArgs("the leading polynomial coefficient must be non-zero")
    return poly_depth(len(coeffs) - 1)


def poly_depth(degree: int) -> int:
    """Levels used by node.he.programs._polyval: term i is (c_i x) * x^(i-1)."""
    if degree <= 1:
        return 1
    return 1 + max(1, math.ceil(math.log2(degree - 1)))


@dataclass(frozen=True)
class TensorSpec:
    """Logical shape and storage order of an encrypted tensor (public metadata)."""

    shape: tuple[int, ...]
    order: str = "C"  # "C": physical rows = logical rows; "F": physical rows = logical columns

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        if len(self.shape) > 2 or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.shape
        ):
            raise InvalidProgramArgs(f"tensor shape {self.shape} must be 0-, 1- or 2-D, dims >= 1")
        if self.order not in ("C", "F"):
            raise InvalidProgramArgs("tensor order must be 'C' or 'F'")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def physical(self) -> tuple[int, int]:
        """(rows, columns) as stored: one row = one or more ciphertexts."""
        if len(self.shape) == 0:
            return (1, 1)
        if len(self.shape) == 1:
            return (1, self.shape[0])
        r, c = self.shape
        return (r, c) if self.order == "C" else (c, r)


def check_program(
    params: HeParams, program: str, args: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
) -> int:
    """Validate ``program(args)`` on inputs of these shapes under ``params``; return its depth.

    Raises InvalidProgramArgs / UnsupportedOperation / InsufficientDepth with a clear message.
    """
    integer = params.scheme == "bfv"
    if program not in HE_PROGRAMS:
        raise UnsupportedOperation(f"unknown HE program {program!r}; known: {list(HE_PROGRAMS)}")
    if "x" not in inputs:
        raise InvalidProgramArgs(f"{program}: needs an encrypted input named 'x'")
    x = inputs["x"]
    expected_inputs = {"x"}
    depth = 0
    if program in ("he.sum", "he.transpose"):
        _check_keys(args, set(), program)
    elif program == "he.mean":
        _check_keys(args, {"axis"}, program)
        axis = args.get("axis")
        if axis is not None and (isinstance(axis, bool) or axis not in range(max(len(x.shape), 1))):
            raise InvalidProgramArgs(f"he.mean: axis {axis!r} out of range for shape {x.shape}")
        depth = 0 if integer else 1  # BFV: encrypted sum, division by the public count later
    elif program == "he.dot":
        _check_keys(args, {"weights"}, program)
        if "weights" not in args:
            raise InvalidProgramArgs("he.dot: needs 'weights'")
        shape = _array_shape(args["weights"], "he.dot weights", integer=integer)
        if shape != x.shape:
            raise InvalidProgramArgs(f"he.dot: weights shape {shape} != input shape {x.shape}")
        if not any(_flat(args["weights"])):
            raise InvalidProgramArgs("he.dot: weights are all zero")
        depth = 1
    elif program == "he.matmul":
        _check_keys(args, {"matrix", "bias", "poly"}, program)
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
    elif program == "he.poly":
        _check_keys(args, {"coeffs"}, program)
        depth = _poly_depth(args["coeffs"], integer)
    else:  # he.add / he.sub / he.mul / he.div
        _check_keys(args, {"operand"}, program)
        op = args.get("operand")
        if not isinstance(op, Mapping) or len(op) != 1:
            raise InvalidProgramArgs(
                f'{program}: operand must be {{"scalar": v}}, {{"plain": [...]}} or '
                f'{{"input": "y"}}'
            )
        ((kind, value),) = op.items()
        if program == "he.div" and integer:
            raise UnsupportedOperation("he.div needs CKKS (BFV integers have no division)")
        if kind == "scalar":
            _finite(value, f"{program} scalar", integer=integer)
            if program == "he.div" and value == 0:
                raise InvalidProgramArgs("he.div: division by zero")
            if program == "he.mul" and value == 0:
                raise InvalidProgramArgs("he.mul: multiplying by 0 gives no ciphertext")
        elif kind == "plain":
            shape = _array_shape(value, f"{program} plain operand", integer=integer)
            if shape != x.shape and not (x.shape == () and shape == (1,)):
                raise InvalidProgramArgs(f"{program}: plain operand {shape} != input {x.shape}")
            if program == "he.div" and any(v == 0 for v in _flat(value)):
                raise InvalidProgramArgs("he.div: plain divisor contains zero")
        elif kind == "input":
            if program == "he.div":
                raise UnsupportedOperation("he.div by an encrypted value is not supported")
            if value != "y" or "y" not in inputs:
                raise InvalidProgramArgs(f"{program}: the encrypted operand must be input 'y'")
            if inputs["y"] != x:
                raise InvalidProgramArgs(
                    f"{program}: encrypted operands differ in shape/order "
                    f"({x.shape}/{x.order} vs {inputs['y'].shape}/{inputs['y'].order})"
                )
            expected_inputs.add("y")
        else:
            raise InvalidProgramArgs(f"{program}: unknown operand kind {kind!r}")
        depth = 1 if program in ("he.mul", "he.div") else 0
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
    if program in _ROTATING:
        return True
    if program == "he.mean":
        axis = args.get("axis")
        if axis is None or len(x.shape) < 2:
            return True
        physical_axis = axis if x.order == "C" else 1 - axis
        return physical_axis == 1
    return False


def _flat(x: Any) -> list[Any]:
    return [v for r in x for v in r] if x and isinstance(x[0], list) else list(x)

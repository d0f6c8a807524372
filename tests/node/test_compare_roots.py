"""The checked comparator's square roots (node.mpc.compare._inv_roots): the random bits are
only as good as the refusal of a 0 or a non-square that a deviating party could cause."""

from __future__ import annotations

import random

from dnode.node.mpc.compare import _inv_roots
from dnode.node.mpc.sharing import field_modulus


def test_inverse_roots_of_squares_and_refusals():
    p = field_modulus(41)
    rng = random.Random(5)
    vals = [pow(rng.randrange(1, p), 2, p) for _ in range(200)]
    roots = _inv_roots(vals, p)
    assert roots is not None
    assert all(int(r) * int(r) % p * v % p == 1 for r, v in zip(roots, vals, strict=True))
    non_square = next(v for v in range(2, 100) if pow(v, (p - 1) // 2, p) == p - 1)
    assert _inv_roots([*vals, non_square], p) is None
    assert _inv_roots([*vals, 0], p) is None


def test_inverse_roots_in_the_psi_field_p_1_mod_4():
    """secp256k1's group order (the PSI/join field) is 1 mod 4: Tonelli-Shanks finds the
    canonical root r in [1, (p-1)/2], so the bit (a/r + 1)/2 is [a <= (p-1)/2] -- exact 0/1
    values, about half of them ones -- and a 0 or a non-square is still refused."""
    from dnode.scheduler.programs.psi.tokens import ORDER as p

    assert p % 4 == 1
    rng = random.Random(7)
    a = [rng.randrange(1, p) for _ in range(400)]
    vals = [x * x % p for x in a]
    roots = _inv_roots(vals, p)
    assert roots is not None
    assert all(int(r) * int(r) % p * v % p == 1 for r, v in zip(roots, vals, strict=True))
    half = (p + 1) // 2
    bits = [(x * int(r) + 1) * half % p for x, r in zip(a, roots, strict=True)]
    assert bits == [int(x <= (p - 1) // 2) for x in a]
    assert 150 < sum(bits) < 250
    non_square = next(v for v in range(2, 100) if pow(v, (p - 1) // 2, p) == p - 1)
    assert _inv_roots([*vals, non_square], p) is None
    assert _inv_roots([*vals, 0], p) is None

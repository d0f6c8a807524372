"""What a requester may see of a CKKS decryption: the value at its documented precision only.

CKKS decrypts to the value plus the ciphertext's noise.  Li and Micciancio (EUROCRYPT 2021,
"On the security of homomorphic encryption on approximate numbers", IND-CPA^D) showed that
anyone who holds a ciphertext AND its exact decryption can recover the secret key from that
noise: the result ciphertext is held by every committee member and by anyone who fetches the
blob.  So decryptions are never shown or returned raw: :func:`publishable` adds uniform noise of
one grid step (noise flooding) and rounds to a decimal grid one digit finer than the
documented accuracy ``atol + rtol * |x|`` (:data:`node.he.params.CKKS_RTOL_ATOL`), so the
result stays within the documented accuracy while the low-order digits that carry the
decryption noise are gone.  This mitigates, it does not prove security: never give a decrypted
CKKS result to anyone who holds its ciphertext (docs/protocol.md), and keys are fresh per task.
BFV decrypts exactly (no noise in the output): its values pass unchanged.
"""

from __future__ import annotations

import secrets

import numpy as np

from dnode.node.he.params import CKKS_RTOL_ATOL

__all__ = ["grid_step", "publishable"]

_RNG = np.random.default_rng(secrets.randbits(128))


def grid_step(values: np.ndarray) -> np.ndarray:
    """Per value: the power of ten one digit below its documented error bound."""
    rtol, atol = CKKS_RTOL_ATOL
    bound = atol + rtol * np.abs(np.asarray(values, dtype=np.float64))
    return 10.0 ** np.floor(np.log10(bound / 10))


def publishable(values: np.ndarray, scheme: str) -> np.ndarray:
    """Flood and round a decryption to its documented precision (CKKS); BFV unchanged."""
    if scheme != "ckks":
        return values
    x = np.asarray(values, dtype=np.float64)
    step = grid_step(x)
    noisy = x + _RNG.uniform(-0.5, 0.5, size=x.shape) * step
    decimals = (-np.log10(step)).round().astype(int)
    flat = [round(float(v), int(d)) for v, d in zip(noisy.ravel(), decimals.ravel(), strict=True)]
    return np.array(flat, dtype=np.float64).reshape(x.shape)

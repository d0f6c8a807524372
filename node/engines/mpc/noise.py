"""Differential-privacy noise sampled jointly inside the MPC: no seat, and no coalition of at
most t seats (t < m/2), knows the noise added to a result.

The calibration (scales, coin thresholds, the finite-precision delta) is the spec's, from
:func:`dnode.scheduler.dp.plan`; its ``kernel_args()`` is the ``dp`` argument here.

Sampler (discrete Laplace, vectorised over one secure array for every release at once):

1. random bits: ``coins * bits`` secret-shared uniformly random bits that no minority knows
   (MPyC's PRSS-based ``np_random_bits``; with the malicious-minority checks, the checked
   square-root bits of :class:`dnode.node.mpc.compare.Comparator`, whose products are
   verified before any bit is used);
2. biased coins: for coin k with public threshold c_k (out of 2**bits), [U_k < c_k] where
   U_k = sum_i 2^i u_{k,i}, by the bitwise less-than against a public constant, least
   significant bit first: lt' = c_i (1 - u_i - lt) + lt + (2 c_i - 1) u_i lt -- one secure
   product per bit, ``bits`` rounds for the whole array;
3. a geometric variable from its independent binary digits, G = sum_j 2^j B_j (local: public
   weights), and the noise Z = G1 - G2 (discrete Laplace, P(Z = z) proportional to q^|z|).

Nothing is opened here: the caller adds Z to its secure values and opens only the sum
(``TableSession.open``), so the noisy value is the only thing any seat learns. Designs:
Dwork, Kenthapadi, McSherry, Mironov, Naor, "Our data, ourselves: privacy via distributed
noise generation" (EUROCRYPT 2006); Eigner, Kate, Maffei, Pampaloni, Pryvalov, "Differentially
private data aggregation with optimal utility" (ACSAC 2014); Champion, shelat, Ullman,
"Securely sampling biased coins with applications to differential privacy" (CCS 2019);
Keller, Möllering, Schneider, Tkachenko, Zhao, "Secure noise sampling for DP in MPC with
finite precision" (ePrint 2023/1594). Security statement: docs/protocol.md "Differential privacy".

Import only inside a running party (no mpyc import at module level; ``s.mpc`` is the runtime).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["add", "clip", "coins", "sample"]


async def _random_bits(s: Any, count: int) -> Any:
    """``count`` secure uniformly random bits of the session's type (flat secure array)."""
    if s.checked:
        from dnode.node.mpc.compare import Comparator

        cmp = Comparator(s.guard)
        return cmp._mk(await cmp._bits(count))
    return s.mpc.np_random_bits(s.secint, count)


async def coins(s: Any, thresholds: np.ndarray, bits: int) -> Any:
    """Secure biased coins: element k is 1 with probability thresholds[k] / 2**bits."""
    thr = [int(c) for c in np.asarray(thresholds, dtype=object).reshape(-1)]
    n = len(thr)
    if n == 0:
        return s.secint.array(np.zeros(0, dtype=object))
    u = (await _random_bits(s, n * bits)).reshape(bits, n)
    lt = None
    for i in range(bits):
        ci = np.array([(c >> i) & 1 for c in thr], dtype=object)
        ui = u[i]
        if lt is None:  # lt = 0 below the least significant bit
            lt = ui * (-ci) + ci
            continue
        w = s.mul(ui, lt)
        lt = (1 - ui - lt) * ci + lt + w * (2 * ci - 1)
    return lt


async def sample(s: Any, dp: dict[str, Any]) -> dict[str, Any]:
    """Discrete Laplace noise for every release of ``dp`` (``Plan.kernel_args()``): a dict
    release name -> secure flat array of ``size`` noise values, all sampled in one batch."""
    bits = int(dp["bits"])
    rels = list(dp["releases"])
    digits = max((len(r["thresholds"]) for r in rels), default=0)
    total = sum(int(r["size"]) for r in rels)
    if total == 0 or digits == 0:
        return {r["name"]: None for r in rels}
    # one row of digits per geometric: 2 geometrics per noise value, releases in order
    table = np.zeros((2 * total, digits), dtype=object)
    row = 0
    for r in rels:
        th = [int(c) for c in r["thresholds"]] + [0] * (digits - len(r["thresholds"]))
        for _ in range(2 * int(r["size"])):
            table[row] = th
            row += 1
    b = (await coins(s, table, bits)).reshape(2 * total, digits)
    weights = np.array([1 << j for j in range(digits)], dtype=object)
    g = (b * weights).sum(axis=1)  # public weights: local
    z = g[0::2] - g[1::2]
    out: dict[str, Any] = {}
    at = 0
    for r in rels:
        size = int(r["size"])
        out[r["name"]] = z[at : at + size]
        at += size
    return out


async def add(s: Any, values: dict[str, Any], dp: dict[str, Any]) -> dict[str, Any]:
    """``values[name] + noise[name]`` for every release (secure flat arrays of the release's
    size); values not named by a release are returned as they are."""
    noise = await sample(s, dp)
    out = dict(values)
    for name, z in noise.items():
        if z is not None:
            out[name] = values[name].reshape(-1) + z
    return out


async def clip(s: Any, x: Any, lo: list[int], hi: list[int], bits: int) -> Any:
    """Every value of ``x`` (n, w) clamped to its column's declared [lo, hi] inside the MPC
    (two secure selects per value): a sensitivity that holds whatever an owner shared."""
    n = x.shape[0]
    lo_a = np.array([list(lo)] * n, dtype=object)
    hi_a = np.array([list(hi)] * n, dtype=object)
    lo_s = s.secint.array(lo_a) if n else lo_a
    hi_s = s.secint.array(hi_a) if n else hi_a
    x = await s.where_negative(x - lo_a, x, lo_s, bits)  # below lo: lo
    return await s.where_negative(hi_a - x, x, hi_s, bits)  # above hi: hi

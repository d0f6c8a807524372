"""Security with abort against a malicious minority (t < m/2) inside one MPyC session.

MPyC's protocols are semi-honest: a party that deviates (adds an offset to the product
share it re-shares in a degree reduction, changes its input shares, sends a wrong share
when a value is opened) makes the honest parties output a wrong value without noticing.
:class:`Guard` adds the checks that turn this into *security with abort*: every deviation
that could change an opened value is detected (except with probability about 2**-61) and
the honest parties raise :class:`CheatingDetected` instead of producing a result.

Three standard honest-majority techniques, none of which forks MPyC:

Error-detecting opening (:meth:`Guard.open`)
    Every party sends its share to every party and checks that ALL m shares lie on one
    polynomial of degree t.  The m - t >= t + 1 honest shares fix that polynomial, so a
    wrong share from any of the <= t corrupt parties is detected (the Reed-Solomon code of
    Shamir sharings has distance m - t > t).  MPyC's ``output`` uses only t + 1 shares.
    Shares travel as fixed-width field elements (``field.to_bytes``), never pickled.

Consistency of owners' sharings (:meth:`Guard.check_sharings`)
    Per data owner k, the parties open ``<alpha, x_k> + rho_k`` (alpha public, drawn with a
    joint coin after the inputs are fixed; rho_k a fresh random sharing that hides the
    combination) with error detection: a sharing of degree > t by the owner (or a party
    that changed its copy) fails except with probability 2**-62, naming owner k.

Multiplication check (:meth:`Guard.authenticate`, :meth:`Guard.mul`, :meth:`Guard.inner`,
:meth:`Guard.verify`)
    Chida, Genkin, Hamada, Ikarashi, Kikuchi, Lindell, Nof, "Fast large-scale
    honest-majority MPC for malicious adversaries", CRYPTO 2018: a secret random r is
    shared; every value that enters a multiplication is also held as [r*x]; every product
    z = x*y is computed twice, [z] = [x][y] and [r*z] = [r*x][y].  MPyC's degree reduction
    (GRR98) is secure up to additive attacks (Genkin, Ishai, Prabhakaran, Sahai, Tromer,
    STOC 2014): a cheater can only add known errors d, d' to z and r*z.  Before anything
    that depends on a product is opened, the parties draw public random coefficients
    alpha_j, compute u = sum alpha_j [r*z_j] and w = sum alpha_j [z_j] locally, open r and
    check that u - r*w = 0 (opened as beta*(u - r*w), beta random).  It passes only if
    sum alpha_j (d'_j - r d_j) = 0: probability <= 2**-62 + 2/p.  An inner product (one
    degree reduction of a local sum of products) is one multiplication gate here.

Coefficients are 62-bit values from SHAKE-256 of a coin opened with error detection
(the coin is a random sharing, so no minority can bias it, only abort).

Everything this module opens is a uniformly masked value, r, a coin, or a value that is
0 in an honest run -- and the outputs the caller opens after :meth:`Guard.verify`.

The digest :attr:`Guard.transcript` hashes every opened share vector of every party: all
honest parties of one session obtain the same digest and a node that did not take part
cannot compute it (see docs/protocol.md, "Disputes").

Import only inside a running MPyC party (the caller passes its runtime ``mpc``); this
module itself never imports ``mpyc`` at import time.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COEFF_BITS", "Auth", "CheatingDetected", "Guard", "coefficients", "degree_check"]

#: bits of each public random coefficient (soundness 2**-COEFF_BITS per check)
COEFF_BITS = 62


class CheatingDetected(Exception):
    """A check of the malicious-minority protocol failed: the session aborts, no result.

    ``check`` names the failed check ("opening", "input-sharing", "multiplication",
    "influence"); ``owner`` the data owner (0-based, in task order) it concerns, if any.
    """

    def __init__(self, check: str, detail: str, owner: int | None = None) -> None:
        self.check = check
        self.detail = detail
        self.owner = owner
        who = f" (data owner {owner})" if owner is not None else ""
        super().__init__(f"cheating detected: {check} check failed{who}: {detail}")


def coefficients(seed: bytes, label: str, n: int) -> np.ndarray:
    """``n`` public random coefficients in [0, 2**COEFF_BITS) as Python ints (object array)."""
    raw = hashlib.shake_256(seed + label.encode()).digest(8 * n)
    vals = np.frombuffer(raw, dtype="<u8") >> np.uint64(64 - COEFF_BITS)
    return vals.astype(object)


def _lagrange(xs: Sequence[int], x: int, p: int) -> list[int]:
    out = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * (x - xj) % p
                den = den * (xi - xj) % p
        out.append(num * pow(den, -1, p) % p)
    return out


def degree_check(vectors: Sequence[Sequence[int]], t: int, p: int) -> tuple[list[int], list[int]]:
    """Secrets of share vectors ``vectors[i]`` (party i holds the point x = i + 1), and the
    indices h whose m shares do NOT lie on one polynomial of degree <= t."""
    m = len(vectors)
    base = list(range(1, t + 2))
    at0 = _lagrange(base, 0, p)
    ys = [np.asarray(v, dtype=object) for v in vectors]
    secret = sum((c * ys[i] for i, c in enumerate(at0)), np.zeros(len(ys[0]), dtype=object)) % p
    bad = np.zeros(len(ys[0]), dtype=bool)
    for j in range(t + 1, m):
        vec = _lagrange(base, j + 1, p)
        pred = sum((c * ys[i] for i, c in enumerate(vec)), np.zeros(len(ys[0]), dtype=object)) % p
        bad |= pred != ys[j] % p
    return [int(s) for s in secret], [int(h) for h in np.flatnonzero(bad)]


@dataclass
class Auth:
    """An authenticated secure value/array: ``x`` and ``rx`` = r*x for the Guard's secret r.

    Linear operations act on both halves (no communication); products go through
    :meth:`Guard.mul` / :meth:`Guard.inner`, which record the pair for :meth:`Guard.verify`.
    """

    x: Any
    rx: Any
    epoch: int = 0  # the Guard's epoch whose r this is (r is public after its verify)

    def _same(self, other: Auth) -> None:
        if self.epoch != other.epoch:
            raise RuntimeError("Guard: values authenticated under different epochs' r")

    def __add__(self, other: Auth) -> Auth:
        self._same(other)
        return Auth(self.x + other.x, self.rx + other.rx, self.epoch)

    def __sub__(self, other: Auth) -> Auth:
        self._same(other)
        return Auth(self.x - other.x, self.rx - other.rx, self.epoch)

    def scale(self, c: Any) -> Auth:
        """Multiply by a public constant (int) or public vector (object ndarray of ints)."""
        return Auth(self.x * c, self.rx * c, self.epoch)


class Guard:
    """The malicious-minority checks of one MPyC session (see module docstring).

    ``mpc``: the running MPyC runtime; ``sectype``: the secure type of all values (e.g.
    ``mpc.SecInt(64)``); ``session``: bytes every party agrees on (task, round, shapes), so
    coins and the transcript are bound to this session.
    """

    def __init__(self, mpc: Any, sectype: Any, session: bytes) -> None:
        from mpyc import asyncoro  # only inside a party: mpyc parses argv at import

        self.mpc = mpc
        self.sectype = sectype
        self.field = sectype.field
        self.p: int = self.field.modulus
        self.m: int = len(mpc.parties)
        self.t: int = mpc.threshold
        self.pid: int = mpc.pid
        self.session = hashlib.sha256(b"dnode.guard.v1" + session).digest()
        self._r: Any = None
        self._pairs: list[tuple[Any, Any]] = []
        self._zeros: list[tuple[str, int | None, str, Any]] = []
        self.epoch = 0  # verify() ends an epoch: r is opened, the next products use a new r
        self._transcript = hashlib.sha256(self.session)
        self.opened = 0  # number of field elements opened so far
        outer = self

        @asyncoro.mpc_coro
        async def exchange(payload: bytes):  # type: ignore[no-untyped-def]  # noqa: ANN202 - mpc_coro reads the annotation
            await mpc.returnType(asyncio.Future)
            for peer in range(outer.m):
                if peer != outer.pid:
                    mpc._send_message(peer, payload)
            got = [
                payload if peer == outer.pid else mpc._receive_message(peer)
                for peer in range(outer.m)
            ]
            return await mpc.gather(got)

        self._exchange = exchange

    # ------------------------------------------------------------------ opening

    @property
    def transcript(self) -> bytes:
        """SHA-256 over the session and every opened share vector of every party."""
        return self._transcript.copy().digest()

    def _payload(self, label: str, shares: list[int]) -> bytes:
        """This party's shares on the wire (a test-only malicious party overrides this)."""
        return bytes(self.field.to_bytes(shares))

    async def _open_checked(self, shares: list[int], label: str) -> tuple[list[int], list[int]]:
        """Exchange shares with every party: (secrets, indices failing the degree test)."""
        n = len(shares)
        got = await self._exchange(self._payload(label, shares))
        vectors = []
        width = self.field.byte_length
        for j, data in enumerate(got):
            if len(data) != n * width:
                raise CheatingDetected("opening", f"party {j} sent {len(data)} bytes for {label}")
            vec = self.field.from_bytes(data)
            if any(v >= self.p for v in vec):
                raise CheatingDetected("opening", f"party {j} sent a non-field element")
            vectors.append(vec)
            self._transcript.update(j.to_bytes(2, "big") + bytes(data))
        self.opened += n
        return degree_check(vectors, self.t, self.p)

    async def open_shares(self, shares: list[int], label: str) -> list[int]:
        """Open values from this party's raw shares (ints) with error detection.

        Returns the secrets as field ints in [0, p).  Raises CheatingDetected("opening")
        if the m share vectors do not lie on polynomials of degree t."""
        secrets_, bad = await self._open_checked(shares, label)
        if bad:
            raise CheatingDetected(
                "opening",
                f"shares of {label} (value {bad[0]}) are not on a degree-{self.t} polynomial",
            )
        return secrets_

    async def _shares_of(self, values: Sequence[Any]) -> list[int]:
        out: list[int] = []
        for v in values:
            g = await self.mpc.gather(v)
            if hasattr(g, "shape"):
                out.extend(int(a) for a in np.asarray(g.value, dtype=object).reshape(-1))
            else:
                out.append(int(g.value))
        return out

    @property
    def pending(self) -> bool:
        """True while products or zero tests of this epoch await :meth:`verify`."""
        return bool(self._pairs or self._zeros)

    async def open(self, values: Sequence[Any], label: str = "output") -> list[int]:
        """Open secure values (scalars and/or arrays, flattened in order) with error
        detection.  Values that depend on a product must wait for :meth:`verify`."""
        if self._pairs:
            raise RuntimeError("Guard.open before Guard.verify: products are unchecked")
        return await self.open_shares(await self._shares_of(values), label)

    async def coin(self, label: str) -> bytes:
        """A 32-byte public random seed no minority can bias (only make the run abort)."""
        (s,) = await self.open_shares(
            await self._shares_of([self.mpc._random(self.sectype)]), label
        )
        width = (self.p.bit_length() + 7) // 8
        return hashlib.sha256(self.session + label.encode() + s.to_bytes(width, "big")).digest()

    # ------------------------------------------------------------------ inputs

    async def check_sharings(self, owners: Sequence[Any]) -> None:
        """Check each owner's shared vector (secure array) is a consistent degree-t sharing.

        Raises CheatingDetected("input-sharing", owner=k) for the first bad owner k."""
        seed = await self.coin("inputs")
        mine: list[int] = []
        for k, arr in enumerate(owners):
            (rho,) = await self._shares_of([self.mpc._random(self.sectype)])
            if not len(arr):  # nothing shared: the opened value is just the mask
                mine.append(rho)
                continue
            g = await self.mpc.gather(arr)
            vec = np.asarray(g.value, dtype=object).reshape(-1)
            alpha = coefficients(seed, f"owner{k}", len(vec))
            mine.append((int(np.dot(alpha, vec)) + rho) % self.p)
        _, bad = await self._open_checked(mine, "input-check")
        if bad:
            raise CheatingDetected(
                "input-sharing",
                f"the owner's shares (or a party's copy of them) are not a degree-{self.t} sharing",
                bad[0],
            )

    # ------------------------------------------------------------------ products

    @property
    def r(self) -> Any:
        """The secret random r (a secure scalar), created on first use."""
        if self._r is None:
            self._r = self.mpc._random(self.sectype)
        return self._r

    def authenticate(self, x: Any) -> Auth:
        """Auth(x, r*x): one multiplication per element; the pair is checked by verify()."""
        a = Auth(x, x * self.r, self.epoch)
        self._record(a)
        return a

    def constant(self, c: int) -> Auth:
        """The public constant c as an authenticated value (no communication)."""
        return Auth(self.sectype(c), self.r * c, self.epoch)

    def mul(self, a: Auth, y: Any) -> Auth:
        """Elementwise product a.x * y, authenticated as (a.x*y, a.rx*y)."""
        z = Auth(a.x * y, a.rx * y, a.epoch)
        self._record(z)
        return z

    def inner(self, a: Auth, y: Any) -> Auth:
        """Inner product <a.x, y> (one degree reduction), authenticated as <a.rx, y>."""
        z = Auth(a.x @ y, a.rx @ y, a.epoch)
        self._record(z)
        return z

    def _record(self, z: Auth) -> None:
        if z.epoch != self.epoch:  # its r is public: a product of it would be unchecked
            raise RuntimeError("Guard: a value authenticated in an earlier epoch; re-authenticate")
        self._pairs.append((z.x, z.rx))

    def must_be_zero(
        self, value: Any, check: str, owner: int | None = None, detail: str = "a check is not 0"
    ) -> None:
        """Record a secure scalar that is 0 in an honest run; tested by verify()."""
        self._zeros.append((check, owner, detail, value))

    async def verify(self) -> None:
        """The Chida et al. check over every recorded product, then the zero tests.

        Call after the last product and before opening anything that depends on one.  It
        ends the epoch: r is opened, so later products use a fresh r (values authenticated
        before must be authenticated again, :meth:`authenticate`)."""
        if self._pairs:
            # every product must be complete (all re-sharing messages received) BEFORE the
            # coin is drawn: MPyC runs asynchronously, and a cheater must not choose its
            # error after seeing the coefficients
            done = [
                (await self._shares_of([z]), await self._shares_of([rz])) for z, rz in self._pairs
            ]
            seed = await self.coin("verify")
            u = w = 0
            for j, (zs, rzs) in enumerate(done):
                alpha = coefficients(seed, f"pair{j}", len(zs))
                w += int(np.dot(alpha, np.asarray(zs, dtype=object)))
                u += int(np.dot(alpha, np.asarray(rzs, dtype=object)))
            (r,) = await self.open_shares(await self._shares_of([self.r]), "r")
            diff = self.sectype(self.field((u - r * w) % self.p))
            masked = self.mpc._random(self.sectype) * diff
            (tv,) = await self.open_shares(await self._shares_of([masked]), "mult-check")
            if tv != 0:
                raise CheatingDetected(
                    "multiplication", "a party deviated in a degree reduction (u != r*w)"
                )
        self._pairs, self._r, self.epoch = [], None, self.epoch + 1
        if self._zeros:
            zeros, self._zeros = self._zeros, []
            got = await self.open_shares(
                await self._shares_of([v for *_, v in zeros]), "zero-tests"
            )
            for (check, owner, detail, _), val in zip(zeros, got, strict=True):
                if val != 0:
                    raise CheatingDetected(check, detail, owner)

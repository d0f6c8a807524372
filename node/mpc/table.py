"""What a program's kernel computes with: the owners' table as secure arrays, plus products and
openings that are checked against a malicious minority when the session runs with checks.

A kernel (``async def run(s: TableSession, args) -> dict``) never touches the Guard: it asks
for column sums (:meth:`TableSession.sums`, local), sums of squares (:meth:`sumsq`), the Gram
matrix X^T X (:meth:`gram`) and opens values with :meth:`open`.  With checks
(:mod:`dnode.node.mpc.malicious`), every product here is authenticated (Chida et al.), the first
opening runs every owner's influence check (:mod:`dnode.node.mpc.influence`) and the
multiplication check first, and every opening detects a wrong share from any minority.
Without checks (the semi-honest baseline) the same calls are MPyC as is.

Secure comparisons go through :meth:`less_than_zero` and :meth:`extreme` (a kernel must not
call MPyC's comparison protocols itself): without checks they are MPyC's ``<`` and
``np_amin``/``np_amax`` on a narrower secure type; with checks every random bit, product and
opening of a comparison is checked (:mod:`dnode.node.mpc.compare`), and a compared value
outside its declared range aborts the session.

Import only inside a running party (no mpyc import at module level).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dnode.node.mpc import influence
from dnode.node.mpc.sharing import to_signed

__all__ = ["BATCH_ROWS", "TableSession"]

#: rows a batched kernel (:meth:`TableSession.batches`) holds products of at once: with checks
#: every product of a batch is verified (a Guard epoch) before the next batch starts, so a
#: party's memory is bounded by one batch, not by the table
BATCH_ROWS = 25_000


class TableSession:
    """One session's table: ``blocks[k]`` is owner k's secure (rows_k, width) array."""

    def __init__(
        self,
        mpc: Any,
        secint: Any,
        blocks: list[Any],
        width: int,
        guard: Any = None,
        witness: influence.TableWitness | None = None,
        bits: list[Any] | None = None,
        seed: bytes = b"",
        private: bool = False,
    ) -> None:
        self.mpc, self.secint, self.width = mpc, secint, width
        self.blocks = blocks
        self.guard, self.witness, self.bits, self.seed = guard, witness, bits or [], seed
        self.rows_per_owner = [int(b.shape[0]) for b in blocks]
        self.rows = sum(self.rows_per_owner)
        self._x: Any = None  # the stacked table, built on first use (a batched kernel never)
        # the rows of the current batch (owner, first, end) and, per owner, how many of its
        # rows the checkpoints have covered (their influence sums accumulated)
        self._segments: list[tuple[int, int, int]] = []
        self._covered: dict[int, int] = {}
        self._acc_s2: dict[int, list[Any]] = {}  # owner -> sums of squares over checkpoints
        self._acc_gram: dict[int, Any] = {}  # owner -> X^T X over checkpoints
        self._auth: dict[int, Any] = {}  # owner -> Auth of its block (x, r*x)
        self._s2: dict[int, list[Any]] = {}  # owner -> per column Auth sum of squares
        self._gram: dict[int, Any] = {}  # owner -> Auth of its X^T X
        self._final = False
        # private result (node.mpc.delivery): ``open`` hands back this party's own shares of
        # the outputs, to be sealed to the requester; nothing is opened to the committee
        self.private = private
        self._cmp: Any = None

    @property
    def x(self) -> Any:
        """The whole table (rows, width): every owner's block stacked, in owner order."""
        if self._x is None:
            live = [b for b in self.blocks if b.shape[0]]
            if len(live) > 1:
                self._x = self.mpc.np_vstack(live)
            elif live:
                self._x = live[0]
            else:
                self._x = self.secint.array(np.zeros((0, self.width), dtype=object))
        return self._x

    @property
    def checked(self) -> bool:
        return self.guard is not None

    # ---------------------------------------------------------------- batches

    def batches(self, size: int = BATCH_ROWS) -> Iterator[Any]:
        """The table in batches of at most ``size`` rows (secure arrays (rows_b, width)), one
        owner's rows per batch (the whole table as one batch when it has at most ``size``
        rows). After computing on a batch a kernel calls :meth:`checkpoint` before asking for
        the next one: with checks, that verifies every product of the batch (a Guard epoch),
        so a party holds one batch's products at a time; results carried over from a batch
        (sums, extremes) are plain secure values and enter later products re-authenticated.
        The public order of batches depends on the row counts only."""
        if size < 1:
            raise ValueError("batch size must be positive")
        live = self._live()
        if self.rows <= size:
            self._segments = [(k, 0, self.rows_per_owner[k]) for k in live]
            yield self.x
        else:
            for k in live:
                n = self.rows_per_owner[k]
                for lo in range(0, n, size):
                    self._segments = [(k, lo, min(n, lo + size))]
                    yield self.blocks[k][lo : lo + size]
        self._segments = []

    def batch_blocks(self) -> list[tuple[int, Any]]:
        """The current batch's rows per owner: ``(owner, secure (rows, width) array)``."""
        return [(k, self.blocks[k][lo:hi]) for k, lo, hi in self._segments]

    async def checkpoint(self) -> None:
        """End of a batch (:meth:`batches`): with checks, the batch's share of every owner's
        influence sums (sums of squares / Gram matrix, level >= 1) is computed and every
        pending product and zero test is verified (Guard.verify: a new epoch); a deviation in
        this batch aborts here, before the next batch starts. Without checks: nothing."""
        if not self.checked:
            return
        w = self.witness
        if w is not None and w.level >= 1:
            from dnode.node.mpc.malicious import Auth

            for k, lo, hi in self._segments:
                if self._covered.get(k, 0) != lo:
                    raise RuntimeError(f"checkpoint: owner {k}'s rows out of order at {lo}")
                blk = self.blocks[k][lo:hi]
                a = self.guard.authenticate(blk)
                if w.level >= 2:
                    g = self.guard.inner(Auth(a.x.T, a.rx.T, a.epoch), blk).x
                    prev = self._acc_gram.get(k)
                    self._acc_gram[k] = g if prev is None else prev + g
                else:
                    s2 = [
                        self.guard.inner(Auth(a.x[:, c], a.rx[:, c], a.epoch), blk[:, c]).x
                        for c in range(self.width)
                    ]
                    prev2 = self._acc_s2.get(k)
                    self._acc_s2[k] = (
                        s2 if prev2 is None else [u + v for u, v in zip(prev2, s2, strict=True)]
                    )
                self._covered[k] = hi
        await self.guard.verify()

    # ---------------------------------------------------------------- comparisons

    def _narrow(self, d: Any, bits: int) -> Any:
        """The same shares as a secure type of ``bits`` bits (cheaper MPyC comparisons)."""
        if type(d).sectype is not self.secint:
            return d
        cmp = self.mpc.SecInt(bits, p=self.secint.field.modulus)
        return cmp.array(d.share, d.shape)

    def _widen(self, d: Any) -> Any:
        """The same shares as the session's secure type (results of a narrow comparison can
        then meet the table's values in products)."""
        if type(d).sectype is self.secint:
            return d
        return self.secint.array(d.share, d.shape)

    def _comparator(self) -> Any:
        if self._cmp is None:
            from dnode.node.mpc.compare import Comparator

            self._cmp = Comparator(self.guard)
        return self._cmp

    async def less_than_zero(self, d: Any, bits: int) -> Any:
        """``[d < 0]`` elementwise (a secure 0/1 array of d's shape) for |d| < 2**(bits-1).

        With checks, a d out of that range aborts the session (docs/protocol.md)."""
        if not self.checked:
            return self._widen(self._narrow(d, bits) < 0)
        lt = await self._comparator().less_than_zero(d.reshape(-1), bits)
        return lt.x.reshape(d.shape)

    async def ranked(self, x: Any, lo: list[int], width: int, bits: int) -> Any:
        """Prepare ``x`` (n, w) for :meth:`below`: with checks, the bits of every x - lo (one
        checked decomposition per value, ``width`` bits: x in [lo, lo + 2**width) or the
        session aborts); without, the values as a ``bits``-bit secure type."""
        if not self.checked:
            return (self._narrow(x, bits), np.array(lo, dtype=object))
        shifted = x - np.array([lo] * x.shape[0], dtype=object)
        vbits = await self._comparator().decompose(shifted.reshape(-1), width)
        return (vbits, np.array(lo, dtype=object), x.shape)

    async def below(self, h: Any, t: Any) -> Any:
        """``[x < t]`` as a secure 0/1 array (R, n, w) for public thresholds t (R, w), with
        lo <= t <= lo + 2**width; ``h`` from :meth:`ranked`."""
        t = np.asarray(t, dtype=object)
        if not self.checked:
            xs, _ = h
            n, w = xs.shape
            return xs.reshape(1, n, w) - t.reshape(t.shape[0], 1, w).copy() < 0
        vbits, lo, (n, w) = h
        r = t.shape[0]
        rel = np.broadcast_to((t - lo).reshape(r, 1, w), (r, n, w)).reshape(-1)
        tiled = np.tile(vbits, (1, r))  # (width, r*n*w): the same bits for every rank
        lt = await self._comparator().below(tiled, rel)
        return lt.x.reshape(r, n, w)

    async def check_range(self, v: Any, lo: int, hi: int, owner: int, what: str) -> None:
        """With checks: every value of the secure array ``v`` lies in [lo, hi], or the session
        aborts now naming data owner ``owner`` (a checked bit decomposition of v - lo and of
        hi - v, each in [0, 2**l) with 2**l > hi - lo; then a verify).  For values an owner
        shares whose range must hold before anything else is computed (e.g. a secret model).
        Without checks (the semi-honest baseline: owners are honest too) nothing is done."""
        if not self.checked:
            return
        flat = v.reshape(-1)
        both = self.mpc.np_concatenate((flat - lo, hi - flat))
        why = f"{what} lies outside its declared range [{lo}, {hi}]"
        await self._comparator().decompose(both, max(1, (hi - lo).bit_length()), owner, why)
        await self.guard.verify()

    async def extreme(self, x: Any, which: str, bits: int) -> Any:
        """Column minimum or maximum of ``x`` (n, w) by a tournament of n - 1 comparisons."""
        if not self.checked:
            xs = self._narrow(x, bits)
            return self.mpc.np_amin(xs, axis=0) if which == "min" else self.mpc.np_amax(xs, axis=0)
        cmp, mpc = self._comparator(), self.mpc
        a = x
        while (n := a.shape[0]) > 1:
            n0, h = n % 2, (n + 1) // 2
            a1, a2 = a[n0:h], a[h:]
            step = a2 - a1
            lt = await cmp.less_than_zero((step if which == "min" else a1 - a2).reshape(-1), bits)
            m = a1 + self.guard.mul(lt, step.reshape(-1)).x.reshape(a1.shape)
            a = mpc.np_concatenate((a[:1], m), axis=0) if n0 else m
        return a[0]

    # ---------------------------------------------------------------- products

    async def where_negative(self, d: Any, a: Any, b: Any, bits: int) -> Any:
        """``b`` where ``d < 0``, else ``a`` (a secure select), for |d| < 2**(bits-1).

        ``a``/``b`` have d's shape, or d's shape plus one trailing axis (a row selected whole,
        e.g. a value with its one-hot index).  One comparison per element of ``d`` and one
        product per element of ``a``; with checks both are checked (a d out of range aborts)."""
        diff = b - a
        shape = (*d.shape, 1) if len(diff.shape) > len(d.shape) else d.shape
        if not self.checked:
            lt = self._narrow(d, bits) < 0
            lt = self.secint.array(lt.share, lt.shape)  # back to the session's secure type
            return a + lt.reshape(shape) * diff
        from dnode.node.mpc.malicious import Auth

        lt = await self._comparator().less_than_zero(d.reshape(-1), bits)
        bit = Auth(lt.x.reshape(shape), lt.rx.reshape(shape), lt.epoch)
        return a + self.guard.mul(bit, diff).x

    async def negative(self, d: Any, bits: int) -> Any:
        """``[d < 0]`` as a secure 0/1 array of the session's type (usable in products), for
        |d| < 2**(bits-1); with checks, checked (a d out of range aborts)."""
        if not self.checked:
            lt = self._narrow(d, bits) < 0
            return self.secint.array(lt.share, lt.shape)
        lt = await self._comparator().less_than_zero(d.reshape(-1), bits)
        return lt.x.reshape(d.shape)

    def mul(self, a: Any, b: Any) -> Any:
        """Elementwise ``a * b`` of secure arrays (broadcasting); with checks, authenticated
        (a Chida et al. pair checked before the next opening)."""
        if not self.checked:
            return a * b
        return self.guard.mul(self.guard.authenticate(a), b).x

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` of secure matrices (one degree reduction per entry); checked likewise."""
        if not self.checked:
            return a @ b
        return self.guard.inner(self.guard.authenticate(a), b).x

    async def check_onehot(
        self, groups: list[tuple[int, int]], blocks: list[tuple[int, Any]] | None = None
    ) -> None:
        """With checks: every owner's one-hot encoded categorical columns (``(offset, k)``) hold
        0/1 entries with exactly one 1 per row, or the session aborts naming the owner (a
        sharing of 2 or -1 would count a row twice, or subtract it, from a group). One product
        per entry and one zero test per owner, tested with the multiplication check.
        ``blocks``: only these ``(owner, rows)`` (a batch, :meth:`batch_blocks`); default:
        every owner's whole block."""
        if not self.checked or not groups:
            return
        from dnode.node.mpc.malicious import coefficients

        seed = await self.guard.coin("one-hot")
        todo = blocks if blocks is not None else [(k, self.blocks[k]) for k in self._live()]
        for k, blk in todo:
            parts = [blk[:, o : o + w] for o, w in groups]
            h = parts[0] if len(parts) == 1 else self.mpc.np_hstack(parts)
            sq = self.mul(h, h - 1).reshape(-1)  # 0 for every entry in {0, 1}
            ones = self.mpc.np_stack([p.sum(axis=1) - 1 for p in parts]).reshape(-1)
            r = coefficients(seed, f"one-hot/{k}", sq.shape[0] + ones.shape[0])
            z = (sq * r[: sq.shape[0]]).sum() + (ones * r[sq.shape[0] :]).sum()
            self.guard.must_be_zero(z, "one-hot", k, "a categorical value is not one-hot")

    def cross(self, a: Any, b: Any) -> Any:
        """``a^T b`` of two secure arrays (n, p) and (n, q): one checked inner product per
        entry of the (p, q) result (e.g. per-cluster sums from a secret one-hot matrix)."""
        if not self.checked:
            return a.T @ b
        return self.guard.inner(self.guard.authenticate(a.T), b).x

    # ---------------------------------------------------------------- computations

    def sums(self) -> Any:
        """Column sums (w,): local, an addition of shares needs no communication."""
        return self.x.sum(axis=0)

    def _owner_auth(self, k: int) -> Any:
        if k not in self._auth:
            self._auth[k] = self.guard.authenticate(self.blocks[k])
        return self._auth[k]

    def _owner_s2(self, k: int) -> list[Any]:
        if k not in self._s2:
            from dnode.node.mpc.malicious import Auth

            if self._complete(k) and k in self._acc_s2:  # verified batch by batch: only .x
                self._s2[k] = [Auth(v, None, -1) for v in self._acc_s2[k]]
            elif self._complete(k) and k in self._acc_gram:
                g = self._acc_gram[k]
                self._s2[k] = [Auth(g[c, c], None, -1) for c in range(self.width)]
            elif k in self._gram:
                g = self._gram[k]
                self._s2[k] = [Auth(g.x[c, c], g.rx[c, c], g.epoch) for c in range(self.width)]
            else:
                a, blk = self._owner_auth(k), self.blocks[k]
                self._s2[k] = [
                    self.guard.inner(Auth(a.x[:, c], a.rx[:, c], a.epoch), blk[:, c])
                    for c in range(self.width)
                ]
        return self._s2[k]

    def _complete(self, k: int) -> bool:
        """Every row of owner k went through a checkpoint (its influence sums accumulated)."""
        return self._covered.get(k, 0) == self.rows_per_owner[k]

    def _owner_gram(self, k: int) -> Any:
        if k not in self._gram:
            from dnode.node.mpc.malicious import Auth

            if self._complete(k) and k in self._acc_gram:
                self._gram[k] = Auth(self._acc_gram[k], None, -1)
                return self._gram[k]
            a = self._owner_auth(k)
            self._gram[k] = self.guard.inner(Auth(a.x.T, a.rx.T, a.epoch), self.blocks[k])
        return self._gram[k]

    def _live(self) -> list[int]:
        return [k for k, n in enumerate(self.rows_per_owner) if n]

    def sumsq(self) -> Any:
        """Per column sum of squares (w,): one degree reduction per column and owner."""
        if not self.checked:
            return (self.x * self.x).sum(axis=0)
        cols = [None] * self.width
        for k in self._live():
            for c, z in enumerate(self._owner_s2(k)):
                cols[c] = z.x if cols[c] is None else cols[c] + z.x
        return self.mpc.np_fromlist(cols)

    def gram(self) -> Any:
        """X^T X (w, w): one secure matrix product per owner."""
        if not self.checked:
            return self.x.T @ self.x
        total = None
        for k in self._live():
            g = self._owner_gram(k).x
            total = g if total is None else total + g
        return total

    # ---------------------------------------------------------------- openings

    async def _finish_checks(self) -> None:
        """Every owner's influence check, then the multiplication check (Guard.verify)."""
        from dnode.node.mpc.malicious import CheatingDetected

        w = self.witness
        if w is not None:
            p = self.secint.field.modulus
            for k in self._live():
                n = self.rows_per_owner[k]
                if not influence.table_fits(n, w, p):  # the checks could wrap mod p
                    raise CheatingDetected(
                        "influence", f"{n} rows at the declared bounds exceed what the field "
                        "can check", k)  # fmt: skip
                s1v = self.blocks[k].sum(axis=0)
                # linear checks (federated statistics) take the sums as one array
                s1 = s1v if w.checks else [s1v[c] for c in range(self.width)]
                s2 = cross = None
                if w.level >= 2:
                    g = self._owner_gram(k)
                    cross = {
                        (a, b): g.x[a, b]
                        for a in range(self.width)
                        for b in range(a + 1, self.width)
                    }
                if w.level >= 1:
                    s2 = self._owner_s2(k)
                await influence.add_table_checks(
                    self.guard, k, n, w, s1, s2, cross, self.bits[k], self.seed
                )
        await self.guard.verify()

    async def open(self, value: Any, label: str = "output") -> list[int]:
        """Open a secure scalar or array (flattened, signed ints); with checks: after every
        pending check, with error detection (all m shares on one degree-t polynomial).
        Private result: after the same checks, this party's own shares instead (opened only
        by the requester; a kernel of a private-capable program opens only its outputs)."""
        if self.checked:
            if not self._final:
                self._final = True
                await self._finish_checks()
            elif self.guard.pending:  # products (comparisons) since the last check
                await self.guard.verify()
        if self.private:
            return await self._own_shares(value)
        if not self.checked:
            got = await self.mpc.output(value)
            return [int(v) for v in np.asarray(got).ravel().tolist()]
        p = self.secint.field.modulus
        return [to_signed(v, p) for v in await self.guard.open([value], label)]

    async def open_public(self, value: Any, label: str) -> list[int]:
        """Open to the committee even in a private session, as field ints in [0, p): only for
        values the spec declares every seat sees (e.g. an owner's blinded points); with checks
        every pending product is verified first and a wrong share is detected."""
        p = self.secint.field.modulus
        if not self.checked:
            got = await self.mpc.output(value)
            return [int(v) % p for v in np.asarray(got).ravel().tolist()]
        if self.guard.pending:
            await self.guard.verify()
        return [int(v) for v in await self.guard.open([value], label)]

    async def product(self, x: Any, y: Any) -> Any:
        """x * y elementwise; with checks authenticated and verified before it is returned."""
        if not self.checked:
            return x * y
        z = self.guard.mul(self.guard.authenticate(x), y)
        await self.guard.verify()
        return z.x

    def random(self) -> Any:
        """A uniformly random secret field element no party knows (MPyC's PRSS)."""
        return self.mpc._random(self.secint)

    async def shares_of(self, value: Any) -> list[int]:
        """This party's own shares of a secure value (local; they reveal nothing alone)."""
        return await self._own_shares(value)

    async def exchange(self, payload: bytes, label: str) -> list[bytes]:
        """Send ``payload`` to every party and receive theirs (seat order, ours included):
        raw bytes through the hardened transport, for data the spec declares every seat sees."""
        got = await self.mpc.transfer(bytes(payload))
        if not isinstance(got, list) or not all(isinstance(b, bytes) for b in got):
            from dnode.node.mpc.malicious import CheatingDetected

            raise CheatingDetected("exchange", f"a party sent something other than bytes ({label})")
        return got

    async def reveal(self, value: Any, label: str) -> list[int]:
        """Open to the committee even when the result is private: for the intermediate values
        a spec declares as revealed to the committee (e.g. an iteration's gradient)."""
        private, self.private = self.private, False
        try:
            return await self.open(value, label)
        finally:
            self.private = private

    async def _own_shares(self, value: Any) -> list[int]:
        """This party's shares of a secure scalar or array, flattened (field elements)."""
        g = await self.mpc.gather(value)
        if hasattr(g, "shape"):
            return [int(a) for a in np.asarray(g.value, dtype=object).reshape(-1)]
        return [int(g.value)]

    async def finish(self) -> None:
        """Run the checks even if the kernel opened nothing (a clean abort beats silence)."""
        if self.checked and not self._final:
            self._final = True
            await self._finish_checks()

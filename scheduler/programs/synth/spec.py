"""``synth.mst``: the noisy marginals of MST (McKenna, Miklau, Sheldon 2021, "Winning the NIST
Contest: A scalable and general approach to differentially private synthetic data", JPC 11(3))
measured inside the MPC over owners' tables; the requester fits the graphical model and samples
rows (:mod:`.model`, private-pgm's ``mbi``) as post-processing.

Two ways owners hold the data (``layout.mode``):

* ``vertical``: two owners hold different columns about the same entities, joined ON their id
  column inside the MPC exactly as ``query.join`` joins them (``scheduler.programs.psi``: each
  owner blinds its ids, the committee turns them into tokens under a key it holds in shares and
  pairs the rows; ids only partly overlap). An id an owner holds on several rows is left out of
  the join: then one changed row adds or removes at most two joined rows, the bound every
  sensitivity below assumes.
* ``horizontal``: 2+ owners hold the same columns about different entities (UNION ALL).

Binning is data-independent: a numeric column is cut into ``bins`` equal-width intervals of
its *declared* range (the public schema), a categorical one keeps its declared domain; owners
encode every cell as the one-hot indicator of its bin (proved one-hot inside the MPC). Bins
are never chosen from the data, so the binning itself leaks nothing.

Inside the MPC (kernel ``node.engines.mpc.kernels.synth``), pure ε-DP (or ρ-zCDP) for one row
changed (the platform's neighbouring relation, :mod:`dnode.scheduler.dp`; the same bounds hold
when an entity is added to or removed from the join), the budget split equally over the
releases as MST splits it (a third each; halves with two columns: nothing to select), scales
and composition by OpenDP (:func:`dnode.scheduler.dp.plan`):

1. every 1-way marginal + discrete Laplace noise (L1 sensitivity 2d, d columns); opened to
   the committee (it needs them for step 2) and delivered to the requester;
2. per column pair, the score ``sum |X_ab - Xhat_ab|`` (Xhat_ab the independent model from the
   noisy 1-way marginals, public), + discrete Laplace noise (L1 sensitivity 2C, C pairs: each
   score moves by at most 2); opened; the maximum spanning tree of the noisy scores is
   post-processing, computed identically by every party (Kruskal, ties by index). Releasing
   the noisy score vector is the Laplace mechanism (report-noisy-max's selection is then
   post-processing); MST's exponential mechanism per edge would need a secure argmax;
3. the 2-way marginal of every tree edge + discrete Laplace noise (L1 sensitivity 2(d - 1)).

Only noisy values and the tree leave the MPC. The noise is drawn jointly by the committee
(``dnode.scheduler.dp`` / the dp-noise sampler): no seat, nor any minority coalition, knows
it. The result is sealed to the requester (it is larger than the on-chain result).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Plan, Release
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.psi import tokens
from dnode.scheduler.programs.psi.spec import FIELD_BITS, task_domain
from dnode.scheduler.programs.registry import Arg, Output, ProgramSpec, register

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.schema import Column
    from dnode.scheduler.programs.tables import Table

KERNEL = "dnode.node.engines.mpc.kernels.synth"
MODES = ("vertical", "horizontal")
MAX_COLUMNS = 8  # value columns (the 2-way products grow with the square of the cells)
MAX_BINS = 32
MAX_PAIR_CELLS = 8192  # sum over all column pairs of their 2-way cells (one product each)
HORIZONTAL_BITS = 64


#: sensitivity of one marginal (one row changed: -1 in one cell, +1 in another); the same
#: bound covers an entity added to or removed from the join (one cell moves by 1)
MARGINAL_L1 = 2


def releases(sizes: Sequence[int]) -> list[Release]:
    """The three releases of MST (two with two columns: nothing to select), with their L1
    sensitivities for one row changed: every 1-way marginal (2 each), every pair score
    (|X - Xhat| summed moves by at most 2), the d - 1 tree marginals (2 each, zero-padded
    to the widest pair: the padding is constant)."""
    d = len(sizes)
    pl = pairs(d)
    widest = max(sizes[i] * sizes[j] for i, j in pl)
    out = [Release("one", sum(sizes), MARGINAL_L1 * d)]
    if d > 2:
        out.append(Release("scores", len(pl), MARGINAL_L1 * len(pl)))
    out.append(Release("two", (d - 1) * widest, MARGINAL_L1 * (d - 1)))
    return out


@dataclass(frozen=True)
class Binned:
    """One column's public bins: ``k`` bins; numeric: equal widths over the declared range."""

    column: Column
    k: int

    def bin_of(self, v: int) -> int:
        c = self.column
        if c.type == "cat":
            return int(v)
        span = c.enc_hi - c.enc_lo + 1
        return min(self.k - 1, (int(v) - c.enc_lo) * self.k // span)

    def edges(self) -> list[tuple[int, int]]:
        """Per bin the encoded [lo, hi] it covers (numeric columns)."""
        c = self.column
        span = c.enc_hi - c.enc_lo + 1
        out = []
        for b in range(self.k):
            lo = c.enc_lo + -(-b * span // self.k)
            hi = c.enc_lo + -(-(b + 1) * span // self.k) - 1
            out.append((lo, hi))
        return out

    def labels(self) -> list[str]:
        c = self.column
        if c.type == "cat":
            return list(c.domain)
        return [f"[{c.decode(lo)},{c.decode(hi)}]" for lo, hi in self.edges()]

    def midpoints(self) -> list[float]:
        c = self.column
        if c.type == "cat":
            return [float(i) for i in range(self.k)]
        return [float(c.decode(lo) + c.decode(hi)) / 2 for lo, hi in self.edges()]


def mst_tree(d: int, scores: Sequence[int]) -> list[int]:
    """Indexes (into :func:`pairs`) of the maximum spanning tree of the noisy scores: Kruskal,
    heaviest first, ties broken by pair index (every party computes the same tree)."""
    pl = pairs(d)
    order = sorted(range(len(pl)), key=lambda i: (-int(scores[i]), i))
    parent = list(range(d))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    out: list[int] = []
    for i in order:
        a, b = (find(x) for x in pl[i])
        if a != b:
            parent[a] = b
            out.append(i)
            if len(out) == d - 1:
                break
    return sorted(out)


def pairs(d: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(d), 2))


def independent_estimate(one: Sequence[Sequence[int]]) -> tuple[int, list[list[list[int]]]]:
    """(N, per pair the integer cells of N * p_a (x) p_b): the model the 1-way measurements
    alone give (negative counts clipped to 0, exact rationals, rounded once: every party gets
    the same integers). ``one``: per column its noisy counts."""
    totals = [sum(ys) for ys in one]
    n = max(1, round(Fraction(sum(totals), max(1, len(totals)))))
    probs: list[list[Fraction]] = []
    for ys in one:
        pos = [max(0, int(y)) for y in ys]
        s = sum(pos)
        probs.append([Fraction(p, s) for p in pos] if s else [Fraction(1, len(ys))] * len(ys))
    est = []
    for a, b in pairs(len(one)):
        est.append([[round(n * pa * pb) for pb in probs[b]] for pa in probs[a]])
    return n, est


class SynthMst(ProgramSpec):
    name = "synth.mst"
    family = "synth"
    capability = "mpc"
    kernel = KERNEL
    description = (
        "DP synthetic data (MST): noisy 1-way marginals and a privately chosen tree of 2-way "
        "marginals over owners' joined (on id) or stacked tables; the requester samples rows"
    )
    args = (
        Arg("layout", "json", 'how owners hold the columns: {"mode": "vertical", "tables": '
            '[[cols of owner 0], [cols of owner 1]]} (joined on the id) or {"mode": '
            '"horizontal"} (every owner all columns)', required=True),
        Arg("bins", "int", "equal-width bins over each numeric column's declared range",
            default=8),
    )  # fmt: skip
    input_types = ("id", "int", "fixed", "cat")
    min_columns = 2
    max_columns = 1 + MAX_COLUMNS
    reveals = (
        "to the requester only (sealed): noisy 1-way marginals, noisy pair scores, the chosen "
        "tree and its noisy 2-way marginals (ε-DP); to the committee: the noisy 1-way "
        "marginals and scores (same ε) and, joined on id, the match pattern and set sizes"
    )
    revealed_to = "the requester (sealed shares); the committee: the noisy values it needs"
    cost = "per row one product per 2-way cell; one secure comparison per 2-way cell"
    supports_rerun = False  # a re-execution would draw fresh noise: a second release
    dp = True  # --epsilon / --rho / --delta (registry.DP_ARGS); required (validate)

    # ---- the params ----------------------------------------------------------------------

    def mode(self, params: TaskView) -> str:
        lay = params.args.get("layout")
        if not isinstance(lay, dict) or lay.get("mode") not in MODES:
            raise InvalidTaskParams(f"{self.name}: layout.mode must be one of {list(MODES)}")
        return str(lay["mode"])

    def value_columns(self, params: TaskView) -> tuple[Column, ...]:
        return tuple(c for c in params.columns if c.type != "id")

    def tables(self, params: TaskView) -> list[list[str]]:
        """The value columns each owner holds (vertical: as declared; horizontal: all)."""
        names = [c.name for c in self.value_columns(params)]
        if self.mode(params) == "horizontal":
            return [names for _ in params.owners]
        t = params.args["layout"].get("tables")
        if not (
            isinstance(t, list)
            and len(t) == 2
            and all(isinstance(x, list) and all(isinstance(c, str) for c in x) for x in t)
        ):
            raise InvalidTaskParams(f"{self.name}: layout.tables must be two lists of columns")
        return [list(x) for x in t]

    def binned(self, params: TaskView) -> list[Binned]:
        k = int(params.args.get("bins", 8))
        out = []
        for c in self.value_columns(params):
            if c.type == "cat":
                out.append(Binned(c, len(c.domain)))
            else:
                out.append(Binned(c, max(1, min(k, c.enc_hi - c.enc_lo + 1))))
        return out

    def offsets(self, params: TaskView) -> list[int]:
        at, out = 0, []
        for b in self.binned(params):
            out.append(at)
            at += b.k
        return out

    def cells(self, params: TaskView) -> int:
        """One-hot width of a row: the 1-way cells."""
        return sum(b.k for b in self.binned(params))

    def dp_releases(self, params: TaskView) -> list[Release]:
        return releases([b.k for b in self.binned(params)])

    def plan(self, params: TaskView) -> Plan:
        """The DP plan (scheduler.dp, OpenDP): noise scales, coins, the composed guarantee;
        ε (or ρ) split equally over the releases: a third each, as MST splits it."""
        p = self.dp_plan(params)
        if p is None:
            raise InvalidTaskParams(f"{self.name} needs --epsilon (or --rho)")
        return p

    def guarantee(self, params: TaskView) -> dict[str, Any]:
        """What the result states: the plan's guarantee, and what the committee sees."""
        g = self.plan(params).guarantee()
        g["program"] = self.name
        g["neighbours"] = (
            "one row changed at one owner (the joined table then gains or loses at most two "
            "rows, or has one changed); also one person added or removed"
        )
        g["committee_sees"] = (
            "the noisy 1-way marginals and pair scores; joined on id: the match pattern of "
            "tokens and both set sizes (hence the join size), not differentially private"
        )
        return g

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        mode = self.mode(params)
        vals = self.value_columns(params)
        ids = [c for c in params.columns if c.type == "id"]
        if not 2 <= len(vals) <= MAX_COLUMNS:
            raise InvalidTaskParams(f"{self.name} takes 2..{MAX_COLUMNS} value columns")
        self.plan(params)
        k = int(params.args.get("bins", 8))
        if not 2 <= k <= MAX_BINS:
            raise InvalidTaskParams(f"{self.name}: bins must be in 2..{MAX_BINS}")
        n = len(params.owners)
        if mode == "vertical":
            if len(ids) != 1:
                raise InvalidTaskParams(f"{self.name}: a vertical layout joins on one id column")
            if n != 2:
                raise InvalidTaskParams(f"{self.name}: a vertical layout takes 2 data owners")
            held = [c for t in self.tables(params) for c in t]
            if sorted(held) != sorted(c.name for c in vals) or not all(self.tables(params)):
                raise InvalidTaskParams(
                    f"{self.name}: layout.tables must split the value columns "
                    f"{[c.name for c in vals]} between the two owners, each holding one or more"
                )
        elif n < 2:
            raise InvalidTaskParams(f"{self.name}: a horizontal layout takes 2+ data owners")
        b = self.binned(params)
        two = sum(b[i].k * b[j].k for i, j in pairs(len(b)))
        if two > MAX_PAIR_CELLS:
            raise InvalidTaskParams(
                f"{self.name}: {two} 2-way cells over all column pairs (at most "
                f"{MAX_PAIR_CELLS}): fewer bins or columns"
            )
        if not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name} delivers only to the requester: post it with a private result "
                "(--private-result)"
            )

    def check_output_size(self, params: TaskView) -> None:
        return None  # private only (validate): the sealed bundle has no on-chain size limit

    # ---- owner side ----------------------------------------------------------------------

    def owner_columns(self, params: TaskView, owner: int | None) -> tuple[Column, ...]:
        if owner is None or self.mode(params) == "horizontal":
            if self.mode(params) == "horizontal":
                return self.value_columns(params)
            return tuple(params.columns)
        mine = set(self.tables(params)[owner])
        return tuple(c for c in params.columns if c.type == "id" or c.name in mine)

    def _onehot(self, params: TaskView, table: Table, held: set[str]) -> list[list[int]]:
        """Per row: the one-hot bins of the columns in ``held`` (0 in the others' slots)."""
        b = self.binned(params)
        off = self.offsets(params)
        names = [c.name for c in table.columns]
        w = self.cells(params)
        rows: list[list[int]] = [[0] * w for _ in range(table.rows)]
        for j, (bc, o) in enumerate(zip(b, off, strict=True)):
            if bc.column.name not in held:
                continue
            col = table.data[names.index(bc.column.name)]
            for i, v in enumerate(col):
                rows[i][o + bc.bin_of(int(v))] = 1
            del j
        return rows

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        names = {c.name for c in table.columns}
        held = {c.name for c in self.value_columns(params) if c.name in names}
        onehot = self._onehot(params, table, held)
        if self.mode(params) == "horizontal":
            return [v for r in onehot for v in r]
        # vertical: the PSI layout: [rho, 0, 0...] then per row [point hi, point lo, one-hot]
        ident = next(c for c in params.columns if c.type == "id")
        ids = table.data[[c.name for c in table.columns].index(ident.name)]
        r = tokens.new_blinding()
        points = tokens.blind(task_domain(params), [str(i) for i in ids], r)
        w = self.width(params)
        out = [tokens.unblinding(r)] + [0] * (w - 1)
        for p, row in zip(points, onehot, strict=True):
            out += [*tokens.split(p), *row]
        return out

    def width(self, params: TaskView) -> int:
        return self.cells(params) + (2 if self.mode(params) == "vertical" else 0)

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        if self.mode(params) == "vertical":
            return None  # points and exponents: the kernel proves the one-hot rows itself
        return tuple([1] * self.cells(params)), 0

    # ---- engine side ---------------------------------------------------------------------

    def field_prime(self, params: TaskView) -> int | None:
        return tokens.ORDER if self.mode(params) == "vertical" else None

    def cmp_bits(self, params: TaskView) -> int:
        """Bits of the comparisons |X - Xhat| needs: X in [0, max_rows], Xhat clamped to
        [0, 2 max_rows] by the kernel."""
        return (4 * params.max_rows + 4).bit_length() + 2

    def field_bits(self, params: TaskView) -> int:
        if self.mode(params) == "vertical":
            return FIELD_BITS
        need = (4 * params.max_rows * max(1, len(pairs(len(self.binned(params)))))).bit_length()
        return max(HORIZONTAL_BITS, need + self.plan(params).noise_bits + 2, self.cmp_bits(params))

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        b = self.binned(params)
        off = self.offsets(params)
        owner_groups = []
        names = [x.column.name for x in b]
        for t in self.tables(params):
            owner_groups.append([[off[names.index(c)], b[names.index(c)].k] for c in t])
        plan = self.plan(params)
        return {
            "mode": self.mode(params),
            "sizes": [x.k for x in b],
            "groups": owner_groups,  # per owner: (offset, bins) of the columns it holds
            "dp": plan.kernel_args(),
            "cmp_bits": self.cmp_bits(params),
            "max_rows": params.max_rows,
        }

    # ---- output --------------------------------------------------------------------------

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        b = self.binned(params)
        d = len(b)
        widest = max(b[i].k * b[j].k for i, j in pairs(d))
        return (self.cells(params) + len(pairs(d)) + (d - 1) + (d - 1) * widest,)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        """Flat: the noisy 1-way cells, the noisy pair scores, the tree (pair indexes), then
        per tree edge its noisy 2-way cells, zero-padded at the end to a public length (see
        :func:`unpack`). ``count``: the noisy total (never the exact join size)."""
        (total,) = self.out_shape(params)
        vals = [int(v) for k in ("one", "scores", "edges", "two") for v in revealed[k]]
        if len(vals) > total:
            raise InvalidTaskParams(f"{self.name}: the kernel returned {len(vals)} values")
        vals += [0] * (total - len(vals))
        sizes = [x.k for x in self.binned(params)]
        n_hat = max(0, round(Fraction(sum(vals[: sizes[0]]))))
        return Output(tuple(Fraction(v) for v in vals), n_hat, self.out_shape(params), ())


@dataclass(frozen=True)
class Measurements:
    """A synth.mst result, unpacked: what the requester fits a model to."""

    columns: tuple[Binned, ...]
    one: tuple[tuple[int, ...], ...]  # per column its noisy counts
    scores: tuple[int, ...]  # per pair (pairs(d) order) its noisy score ((): two columns)
    edges: tuple[tuple[int, int], ...]  # the tree: column index pairs
    two: tuple[tuple[tuple[int, ...], ...], ...]  # per edge its noisy (k_a, k_b) counts
    scales: dict[str, float]  # release name -> its discrete Laplace scale

    @property
    def names(self) -> list[str]:
        return [b.column.name for b in self.columns]

    @property
    def total(self) -> int:
        """The noisy number of rows (the mean of the 1-way totals)."""
        return max(1, round(sum(sum(y) for y in self.one) / max(1, len(self.one))))


def unpack(spec: SynthMst, params: TaskView, values: Sequence[Fraction | int]) -> Measurements:
    """The flat result (:meth:`SynthMst.finish`) back into its measurements."""
    b = spec.binned(params)
    d = len(b)
    v = [int(x) for x in values]
    at = 0
    one = []
    for x in b:
        one.append(tuple(v[at : at + x.k]))
        at += x.k
    pl = pairs(d)
    scores: tuple[int, ...] = ()
    scores = tuple(v[at : at + len(pl)])
    at += len(pl)
    idx = v[at : at + d - 1]
    at += d - 1
    if any(not 0 <= i < len(pl) for i in idx) or len(set(idx)) != len(idx):
        raise InvalidTaskParams(f"{spec.name}: the result names no tree of column pairs")
    edges = tuple(pl[i] for i in idx)
    two = []
    for i, j in edges:
        cells = v[at : at + b[i].k * b[j].k]
        two.append(tuple(tuple(cells[r * b[j].k : (r + 1) * b[j].k]) for r in range(b[i].k)))
        at += b[i].k * b[j].k
    scales = {n.release.name: n.scale for n in spec.plan(params).noises}
    if d == 2:
        scores = ()
    return Measurements(tuple(b), tuple(one), scores, edges, tuple(two), scales)


def laplace_std(scale: float) -> float:
    """Standard deviation of the discrete Laplace of this scale (close to sqrt(2) * scale)."""
    if scale <= 0:
        return 0.0
    q = math.exp(-1 / scale)
    return math.sqrt(2 * q) / (1 - q)


register(SynthMst())

"""Differential privacy: calibration, composition and the privacy cost of a task (no mpyc).

A DP task releases a few *releases* (:class:`Release`: a named vector of integers, e.g. the
column sums, with its L1 sensitivity in the encoded integer units the MPC computes in). The
committee adds discrete Laplace noise to each inside the MPC
(:mod:`dnode.node.engines.mpc.noise`) and opens only the noisy values. This module decides,
identically on the requester's machine and on every node:

* the noise scale of each release, from the task's ``epsilon`` (pure DP, split equally over
  the releases) or ``rho`` (zCDP, split equally), by OpenDP's own privacy maps
  (``make_laplace`` on integers is the discrete Laplace mechanism; ``binary_search_param``
  finds the scale) -- no hand-derived constant;
* the composed cost of all releases: OpenDP ``make_composition`` of the per-release
  measurements (sequential composition of pure DP; zCDP through ``make_pureDP_to_zCDP``);
* the finite-precision error of the in-MPC sampler and the delta that accounts for it.

Neighbouring datasets: one row *changed* (bounded DP). The number of rows is public in dnode
(every seat sees the shape of its shares), so add/remove-one-row DP is not claimed.

The in-MPC sampler (see :mod:`dnode.node.engines.mpc.noise`) draws a geometric variable
G (P(G = k) = (1 - q) q^k, q = exp(-1/scale)) from its binary digits, which are independent
Bernoulli variables with P(bit j = 1) = q^(2^j) / (1 + q^(2^j)); each such biased coin is
[U < c_j] for U uniform on b random bits and c_j = round(2^b p_j) (Champion, shelat, Ullman,
"Securely sampling biased coins with applications to differential privacy", CCS 2019, use
the same comparison of a uniform against a coin's binary expansion). The noise is
G1 - G2, the discrete Laplace distribution P(Z = z) proportional to q^|z|. Digits j with
c_j = 0 are dropped (the truncation). The sampled distribution is within total-variation
distance eta = sum_j |c_j / 2^b - p_j| + sum_{dropped j} p_j of the exact geometric, per
geometric; a mechanism within TV distance eta of an (eps, 0)-DP one is (eps, eta (1 + e^eps))-DP
(P[M'(x) in S] <= P[M(x) in S] + eta <= e^eps (P[M'(x') in S] + eta) + eta), so the result
states delta = sum over noise values of 2 eta (1 + e^eps_release). The precision ``b`` is the
smallest that keeps delta at most the task's ``delta`` (default :data:`DEFAULT_DELTA`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

from dnode.scheduler.errors import InvalidTaskParams

#: the library that does the mathematics (pinned in pyproject.toml and requirements.lock)
OPENDP = "opendp"
DEFAULT_DELTA = Decimal("1e-9")  # finite-precision delta a task accepts unless it says more
MIN_BITS, MAX_BITS = 24, 120  # precision of each biased coin (random bits per coin)
MAX_EPSILON = Decimal(100)
MAX_RHO = Decimal(1000)
MICRO = 10**6  # on-chain budgets are in millionths (contracts/vyper/datasets.vy)
KIND_EPSILON, KIND_RHO = 1, 2  # datasets.vy budget kinds
INT = "i64"  # OpenDP's integer type of the releases (sensitivities must fit)
MAX_SENSITIVITY = (1 << 62) - 1
MECHANISM = "discrete Laplace, sampled inside the MPC (geometric digits from joint random bits)"
#: the task arguments every DP-capable program takes (registry.DP_ARGS declares them)
DP_ARG_NAMES = ("epsilon", "rho", "delta")


@dataclass(frozen=True)
class Release:
    """One noisy release: ``size`` integers whose L1 distance between neighbouring datasets
    (one row changed) is at most ``sensitivity`` (encoded integer units)."""

    name: str
    size: int
    sensitivity: int


@dataclass(frozen=True)
class Noise:
    """How one release is noised: its discrete Laplace scale, the coin thresholds of the
    in-MPC geometric sampler (``thresholds[j]`` for binary digit j, out of 2**bits), the
    pure epsilon it costs alone, and its finite-precision delta."""

    release: Release
    scale: float
    thresholds: tuple[int, ...]
    epsilon: float
    delta: float

    @property
    def digits(self) -> int:
        return len(self.thresholds)


@dataclass(frozen=True)
class Plan:
    """A task's DP plan: every release's noise, the precision, and the composed guarantee."""

    noises: tuple[Noise, ...]
    bits: int  # random bits per biased coin
    epsilon: float  # composed pure epsilon (sequential composition, OpenDP)
    rho: float  # composed zCDP rho (OpenDP; pure eps-DP is eps^2/2-zCDP)
    delta: float  # finite-precision delta (sum over releases)
    target: dict[str, str]  # what the requester asked for (epsilon or rho, delta)

    def noise(self, name: str) -> Noise:
        for n in self.noises:
            if n.release.name == name:
                return n
        raise KeyError(name)

    @property
    def noise_bits(self) -> int:
        """Bit length of the largest noise magnitude (|Z| < 2**digits)."""
        return max((n.digits for n in self.noises), default=0) + 1

    def kernel_args(self) -> dict[str, Any]:
        """What :func:`dnode.node.engines.mpc.noise.sample` needs (JSON, same on every seat)."""
        return {
            "bits": self.bits,
            "releases": [
                {"name": n.release.name, "size": n.release.size, "thresholds": list(n.thresholds)}
                for n in self.noises
            ],
        }

    def guarantee(self) -> dict[str, Any]:
        """The guarantee a result states (JSON)."""
        return {
            "mechanism": MECHANISM,
            "neighbours": "one row changed (the row count is public)",
            "epsilon": _fmt(self.epsilon),
            "delta": _fmt(self.delta),
            "rho": _fmt(self.rho),
            # the exact mechanism is pure (epsilon)-DP and rho-zCDP; the finite-precision
            # sampler is within total variation of it, which ``delta`` accounts for
            "statement": f"({_fmt(self.epsilon)}, {_fmt(self.delta)})-DP; "
            f"{_fmt(self.delta)}-approximate {_fmt(self.rho)}-zCDP",
            "asked": dict(self.target),
            "releases": [
                {
                    "name": n.release.name,
                    "size": n.release.size,
                    "sensitivity_l1": n.release.sensitivity,
                    "scale": _fmt(n.scale),
                    "epsilon": _fmt(n.epsilon),
                }
                for n in self.noises
            ],
            "library": f"{OPENDP} {opendp_version()}",
        }

    def cost(self, kind: int) -> int:
        """Composed cost in a dataset budget's units (datasets.vy: kind 1 micro-epsilon,
        kind 2 micro-rho), rounded up: what posting must charge at least."""
        if kind == KIND_EPSILON:
            return _micro_up(self.epsilon)
        if kind == KIND_RHO:
            return _micro_up(self.rho)
        raise InvalidTaskParams(f"unknown privacy budget kind {kind}")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _micro_up(x: float) -> int:
    # never below the composed cost: round up to the micro-unit (the CLI charges it, nodes
    # compare with the same function)
    return max(1, math.ceil(Decimal(repr(x)) * MICRO))


def opendp_version() -> str:
    from importlib.metadata import version

    return version(OPENDP)


# ---------------------------------------------------------------- the task's DP arguments


def dp_target(args: Mapping[str, Any]) -> dict[str, str] | None:
    """The DP request in a program's (coerced) args: None when the task asks for no noise.
    Exactly one of ``epsilon`` / ``rho``; ``delta`` only with one of them."""
    eps, rho, delta = (args.get(k) for k in DP_ARG_NAMES)
    if eps is None and rho is None:
        if delta is not None:
            raise InvalidTaskParams("--delta needs --epsilon or --rho")
        return None
    if eps is not None and rho is not None:
        raise InvalidTaskParams("give --epsilon or --rho, not both")
    out: dict[str, str] = {}
    if eps is not None:
        e = Decimal(str(eps))
        if not 0 < e <= MAX_EPSILON:
            raise InvalidTaskParams(f"epsilon must be in (0, {MAX_EPSILON}]")
        out["epsilon"] = str(e)
    else:
        r = Decimal(str(rho))
        if not 0 < r <= MAX_RHO:
            raise InvalidTaskParams(f"rho must be in (0, {MAX_RHO}]")
        out["rho"] = str(r)
    d = Decimal(str(delta)) if delta is not None else DEFAULT_DELTA
    if not 0 < d < 1:
        raise InvalidTaskParams("delta must be in (0, 1)")
    out["delta"] = str(d)
    return out


# ---------------------------------------------------------------- OpenDP measurements


def _dp() -> Any:
    import opendp.prelude as dp

    # "contrib": OpenDP's vetted-but-unproven constructors (make_laplace on integers is
    # one); "honest-but-curious": the user transformation below, whose stability map we
    # assert (the sensitivity the spec declares) -- it is never run on data
    dp.enable_features("contrib", "honest-but-curious")
    return dp


def _measurement(sensitivity: int, scale: float, zcdp: bool) -> Any:
    """Dataset (one row changed = distance 1) -> the release (L1 sensitivity) -> discrete
    Laplace with ``scale``; as zCDP when ``zcdp``."""
    dp = _dp()
    vec = dp.vector_domain(dp.atom_domain(T=INT))
    t = dp.t.make_user_transformation(
        vec, dp.change_one_distance(), vec, dp.l1_distance(T=INT),
        lambda x: x, lambda d_in: d_in * sensitivity,
    )  # fmt: skip
    m = t >> dp.m.then_laplace(scale)
    return dp.c.make_pureDP_to_zCDP(m) if zcdp else m


def _scale_for(sensitivity: int, target: float, zcdp: bool) -> float:
    dp = _dp()
    # only the search bracket is ours (wide: pure DP needs scale = sens/eps, zCDP
    # sens/sqrt(2 rho)); OpenDP's privacy map decides where in it the scale lies
    hi = 4.0 * sensitivity / min(target, math.sqrt(2 * target)) + 1.0
    return float(
        dp.binary_search_param(
            lambda s: _measurement(sensitivity, s, zcdp), d_in=1, d_out=target,
            bounds=(hi / 1000, hi), T=float,
        )
    )  # fmt: skip


def _compose(parts: Sequence[tuple[int, float]], zcdp: bool) -> float:
    dp = _dp()
    ms = [_measurement(s, sc, zcdp) for s, sc in parts]
    return float(ms[0].map(1) if len(ms) == 1 else dp.c.make_composition(ms).map(1))


# ---------------------------------------------------------------- the sampler's coins


@lru_cache(maxsize=256)
def coins(scale: float, bits: int) -> tuple[tuple[int, ...], Decimal]:
    """The coin thresholds (out of 2**bits) of the binary digits of a geometric variable
    with q = exp(-1/scale), and eta: the TV distance between the sampled geometric and the
    exact one (rounding of every kept coin plus the mass of the dropped digits)."""
    with localcontext() as ctx:
        ctx.prec = 80
        q = (Decimal(-1) / Decimal(repr(scale))).exp()
        one = Decimal(1)
        full = Decimal(2) ** bits
        out: list[int] = []
        eta = Decimal(0)
        qp = q  # q^(2^j)
        j = 0
        while True:
            p = qp / (one + qp)
            c = int((p * full).to_integral_value())
            if c == 0:
                # digits j, j+1, ... are dropped: sum p_j <= sum q^(2^j) <= 2 q^(2^j) here
                # (q^(2^j) < 2^-bits <= 1/2, each next term at most half the previous)
                eta += 2 * qp
                break
            eta += abs(Decimal(c) / full - p)
            out.append(c)
            qp = qp * qp
            j += 1
            if j > 200:
                raise InvalidTaskParams(f"a noise scale of {scale} is too large to sample")
    return tuple(out), eta


def plan(releases: Sequence[Release], target: Mapping[str, str]) -> Plan:
    """Calibrate the noise of ``releases`` for ``target`` (from :func:`dp_target`)."""
    rels = [r for r in releases if r.size > 0]
    if not rels:
        raise InvalidTaskParams("nothing to release")
    if len({r.name for r in rels}) != len(rels):
        raise InvalidTaskParams("release names must be distinct")
    for r in rels:
        if r.sensitivity < 1:
            raise InvalidTaskParams(f"release {r.name!r}: sensitivity must be >= 1")
        if r.sensitivity > MAX_SENSITIVITY:
            raise InvalidTaskParams(
                f"release {r.name!r}: an L1 sensitivity of {r.sensitivity} is beyond what the "
                "noise can cover; narrow the declared column ranges"
            )
    k = len(rels)
    zcdp = "rho" in target
    each = float(Decimal(target["rho"] if zcdp else target["epsilon"]) / k)
    scales = [_scale_for(r.sensitivity, each, zcdp) for r in rels]
    parts = [(r.sensitivity, s) for r, s in zip(rels, scales, strict=True)]
    eps_each = [_compose([p], False) for p in parts]
    eps = _compose(parts, False)
    rho = _compose(parts, True)
    want = Decimal(target.get("delta") or DEFAULT_DELTA)
    for bits in range(MIN_BITS, MAX_BITS + 1, 4):
        noises = []
        total = Decimal(0)
        for r, s, e in zip(rels, scales, eps_each, strict=True):
            th, eta = coins(s, bits)
            d = 2 * r.size * eta * (1 + Decimal(repr(e)).exp())
            total += d
            noises.append(Noise(r, s, th, e, float(d)))
        if total <= want:
            return Plan(tuple(noises), bits, eps, rho, float(total), dict(target))
    raise InvalidTaskParams(f"delta {want} is below what {MAX_BITS}-bit coins can reach")


# ---------------------------------------------------------------- budgets


def unit(kind: int) -> str:
    return "rho" if kind == KIND_RHO else "epsilon"


def undercharged(p: Plan | None, charged: Sequence[tuple[int, int, int]]) -> str | None:
    """Why a node must refuse a DP task whose posting charged its datasets' budgets less than
    the composed cost of its noisy outputs (None: every dataset was charged enough).
    ``charged``: per dataset (id, budget kind, cost charged on-chain in millionths)."""
    if p is None:
        return None
    for ds, kind, cost in charged:
        need = p.cost(kind)
        if cost < need:
            return (
                f"dataset {ds} was charged {cost / MICRO:g} {unit(kind)} but the task's noisy "
                f"outputs compose to {need / MICRO:g}"
            )
    return None


def budget_refusal(chain: Any, task: Any, params: Any) -> str | None:
    """Why a node (or a data owner's agent) refuses a DP task over datasets (None: it may
    take part): the privacy cost its posting charged each dataset's on-chain budget
    (``task.datasets``, from TaskDatasets) is below the composed cost of the noisy outputs
    its ``params`` ask for -- a requester posting to the contract directly with 0.01 for
    epsilon = 5. ``chain.dataset_info(id).budget_kind`` gives each budget's unit."""
    plan = params.spec.dp_plan(params)
    entries = tuple(getattr(task, "datasets", ()) or ())
    if plan is None or not entries:
        return None
    charged = [(e.dataset_id, chain.dataset_info(e.dataset_id).budget_kind, e.cost)
               for e in entries]  # fmt: skip
    return undercharged(plan, charged)

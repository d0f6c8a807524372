"""The in-MPC discrete Laplace sampler (node.engines.mpc.noise) against the distribution it
must produce (issue 18, "Done when").

Many draws from one MPyC party, in a fresh interpreter (tests/node/dp_sampler.py; PRSS keys
from a fixed seed, so every run of this test sees the same draws): their mean, variance and
distribution (Kolmogorov-Smirnov on the draws plus uniform jitter, and a chi-square goodness
of fit against the exact pmf P(Z = z) = (1 - q) / (1 + q) q^|z|, q = exp(-1/scale)) match,
and the same tests reject the draws against a distribution 30% wider (the tests can fail).
With the malicious-minority checks on, the checked random bits give the same distribution
(opt-in: ``-m long``).

Seat views: three real party processes (node.mpc.party) sample noise and add it to a public
offset inside the MPC; every seat's Shamir share of each noised value is collected. A
coalition of t = 1 seat (below the reconstruction threshold t + 1 = 2) holds shares that are
independent of the noise (chi-square test of independence), while two seats' shares
determine it (the same test detects the dependence).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trio
from scipy import stats

from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, SubprocessExecutor, free_port
from dnode.scheduler.dp import coins

REPO = Path(__file__).resolve().parents[2]
ALPHA = 1e-3


def _draw(scale: float, n: int, seed: int, *, bits: int = 32, checks: bool = False) -> np.ndarray:
    job = {"scale": scale, "bits": bits, "n": n, "seed": seed, "checks": checks}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.node.dp_sampler", "--no-log"],
        input=json.dumps(job), capture_output=True, text=True, timeout=300, check=False,
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.array(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=np.int64)


def _pmf(scale: float, z: np.ndarray) -> np.ndarray:
    q = math.exp(-1 / scale)
    return (1 - q) / (1 + q) * q ** np.abs(z)


def _cdf(scale: float, x: np.ndarray) -> np.ndarray:
    """P(Z <= x) of the discrete Laplace distribution (a step function)."""
    q = math.exp(-1 / scale)
    k = np.floor(x)
    neg = q ** (-k) / (1 + q)  # k < 0: sum_{z <= k} = q^{-k} / (1 + q)
    pos = 1 - q ** (k + 1) / (1 + q)
    return np.where(k < 0, neg, pos)


def _chi2_p(draws: np.ndarray, scale: float) -> float:
    """Chi-square goodness of fit against the exact pmf, the tails pooled (expected >= 5)."""
    n = len(draws)
    lim = 0
    while n * _pmf(scale, np.array([lim + 1]))[0] >= 5:
        lim += 1
    inner = np.arange(-lim, lim + 1)
    observed = [int((draws < -lim).sum())] + [int((draws == z).sum()) for z in inner]
    observed.append(int((draws > lim).sum()))
    tail = float(_cdf(scale, np.array([-lim - 1]))[0])
    expected = np.array([tail, *(_pmf(scale, inner)), tail]) * n
    expected *= n / expected.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def _ks_p(draws: np.ndarray, scale: float) -> float:
    """Kolmogorov-Smirnov on Z + U, U uniform on [0, 1) (fixed seed): a continuous variable
    whose CDF is the discrete one interpolated linearly, P(Z <= k - 1) + u P(Z = k) at k + u
    (KS itself assumes a continuous distribution)."""
    jitter = np.random.default_rng(18).random(len(draws))

    def cdf(x: np.ndarray) -> np.ndarray:
        k = np.floor(np.asarray(x))
        return _cdf(scale, k - 1) + (np.asarray(x) - k) * _pmf(scale, k)

    return float(stats.kstest(draws + jitter, cdf).pvalue)


SCALE = 3.0


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return _draw(SCALE, 2000, seed=18)


def test_noise_mean_and_variance_match_the_discrete_laplace(draws: np.ndarray) -> None:
    q = math.exp(-1 / SCALE)
    var = 2 * q / (1 - q) ** 2  # the discrete Laplace variance
    n = len(draws)
    assert abs(draws.mean()) < 4 * math.sqrt(var / n), draws.mean()
    # sample variance: standard error var * sqrt((kurtosis - 1) / n), kurtosis about 6
    assert abs(draws.var() - var) < 4 * var * math.sqrt(5 / n), (draws.var(), var)


def test_noise_distribution_passes_ks_and_chi_square(draws: np.ndarray) -> None:
    assert _ks_p(draws, SCALE) > ALPHA
    assert _chi2_p(draws, SCALE) > ALPHA
    # the tests have power: the same draws are rejected against a 30% wider distribution
    assert _chi2_p(draws, SCALE * 1.3) < ALPHA
    assert _ks_p(draws, SCALE * 1.3) < ALPHA


@pytest.mark.long  # opt-in (-m long): the default suite's time budget
def test_checked_random_bits_give_the_same_distribution() -> None:
    """With the malicious-minority checks (Comparator's checked square-root bits)."""
    got = _draw(SCALE, 400, seed=7, checks=True)
    assert _chi2_p(got, SCALE) > ALPHA
    assert _chi2_p(got, SCALE * 1.6) < ALPHA


def test_truncated_digits_and_rounding_are_bounded_by_eta() -> None:
    """The coins the sampler uses are the exact digit probabilities up to the stated eta."""
    th, eta = coins(SCALE, 32)
    q = math.exp(-1 / SCALE)
    for j, c in enumerate(th):
        p = q ** (2**j) / (1 + q ** (2**j))
        assert abs(c / 2**32 - p) <= 2**-32
    assert 0 < eta < 1e-8
    assert q ** (2 ** len(th)) < 2**-32  # the dropped digits are (almost) never 1


# ------------------------------------------------------------------ seat views


def _view_jobs(n: int, m: int = 3, t: int = 1) -> list[MpcJob]:
    th, _ = coins(SCALE, 24)
    args = {"dp": {"bits": 24, "releases": [{"name": "z", "size": n, "thresholds": list(th)}]}}
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    p = S.field_modulus(64)
    sh = S.share([1], m, t, p)  # one dummy owner value: the kernel ignores it
    return [
        MpcJob(
            18,
            "test.dp_view",
            "tests.node.dp_view_kernel",
            args,
            1,
            64,
            i,
            ports,
            t,
            [sh[i]],
            checks=False,
        )  # fmt: skip
        for i in range(m)
    ]


async def _run(jobs: list[MpcJob]) -> list[object]:
    out: list[object] = [None] * len(jobs)

    async def one(i: int) -> None:
        out[i] = await SubprocessExecutor().run_party(jobs[i], timeout=240)

    async with trio.open_nursery() as nursery:
        for i in range(len(jobs)):
            nursery.start_soon(one, i)
    return out


def _independence_p(shares: np.ndarray, noise: np.ndarray, p: int) -> float:
    """Chi-square test of independence: share's two low bits x noise sign class."""
    quart = np.array([int(s) % 4 for s in shares])
    cls = np.sign(noise) + 1
    table = np.zeros((4, 3))
    for a, b in zip(quart, cls, strict=True):
        table[a, b] += 1
    return float(stats.chi2_contingency(table).pvalue)


def test_a_minority_of_seats_sees_shares_independent_of_the_noise() -> None:
    n = 400
    res = _run_sync(_view_jobs(n))
    revealed = [r.revealed for r in res]  # type: ignore[attr-defined]
    assert all(r == revealed[0] for r in revealed)  # every party agrees on what it returned
    views = [[int(v) for v in w] for w in revealed[0]["views"]]  # seat i: its shares
    p = S.field_modulus(64)
    noise = np.array(revealed[0]["opened"], dtype=np.int64) - 1000
    # the opened values are the noised ones: any t + 1 = 2 seats' shares reconstruct them
    rec = S.reconstruct({0: views[0], 1: views[1]}, 1, p)
    assert [v - 1000 for v in rec] == noise.tolist()
    assert noise.std() > 1  # noise was added
    for seat in range(3):  # each single seat (a coalition of t = 1): no dependence
        assert _independence_p(np.array(views[seat], dtype=object), noise, p) > ALPHA
    # two seats' shares (t + 1) do determine the noise: the same test detects it
    combined = np.array([(v - 1000) % p for v in rec], dtype=object)
    assert _independence_p(combined, noise, p) < ALPHA


def _run_sync(jobs: list[MpcJob]) -> list[object]:
    return trio.run(_run, jobs)


@pytest.mark.long  # opt-in (-m long); tests/test_e2e_owner_agents.py runs the DP kernel by default
def test_a_noisy_mean_clips_out_of_range_values_inside_the_mpc() -> None:
    """mpc.mean with --epsilon through three real parties with the malicious-minority checks:
    an owner's value of 200 in a column declared [0, 100] counts as 100 (clipped in the MPC
    before the noise), and only the noisy sum is opened. At epsilon = 50 the noise scale is
    2 (sensitivity 100), so the opened sum sits near the clipped sum, far from the raw one."""
    from fractions import Fraction

    from dnode.scheduler.programs import Column, TaskParams
    from tests.node.test_malicious import ADDRS, _jobs
    from tests.node.test_malicious import _run as run_parties

    col = Column("a", "int", 0, Fraction(0), Fraction(100))
    params = TaskParams("mpc.mean", ADDRS[:2], columns=(col,), args={"epsilon": "50"})
    vals = [[5, 7, 200, 40], [1, 2, 3]]
    res = trio.run(lambda: run_parties(_jobs("mpc.mean", vals, witness=False, params=params)))
    (opened,) = {tuple(r.revealed["sum"]) for r in res}  # type: ignore[attr-defined]
    clipped, raw = 5 + 7 + 100 + 40 + 1 + 2 + 3, 5 + 7 + 200 + 40 + 1 + 2 + 3
    assert abs(opened[0] - clipped) < 40 and abs(opened[0] - raw) > 60, opened
    assert set(res[0].revealed) == {"sum"}  # type: ignore[attr-defined]

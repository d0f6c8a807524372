"""Tests for node.mpc: data-owner sharing, MPyC compatibility, real multi-process parties."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import pytest
import trio

from dnode.node.errors import InputError, MpcError
from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, MpcResult, free_port, run_party
from dnode.scheduler.programs import Column, TaskParams

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers


def _run_mpyc_script(code: str, data: object) -> object:
    """Run code in a fresh interpreter with a clean argv (importing mpyc parses argv and
    configures logging, so it never happens inside the test process)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), "--no-log"],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


ADDRS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
COL = {
    "int": Column("value", "int", 0, Fraction(-1000), Fraction(1000)),
    "fixed": Column("value", "fixed", 4, Fraction(-1000), Fraction(1000)),
}


def _params(program, owners, kind="int", args=None):
    return TaskParams(program, ADDRS[: len(owners)], args=args or {}, columns=(COL[kind],))


def _jobs(task_id, program, kind, owners, m, t, parties=None, args=None):
    """One job per party, built through the program's spec exactly as the node does."""
    params = _params(program, owners, kind, args)
    spec = params.spec
    p = S.field_modulus(params.bit_length)
    sh = [S.share([COL[kind].parse(v) for v in o], m, t, p) for o in owners]
    parties = parties or [[("127.0.0.1", port) for port in [free_port() for _ in range(m)]]] * m
    return [
        MpcJob(
            task_id,
            program,
            spec.kernel,
            spec.kernel_args(params),
            spec.width(params),
            params.bit_length,
            i,
            parties[i],
            t,
            [s[i] for s in sh],
        )  # fmt: skip
        for i in range(m)
    ]


def _finish(program, owners, kind, r, args=None):
    params = _params(program, owners, kind, args)
    return params.spec.finish(params, r.revealed, r.rows).values


async def _run_all(jobs, timeout=30.0, skip=()):
    results: list[object] = [None] * len(jobs)

    async def one(i):
        try:
            results[i] = await run_party(jobs[i], timeout=timeout)
        except MpcError as e:
            results[i] = e

    async with trio.open_nursery() as n:
        for i in range(len(jobs)):
            if i not in skip:
                n.start_soon(one, i)
    return results


def _plain(owners):
    vals = [Fraction(x) for o in owners for x in o]
    return sum(vals), len(vals)


# ------------------------------------------------------------------ sharing (no mpyc)


def test_sharing_does_not_import_mpyc():
    code = (
        "import sys; import node.mpc.sharing, node.mpc.executor; "
        "print([k for k in sys.modules if k.startswith('mpyc')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=True,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("m,t", [(1, 0), (3, 1), (5, 2), (7, 3)])
def test_share_reconstruct_roundtrip(m, t):
    p = S.field_modulus(64)
    vals = [0, 1, -1, 2**62, -(2**62), 123456789]
    sh = S.share(vals, m, t, p)
    assert len(sh) == m and all(len(row) == len(vals) for row in sh)
    assert S.reconstruct(dict(enumerate(sh)), t, p) == vals  # all parties (checks degree)
    rnd = random.Random(m)
    for _ in range(5):
        subset = rnd.sample(range(m), t + 1)
        assert S.reconstruct({i: sh[i] for i in subset}, t, p) == vals
    if t:
        with pytest.raises(ValueError):
            S.reconstruct({i: sh[i] for i in range(t)}, t, p)
        bad = {i: list(row) for i, row in enumerate(sh)}
        bad[m - 1][0] = (bad[m - 1][0] + 1) % p
        with pytest.raises(ValueError, match="inconsistent"):
            S.reconstruct(bad, t, p)


def test_share_rejects_bad_threshold():
    with pytest.raises(ValueError):
        S.share([1], 3, 2, S.field_modulus(32))


def test_single_share_reveals_nothing():
    p = S.field_modulus(64)
    # fresh randomness: the same secret gets different shares each time
    a, b = S.share([42], 3, 1, p), S.share([42], 3, 1, p)
    assert a[0] != b[0] and a[1] != b[1]
    # perfect secrecy, exhaustively over a toy field: for t=1 the distribution of party
    # 0's share over all coefficients is the same (uniform) for every secret
    q = 11

    class Fixed:
        def __init__(self, c):
            self.c = c

        def randbelow(self, n):
            return self.c

    dists = {
        s: sorted(S.share([s], 3, 1, q, rng=Fixed(c))[0][0] for c in range(q)) for s in range(q)
    }
    assert all(d == list(range(q)) for d in dists.values())
    # any t shares are consistent with EVERY secret: complete them to a full sharing
    m, t = 5, 2
    sh = S.share([7], m, t, p)
    seen = {1: sh[1], 3: sh[3]}  # what a coalition of t parties holds
    for s2 in (7, 0, -5, 10**9):
        xs, ys = [0, 2, 4], [s2 % p, seen[1][0], seen[3][0]]
        full = {}
        for i in range(m):
            vec = S._lagrange_at(xs, i + 1, p)
            full[i] = [sum(c * y for c, y in zip(vec, ys, strict=True)) % p]
        assert full[1] == seen[1] and full[3] == seen[3]
        assert S.reconstruct(full, t, p) == [s2]


def test_field_modulus_and_shares_match_mpyc():
    bls = [2, 8, 16, 32, 64, 100, 128]
    mine = {str(bl): S.field_modulus(bl) for bl in bls}
    assert all(p % 4 == 3 for p in mine.values())
    m, t = 5, 2
    p64 = S.field_modulus(64)
    my_sh = S.share([5, -9, 2**40], m, t, p64)
    theirs = _run_mpyc_script(
        """
        import json, sys
        data = json.loads(sys.stdin.read())
        from mpyc.runtime import mpc           # a runtime, as a party has it
        from mpyc import finfields, thresha
        out = {"mod": {bl: mpc.SecInt(int(bl)).field.modulus for bl in data["bls"]}}
        F = mpc.SecInt(64).field
        pts = [(i + 1, [F(x) for x in row]) for i, row in enumerate(data["sh"])][2:]
        out["recombined"] = [int(v) for v in thresha.recombine(F, pts)]
        out["theirs"] = thresha.random_split(F, [F(11), F(-3)], 2, 5)
        print(json.dumps(out))
        """,
        {"bls": bls, "sh": my_sh},
    )
    assert theirs["mod"] == mine
    # our shares open correctly with MPyC's recombination (from parties 2, 3, 4) ...
    assert theirs["recombined"] == [5, -9, 2**40]
    # ... and MPyC's own shares reconstruct with ours
    assert S.reconstruct(dict(enumerate(theirs["theirs"])), 2, p64) == [11, -3]


def test_fast_resharing_opens_with_mpyc():
    """node.mpc.sharing.np_random_split (installed in every party for MPyC's re-sharing):
    for t = 1 and 2, any t + 1 of its m shares recombine (MPyC's np_recombine) to the
    secrets; the matrix has MPyC's layout; the randomness differs between two calls and
    the degree-t coefficients are not constant (the shares of 0 are not all 0)."""
    got = _run_mpyc_script(
        """
        import json, sys
        import numpy as np
        from mpyc.runtime import mpc
        from mpyc import thresha
        from dnode.node.mpc.sharing import install_fast_split, np_random_split
        F = mpc.SecInt(64).field
        want = [5, 0, F.modulus - 1, 2**40]
        out = {"ok": [], "installed": install_fast_split(),
               "is_ours": thresha.np_random_split is np_random_split}
        for t in (1, 2):
            m = 2 * t + 1
            sh = np_random_split(F, F.array(np.array(want, dtype=object)), t, m)
            out["ok"].append(sh.shape == (m, len(want)))
            for first in range(m - t):
                pts = [(i + 1, sh[i]) for i in range(first, first + t + 1)]
                rec = thresha.np_recombine(F, pts)
                out["ok"].append([int(v) for v in rec.value] == want)
            again = np_random_split(F, F.array(np.array(want, dtype=object)), t, m)
            out["ok"].append(bool((again != sh).any()) and int(sh[0][1]) != 0)
        print(json.dumps(out))
        """,
        None,
    )
    assert got["installed"] and got["is_ours"]
    assert got["ok"] and all(got["ok"]), got


# ------------------------------------------------------------------ inputs


def test_encode_exact():
    assert S.encode(["3", "-7", "2.0", "1e3"], "int", 0) == [3, -7, 2, 1000]
    assert S.encode(["1.5", "-0.25", "0.1"], "fixed", 4) == [24, -4, 2]  # 1.6 -> 2
    assert S.encode(["0.1"], "fixed", 16) == [round(Fraction(1, 10) * 2**16)]
    with pytest.raises(InputError, match="value 2: '1.5' is not an integer"):
        S.encode(["1", "1.5"], "int", 0, source="owner.txt")
    with pytest.raises(InputError, match="out of range"):
        S.encode([str(2**40)], "int", 0, bit_length=32, max_values=4)
    with pytest.raises(InputError, match="not a number"):
        S.encode(["nan"], "fixed", 8)
    with pytest.raises(ValueError):
        S.encode(["1"], "int", 3)
    # the bound guarantees that max_values values sum inside secint(bit_length)
    b = S.value_bound(32, 4)
    assert 4 * b < 2**31


def test_load_inputs(tmp_path):
    f = tmp_path / "ok.csv"
    f.write_text('# my values\n1\n\n -2.5 \n3,\n"4"\n7  # trailing comment\n')
    assert S.load_inputs(f) == ["1", "-2.5", "3", "4", "7"]

    def bad(text, match):
        g = tmp_path / "bad.txt"
        g.write_text(text)
        with pytest.raises(InputError, match=match) as ei:
            S.load_inputs(g)
        assert str(g) in str(ei.value) and "\n" not in str(ei.value)

    bad("1\n2\nabc\n", r"line 3: 'abc' is not a number")
    bad("1,2\n", r"line 1: expected a single column, got 2 cells")
    bad("value\n1\n", r"line 1: 'value' is not a number")
    bad("# nothing\n\n", r"no values")
    bad("1\ninf\n", r"line 2: 'inf' is not a number")
    with pytest.raises(InputError, match="cannot read"):
        S.load_inputs(tmp_path / "missing.txt")


# ------------------------------------------------------------------ real MPyC parties


OWNERS_INT = [["5", "-3", "12"], ["100"], ["-7", "0", "2"]]
OWNERS_FIX = [["1.5", "-2.25", "0.1"], ["3"], ["0.125", "-10.0625", "1e2"]]


@pytest.mark.parametrize("kind,owners", [("int", OWNERS_INT), ("fixed", OWNERS_FIX)])
def test_three_parties_sum_and_mean(kind, owners):
    total, count = _plain(owners)
    for program in ("mpc.sum", "mpc.mean"):
        jobs = _jobs(11, program, kind, owners, 3, 1)
        res = trio.run(_run_all, jobs)
        assert all(isinstance(r, MpcResult) for r in res), res
        assert res[0] == res[1] == res[2]
        r = res[0]
        assert r.rows == count and r.modulus == S.field_modulus(jobs[0].bit_length)
        want = total if program == "mpc.sum" else total / count
        assert _finish(program, owners, kind, r) == (want,)  # exact: decimals encode exactly


@pytest.mark.parametrize("kind,owners", [("int", OWNERS_INT), ("fixed", OWNERS_FIX)])
def test_three_parties_variance(kind, owners):
    """mpc.variance opens the sum and the sum of squares (one secure product per value)."""
    xs = [Fraction(v) for o in owners for v in o]
    res = trio.run(_run_all, _jobs(12, "mpc.variance", kind, owners, 3, 1))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0] == res[1] == res[2]
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    assert _finish("mpc.variance", owners, kind, res[0]) == (mean, var)


def test_three_parties_order_statistics():
    """min, median and quantiles by secure binary search match numpy exactly."""
    import numpy as np

    xs = np.array([float(v) for o in OWNERS_INT for v in o])
    args = {"q": ["0", "0.25", "0.5", "1"]}
    res = trio.run(_run_all, _jobs(13, "mpc.quantiles", "int", OWNERS_INT, 3, 1, args=args))
    assert all(isinstance(r, MpcResult) for r in res), res
    got = _finish("mpc.quantiles", OWNERS_INT, "int", res[0], args)
    assert [float(v) for v in got] == list(np.quantile(xs, [0, 0.25, 0.5, 1]))
    assert set(res[0].revealed) == {"ranks", "order"}  # nothing else is opened


@pytest.mark.parametrize("junk", ["--5", "-", "5-", "+-1", "- 5"])
def test_integer_fast_path_rejects_junk(junk):
    with pytest.raises(InputError, match="value 1"):
        S.encode([junk], "int", 0)


def test_squares_bound_is_enforced():
    big = str(2**32)  # fits a 64-bit sum, but its square does not
    assert S.encode([big], "int", 0) == [2**32]
    with pytest.raises(InputError, match="out of range"):
        S.encode([big], "int", 0, squares=True)


def test_five_parties_threshold_two():
    owners = [["1", "2", "3"], ["-40"], ["1000", "7"]]
    jobs = _jobs(12, "mpc.mean", "int", owners, 5, 2)
    res = trio.run(_run_all, jobs)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0] == res[1] == res[4]
    assert _finish("mpc.mean", owners, "int", res[0]) == (Fraction(973, 6),)


async def _forward(listener: trio.SocketListener, target_port: int, ready: trio.Event):
    """A stand-in for a libp2p tunnel: TCP forwarder to 127.0.0.1:target_port.

    Like node/tunnel.py it dials the far end ONCE per accepted connection; it must not
    do so before the far party is listening (``ready``, from run_party(listening=...)):
    closing an accepted connection would make MPyC's client believe it is connected and
    then lose the peer for good (MPyC never reconnects) -> the session hangs."""

    async def pipe(a, b):
        try:
            async for chunk in a:
                await b.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await b.aclose()

    async def handle(client):
        await ready.wait()
        upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
        async with trio.open_nursery() as n:
            n.start_soon(pipe, client, upstream)
            n.start_soon(pipe, upstream, client)

    await trio.serve_listeners(handle, [listener])


def test_parties_reach_each_other_through_forwarders():
    """Each party listens on its own port; it reaches higher parties through per-party
    forwarder ports; entries of lower parties are never used (bogus here)."""
    m, t = 3, 1
    owners = [["4", "5"], ["-1"], ["10"]]
    listen = [free_port() for _ in range(m)]
    ready = [trio.Event() for _ in range(m)]

    async def main():
        async with trio.open_nursery() as n:
            views = []
            for i in range(m):
                view = []
                for j in range(m):
                    if j == i:
                        view.append(("127.0.0.1", listen[i]))
                    elif j < i:
                        view.append(("unused.invalid", 9))
                    else:
                        (lst,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
                        n.start_soon(_forward, lst, listen[j], ready[j])
                        view.append(("127.0.0.1", lst.socket.getsockname()[1]))
                views.append(view)
            jobs = _jobs(13, "mpc.sum", "int", owners, m, t, parties=views)
            res: list[object] = [None] * m

            async def one(i):
                res[i] = await run_party(jobs[i], timeout=30, listening=ready[i])

            async with trio.open_nursery() as parties:
                for i in range(m):
                    parties.start_soon(one, i)
            n.cancel_scope.cancel()
        return res

    res = trio.run(main)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert [r.revealed["sum"] for r in res] == [[18], [18], [18]]
    assert all(e.is_set() for e in ready)


def test_missing_party_times_out():
    jobs = _jobs(14, "mpc.sum", "int", OWNERS_INT, 3, 1)
    res = trio.run(_run_all, jobs, 5.0, {2})  # party 2 is never started
    for r in res[:2]:
        assert isinstance(r, MpcError) and r.task_id == 14
        assert str(r) == "MPC for task 14 failed: timed out after 5 s waiting for parties"


def test_session_mismatch_fails_fast():
    import dataclasses

    jobs = _jobs(15, "mpc.sum", "int", OWNERS_INT, 3, 1)
    jobs[2] = dataclasses.replace(jobs[2], task_id=99)
    res = trio.run(_run_all, jobs, 20.0)
    assert all(isinstance(r, MpcError) for r in res), res
    # the parties compared fingerprints and stopped: the reason, not the 20 s deadline
    assert "different session" in str(res[0]) and "\n" not in str(res[0])


def test_invalid_job_rejected():
    import dataclasses

    job = _jobs(16, "mpc.mean", "int", [["1", "2"]], 3, 1)[0]
    with pytest.raises(MpcError, match="kernel"):
        trio.run(lambda: run_party(dataclasses.replace(job, kernel="os;rm"), timeout=5))
    with pytest.raises(MpcError, match="whole rows"):
        trio.run(lambda: run_party(dataclasses.replace(job, width=3), timeout=5))
    job = dataclasses.replace(job, shares=[[2**200]])
    with pytest.raises(MpcError, match="not an element"):
        trio.run(lambda: run_party(job, timeout=5))


def test_three_parties_min_and_max_by_tournament():
    xs = [int(v) for o in OWNERS_INT for v in o]
    for program, want in (("mpc.min", min(xs)), ("mpc.max", max(xs))):
        res = trio.run(_run_all, _jobs(17, program, "int", OWNERS_INT, 3, 1))
        assert all(isinstance(r, MpcResult) for r in res), res
        assert set(res[0].revealed) == {"extreme"}  # only the extreme is opened
        assert _finish(program, OWNERS_INT, "int", res[0]) == (want,)


def test_a_dead_peer_ends_the_session_at_once():
    """A party whose peer died (killed node, broken tunnel) exits at once instead of waiting
    for the peer's messages until its deadline: the node then retries at the next slot
    (chaos runs: sessions "stalled" for their whole attempt after one member was killed)."""
    rng = random.Random(7)
    owners = [[str(rng.randint(-500, 500)) for _ in range(400)] for _ in range(3)]
    jobs = _jobs(16, "mpc.median", "int", owners, 3, 1)

    async def scenario():
        results: list[object] = [None] * 3

        async def one(i, timeout):
            try:
                results[i] = await run_party(jobs[i], timeout=timeout)
            except MpcError as e:
                results[i] = e

        t0 = time.monotonic()
        async with trio.open_nursery() as n:
            n.start_soon(one, 0, 120.0)
            n.start_soon(one, 1, 120.0)
            n.start_soon(one, 2, 4.0)  # killed by its executor mid-session
        return results, time.monotonic() - t0

    (r0, r1, r2), _ = trio.run(scenario)
    assert isinstance(r2, MpcError) and "timed out after 4 s" in str(r2), r2
    for r in (r0, r1):
        assert isinstance(r, MpcError), r
        assert "lost the connection to party 2" in str(r), r  # not the 120 s deadline

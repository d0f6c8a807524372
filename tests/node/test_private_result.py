"""Private results (issue 15): the committee seals its output shares to the requester; no
party opens the output, only the requester's key reconstructs it, and a seat that seals a
wrong share is caught by the requester.

The session tests run real MPyC party processes (node.mpc.party) on jobs built from the
program's spec, as tests/node/test_malicious.py does."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
import trio

from dnode.node.mpc.delivery import (
    Bundle,
    DeliveryError,
    open_bundle,
    result_keypair,
    seal_shares,
)
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.sharing import field_modulus, share
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from tests.node.test_malicious import ADDRS, _flat, _jobs, _run, _vectors

KEY = bytes(range(1, 33))  # a dev-only account key
SK, PK = result_keypair(KEY)


def _bundle(values: list[int], m: int = 3, t: int = 1, p: int | None = None) -> Bundle:
    p = p or field_modulus(64)
    per_seat = share(values, m, t, p)
    boxes = tuple(seal_shares(PK, i, {"sum": per_seat[i]}, 7) for i in range(m))
    return Bundle(boxes, t, p)


def test_sealed_shares_open_only_with_the_requesters_key() -> None:
    b = Bundle.from_bytes(_bundle([42, -5]).to_bytes())
    assert open_bundle(SK, b) == ({"sum": [42, -5]}, 7)
    other, _ = result_keypair(bytes(32))
    with pytest.raises(DeliveryError, match="does not open"):
        open_bundle(other, b)


def test_a_seat_that_seals_a_wrong_share_is_caught() -> None:
    # sealed boxes are anonymous: a malicious seat can seal anything to the requester's key
    p = field_modulus(64)
    b = _bundle([42])
    forged = seal_shares(PK, 1, {"sum": [(share([43], 3, 1, p)[1][0])]}, 7)
    bad = Bundle((b.boxes[0], forged, b.boxes[2]), b.threshold, b.modulus)
    with pytest.raises(DeliveryError, match="inconsistent"):
        open_bundle(SK, bad)
    swapped = Bundle((b.boxes[1], b.boxes[0], b.boxes[2]), b.threshold, b.modulus)
    with pytest.raises(DeliveryError, match="not seat 0's"):
        open_bundle(SK, swapped)


def test_result_key_is_covered_by_the_params_digest_and_checked() -> None:
    col = (Column("a", "int", 0, Fraction(-1000), Fraction(1000)),)
    public = TaskParams("mpc.sum", ADDRS, columns=col)
    private = dataclasses.replace(public, result_key=PK)
    assert private.digest != public.digest
    assert TaskParams.from_bytes(private.canonical()) == private
    assert "result_key" not in public.to_dict()  # public tasks hash exactly as before
    with pytest.raises(InvalidTaskParams, match="64 lowercase hex"):
        dataclasses.replace(public, result_key="zz")
    with pytest.raises(InvalidTaskParams, match="opens one bit of the answer"):
        TaskParams("mpc.median", ADDRS, columns=col, result_key=PK)


@pytest.mark.parametrize("checks", [True, False], ids=["checked", "semi-honest"])
def test_parties_seal_the_output_and_open_nothing(checks: bool) -> None:
    program = "mpc.variance"
    jobs = [
        dataclasses.replace(j, result_key=PK)
        for j in _jobs(program, _vectors(program), checks=checks)
    ]
    res = trio.run(_run, jobs)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert all(r.revealed == {} for r in res)  # no party holds the output
    bundles = {r.bundle for r in res}
    assert len(bundles) == 1  # every node reports the digest of the same boxes
    raw = bundles.pop()
    assert raw is not None
    a = [r[0] for r in _flat(program)]
    got, rows = open_bundle(SK, Bundle.from_bytes(raw))
    assert rows == len(a) and got == {"sum": [sum(a)], "sumsq": [sum(v * v for v in a)]}

from __future__ import annotations

import pytest
from eth_account import Account

from dnode.oracle.attestation import sign_report
from dnode.oracle.errors import BadSignature
from dnode.oracle.reporter import SignatureSet, reporter_rank

CHAIN, CONTRACT, TASK = 1337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", 7
MEMBERS = [Account.create() for _ in range(3)]


def fresh() -> SignatureSet:
    return SignatureSet(CHAIN, CONTRACT, TASK, [a.address for a in MEMBERS], quorum=2)


def test_quorum_on_one_digest_in_seat_order() -> None:
    s = fresh()
    s.add(b"result", sign_report(MEMBERS[2], CHAIN, CONTRACT, TASK, b"result"))
    assert s.quorum_result() is None
    s.add(b"result", sign_report(MEMBERS[0], CHAIN, CONTRACT, TASK, b"result"))
    result, sigs = s.quorum_result()  # type: ignore[misc]
    assert result == b"result"
    assert sigs == [
        sign_report(m, CHAIN, CONTRACT, TASK, b"result") for m in (MEMBERS[0], MEMBERS[2])
    ]


def test_conflicting_results_do_not_combine() -> None:
    s = fresh()
    s.add(b"a", sign_report(MEMBERS[0], CHAIN, CONTRACT, TASK, b"a"))
    s.add(b"b", sign_report(MEMBERS[1], CHAIN, CONTRACT, TASK, b"b"))
    assert s.conflicting() and s.quorum_result() is None


def test_outsider_and_other_task_signatures_are_rejected() -> None:
    s = fresh()
    with pytest.raises(BadSignature):
        s.add(b"r", sign_report(Account.create(), CHAIN, CONTRACT, TASK, b"r"))
    # a member's signature for another task recovers to someone else: not a member
    with pytest.raises(BadSignature):
        s.add(b"r", sign_report(MEMBERS[0], CHAIN, CONTRACT, TASK + 1, b"r"))
    with pytest.raises(BadSignature):
        s.add(b"r", b"\x00" * 65)
    assert s.quorum_result() is None


def test_reporter_rank_rotates_and_is_a_permutation() -> None:
    for task in range(1, 8):
        assert sorted(reporter_rank(task, seat, 5) for seat in range(5)) == list(range(5))
    assert {reporter_rank(t, 0, 3) for t in range(3)} == {0, 1, 2}

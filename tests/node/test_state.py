"""Restart safety of the node's SQLite state: signing protection, one instance per state dir,
and what survives kill -9 (real sqlite files, real OS processes and file locks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from dnode.node.errors import DoubleSignRefused, StateLocked
from dnode.node.state import open_state
from dnode.oracle.attestation import recover_signer, sign_report

KEY = keccak(text="dnode-test/state")
CONTRACT = "0x" + "ab" * 20
ROOT = Path(__file__).resolve().parents[2]


def _signer(task_id: int):
    acct = Account.from_key(KEY)
    return lambda result: sign_report(acct, 1337, CONTRACT, task_id, result)


def test_second_signature_for_a_different_result_is_refused(tmp_path: Path) -> None:
    st = open_state(tmp_path)
    st.hold_seat(7, 0, 1)
    sig = st.sign_once(7, 0, b"result-a", _signer(7))
    assert recover_signer(1337, CONTRACT, 7, keccak(b"result-a"), sig) == (
        Account.from_key(KEY).address
    )
    assert st.sign_once(7, 0, b"result-a", _signer(7)) == sig  # same result: same signature
    with pytest.raises(DoubleSignRefused) as err:
        st.sign_once(7, 0, b"result-b", _signer(7))
    assert err.value.task_id == 7 and err.value.signed_digest == keccak(b"result-a")
    # the report signature does not cover the round: the other round is protected too
    with pytest.raises(DoubleSignRefused):
        st.sign_once(7, 1, b"result-b", _signer(7))
    st.close()

    st = open_state(tmp_path)  # protection and the refusal log survive a restart
    with pytest.raises(DoubleSignRefused):
        st.sign_once(7, 0, b"result-c", _signer(7))
    assert st.refusals() == 3
    assert [s.result_digest for s in st.signatures()] == [keccak(b"result-a")]
    assert st.seat(7, 0) is not None and st.seat(7, 0).state == "signed"  # type: ignore[union-attr]


def test_sign_callback_failure_leaves_no_signature(tmp_path: Path) -> None:
    st = open_state(tmp_path)

    def broken(result: bytes) -> bytes:
        raise RuntimeError("key unavailable")

    with pytest.raises(RuntimeError):
        st.sign_once(3, 0, b"r", broken)
    assert st.signature(3) is None
    assert st.sign_once(3, 0, b"other", _signer(3))  # nothing was promised: may sign now


def _child(code: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_second_instance_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    st = open_state(tmp_path / "state")
    with pytest.raises(StateLocked):
        open_state(tmp_path / "state")  # another open file description: flock conflicts
    # another process, through the CLI: one line, non-zero exit, no traceback
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DNODE_PASSWORD": "x"}
    r = subprocess.run(
        [sys.executable, "-m", "dnode.cli", "--home", str(tmp_path), "start"],
        capture_output=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )
    err = r.stderr.decode().strip()
    assert r.returncode != 0
    assert "another node is already running" in err and len(err.splitlines()) == 1, err
    st.close()
    open_state(tmp_path / "state").close()  # free again once the holder is gone


def test_kill_9_keeps_what_was_committed_and_frees_the_lock(tmp_path: Path) -> None:
    """A process commits a seat, shares and a signature, then dies by SIGKILL while still
    holding the lock; a new instance starts, and sees exactly what was committed."""
    child = _child(
        f"""
        import os, signal
        from pathlib import Path
        from eth_account import Account
        from dnode.node.state import open_state
        from dnode.oracle.attestation import sign_report
        st = open_state(Path({str(tmp_path)!r}))
        st.hold_seat(5, 0, 2)
        st.save_params(5, b"params")
        st.save_shares(5, 0, "0xOwner", b"shares")
        st.save_result(5, 0, b"r5", {{"value": "1"}})
        acct = Account.from_key({KEY!r})
        st.sign_once(5, 0, b"r5", lambda r: sign_report(acct, 1337, {CONTRACT!r}, 5, r))
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err.decode()
    assert out.decode().strip() == "committed"
    st = open_state(tmp_path)
    (seat,) = st.open_seats()
    assert (seat.task_id, seat.round, seat.seat, seat.state) == (5, 0, 2, "signed")
    assert st.params(5) == b"params" and st.shares(5, 0) == {"0xowner": b"shares"}
    assert st.result(5, 0) == (b"r5", {"value": "1"})
    with pytest.raises(DoubleSignRefused):
        st.sign_once(5, 0, b"different", _signer(5))

"""Issue 13, finding 6 (node side): shares at rest are private to the node's user whatever
the umask, and deleted (overwritten) once the task settled and the retention window passed."""

from __future__ import annotations

import os
import stat

import pytest
import trio

from dnode.node.retention import sweep_once
from dnode.node.state import open_state, write_private

SECRET = b"owner-share-0xfeedfacecafebeef-" * 4


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_state_files_are_private_under_umask_022(tmp_path, umask_022):
    state_dir = tmp_path / "state"
    st = open_state(state_dir)
    try:
        st.hold_seat(1, 0, 0)
        st.save_shares(1, 0, "0xAbC", SECRET)
        assert _mode(state_dir) == 0o700
        assert _mode(state_dir / "node.db") == 0o600
        for suffix in ("-wal", "-shm"):
            p = state_dir / f"node.db{suffix}"
            if p.exists():
                assert _mode(p) == 0o600, suffix
        task_dir = state_dir / "task-1"
        task_dir.mkdir()
        stale = task_dir / "shares-0xabc.json.tmp"
        stale.write_text("{}")  # a tmp file left by a crash, created under umask 022
        write_private(task_dir / "shares-0xabc.json", '{"shares": [1, 2]}')
        assert _mode(task_dir / "shares-0xabc.json") == 0o600
    finally:
        st.close()


def test_an_existing_world_readable_db_is_tightened(tmp_path, umask_022):
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    open_state(state_dir).close()
    os.chmod(state_dir / "node.db", 0o644)
    os.chmod(state_dir, 0o755)
    open_state(state_dir).close()
    assert _mode(state_dir) == 0o700
    assert _mode(state_dir / "node.db") == 0o600


def test_shares_are_deleted_after_settlement_and_the_window(tmp_path):
    state_dir = tmp_path / "state"
    st = open_state(state_dir)
    settled: set[int] = set()

    async def is_settled(task_id: int) -> bool:
        return task_id in settled

    try:
        for task in (1, 2):
            st.hold_seat(task, 0, 0)
            st.save_shares(task, 0, "0xabc", SECRET + bytes([task]))
            (state_dir / f"task-{task}").mkdir()
            write_private(state_dir / f"task-{task}" / "shares-0xabc.json", SECRET.hex())
        st.set_seat_state(1, 0, "closed")
        st.set_seat_state(2, 0, "closed")
        settled.add(1)  # task 2 is closed here but not terminal on chain (e.g. disputed)

        async def sweep(window: float, now: float | None = None):
            return await sweep_once(st, state_dir, window, is_settled, now=now)

        assert trio.run(sweep, 3600.0) == []  # inside the retention window: kept
        assert st.shares(1, 0)
        import time

        assert trio.run(sweep, 3600.0, time.time() + 7200) == [(1, 0)]
        assert st.shares(1, 0) == {} and st.shares(2, 0)
        assert not (state_dir / "task-1" / "shares-0xabc.json").exists()
        assert (state_dir / "task-2" / "shares-0xabc.json").exists()
    finally:
        st.close()
    # overwritten, not just unlinked from the b-tree: the bytes are gone from the file
    raw = b"".join(p.read_bytes() for p in state_dir.glob("node.db*"))
    assert SECRET + b"\x01" not in raw
    assert SECRET + b"\x02" in raw

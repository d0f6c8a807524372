"""How soon an owner agent asks again for a posted task's params: a node usually knows them
within a second of the posting, so the first retries come quickly, then back off."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dnode.node.owner.agent import PARAMS_RETRY, params_retry
from tests.node.test_owner_agent import TASK, World


def test_params_are_asked_for_again_soon_then_less_often() -> None:
    assert [params_retry(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert max(params_retry(n) for n in range(50)) == PARAMS_RETRY


def test_an_agent_asks_for_a_new_candidates_params_at_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cfg = dataclasses.replace(w.cfg, poll_interval=1.0)
    a = w.agent()
    assert a._next_pass() == 1.0
    a.candidates[TASK] = 0.0  # seen posted, never tried
    assert a._next_pass() <= 0.05
    a.state.close()

"""ChainClient reads views with its own cached selectors and types (``_View``) instead of
web3's per-call ABI lookup: every view of the deployed ABI must answer exactly what web3's
contract call answers (values, lists, checksummed addresses, and the same error on a revert),
on a contract with a registered node, stake and a posted task."""

from __future__ import annotations

from typing import Any

from dnode_chain import ETHER, Chain

PROGRAM = b"\x01" * 32
PARAMS = b"\x02" * 32


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as e:  # noqa: BLE001 - the comparison is of the error itself
        return "error", (type(e).__name__, str(e))


def test_every_view_answers_as_web3s_contract_call(chain: Chain, funded: Any) -> None:
    node = funded("node0")
    node.register("12D3KooWnode0", 1)
    node.stake(2 * ETHER)
    requester = funded("requester")
    now = chain.now()
    requester.post_task(
        PROGRAM, PARAMS, capability=1, committee_size=3,
        seat_deadline=now + 100, report_deadline=now + 1000, reward=ETHER,
    )  # fmt: skip
    samples: dict[str, list[Any]] = {
        "address": [node.account.address, requester.account.address, "0x" + "00" * 20],
        "uint256": [0, 1, 2, 2**255, "1", -1],  # a string or -1: web3 refuses; so must we
        "string": ["12D3KooWnode0", "unknown"],
    }
    compared = 0
    for fn, view in node._views.items():
        if len(view.inputs) > 1 or any(t not in samples for t in view.inputs):
            continue
        for args in [()] if not view.inputs else [(a,) for a in samples[view.inputs[0]]]:
            fast = _outcome(lambda fn=fn, args=args: node._call(fn, *args))
            slow = _outcome(lambda fn=fn, args=args: node._call_via_web3(fn, *args))
            assert fast == slow, (fn, args)
            compared += 1
    assert compared >= 40  # the views of the registry, tasks, data market and court


def test_views_skip_web3s_contract_call(chain: Chain, funded: Any, monkeypatch: Any) -> None:
    node = funded("node0")
    node.register("12D3KooWnode0", 1)
    used: list[str] = []
    monkeypatch.setattr(node, "_call_via_web3", lambda fn, *a, **k: used.append(fn))
    assert node.node_info().peer_id == "12D3KooWnode0"
    assert node.task_count() == 0 and node.slot_count() == 0
    assert used == []
    node._call("task_status", "1")  # refused by eth-abi as it is: web3's path says why
    assert used == ["task_status"]


def test_a_record_the_events_miss_once_is_read_again(
    chain: Chain, funded: Any, monkeypatch: Any
) -> None:
    """Anvil once answered a block's logs without an event its state already held: the
    record is read again before it is an error; a lasting mismatch still is one."""
    from dnode.contracts.errors import ContractsError

    requester = funded("requester")
    now = chain.now()
    task_id = requester.post_task(
        PROGRAM, PARAMS, capability=1, committee_size=3,
        seat_deadline=now + 100, report_deadline=now + 1000, reward=ETHER,
    )  # fmt: skip
    real = requester._task_logs
    misses = [1]

    def logs(tid: int, to_block: Any = "latest") -> Any:
        if misses[0]:
            misses[0] -= 1
            return []  # the TaskPosted event missing once
        return real(tid, to_block)

    monkeypatch.setattr(requester, "_task_logs", logs)
    assert requester.task_info(task_id).requester == requester.account.address
    misses[0] = 3
    try:
        requester.task_info(task_id)
        raise AssertionError("a lasting mismatch must be an error")
    except ContractsError as e:
        assert "do not rebuild the on-chain record" in str(e)

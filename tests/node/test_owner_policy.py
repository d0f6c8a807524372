"""The owner agent's policy: a pure decision over a TaskOffer (no chain, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnode.node.owner.config import load_config, parse_wei
from dnode.node.owner.errors import OwnerConfigError
from dnode.node.owner.policy import ACCEPT, PENDING, REJECT, Policy, TaskOffer, decide

ME = "0x" + "aa" * 20
EVE = "0x" + "ee" * 20


def offer(**kw: object) -> TaskOffer:
    base: dict[str, object] = dict(
        task_id=7, program="mpc.mean", program_id="0x" + "12" * 32, family="stats",
        reward=10**17, requester=ME, dataset="sales",
    )  # fmt: skip
    base.update(kw)
    return TaskOffer(**base)  # type: ignore[arg-type]


def test_an_empty_policy_accepts_any_task() -> None:
    v = decide(Policy(), offer())
    assert v.outcome == ACCEPT and v.reasons == ()


@pytest.mark.parametrize(
    "programs, ok",
    [
        (("mpc.mean",), True),
        (("mpc.*",), True),
        (("family:stats",), True),
        (("0x" + "12" * 32,), True),
        (("mpc.sum",), False),
        (("family:ml",), False),
        (("0x" + "34" * 32,), False),
    ],
)
def test_programs_by_name_glob_family_or_id(programs: tuple[str, ...], ok: bool) -> None:
    v = decide(Policy(programs=programs), offer())
    assert v.outcome == (ACCEPT if ok else PENDING)
    if not ok:
        assert v.reason == "program mpc.mean is not allowed for dataset sales"


def test_each_rule_outside_the_policy_is_pending_with_its_reason() -> None:
    p = Policy(min_reward=10**18, min_price=5, max_privacy_cost=0.5, rate_limit=2,
               requesters_allow=(EVE,))  # fmt: skip
    v = decide(p, offer(price=1, privacy_cost=1.0), accepted_last_hour=2)
    assert v.outcome == PENDING
    text = v.reason
    assert f"requester {ME} is not on the allow list" in text
    assert "below the minimum 1000000000000000000 wei" in text
    assert "price 1 wei is below the minimum 5 wei" in text
    assert "privacy cost 1 exceeds the per-task cap 0.5" in text
    assert "rate limit: 2 task(s) per hour" in text
    assert len(v.reasons) == 5


def test_a_price_asked_but_not_offered_keeps_the_task_pending() -> None:
    v = decide(Policy(min_price=1), offer(price=None))
    assert v.outcome == PENDING and "pays no price" in v.reason
    assert decide(Policy(min_price=1), offer(price=1)).outcome == ACCEPT


def test_a_deny_listed_requester_is_rejected_outright() -> None:
    v = decide(Policy(requesters_deny=(ME.upper().replace("0X", "0x"),)), offer())
    assert v.outcome == REJECT and "deny-listed" in v.reason


def test_outside_reject_turns_pending_into_reject() -> None:
    v = decide(Policy(programs=("mpc.sum",), outside=REJECT), offer())
    assert v.outcome == REJECT


def test_rate_limit_counts_contributions_of_the_last_hour() -> None:
    assert decide(Policy(rate_limit=3), offer(), accepted_last_hour=2).outcome == ACCEPT
    assert decide(Policy(rate_limit=3), offer(), accepted_last_hour=3).outcome == PENDING


def test_config_reads_datasets_policies_and_amounts(tmp_path: Path) -> None:
    cfg_file = tmp_path / "owner.toml"
    cfg_file.write_text(
        'bootstrap = ["/ip4/127.0.0.1/tcp/1/p2p/x"]\nlog_format = "json"\npoll_interval = 0.5\n'
        '[[dataset]]\nname = "sales"\nfile = "sales.csv"\n'
        '[dataset.policy]\nprograms = ["mpc.mean"]\nmin_reward = "0.1ether"\nrate_limit = 3\n'
    )
    cfg = load_config(cfg_file, tmp_path, metrics_port=None)
    (ds,) = cfg.datasets
    assert ds.file == tmp_path / "sales.csv"
    assert ds.policy.min_reward == 10**17 and ds.policy.rate_limit == 3
    assert cfg.log_format == "json" and cfg.poll_interval == 0.5
    assert cfg.bootstrap == ["/ip4/127.0.0.1/tcp/1/p2p/x"]
    over = load_config(cfg_file, tmp_path, poll_interval=2.0)
    assert over.poll_interval == 2.0  # a flag wins over the file


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no [[dataset]]"),
        ("x = 1\n", "unknown key 'x'"),
        ('[[dataset]]\nname = "a"\n', "needs a name and a file"),
        ('[[dataset]]\nname = "a"\nfile = "f"\n[dataset.policy]\nprice = 1\n', "unknown key"),
        ('[[dataset]]\nname = "a"\nfile = "f"\n[dataset.policy]\nmin_reward = "lots"\n',
         "not an amount"),
        ('[[dataset]]\nname = "a"\nfile = "f"\n[[dataset]]\nname = "a"\nfile = "g"\n',
         "listed twice"),
        ("not toml [", "not TOML"),
    ],
)  # fmt: skip
def test_config_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "owner.toml"
    f.write_text(text)
    with pytest.raises(OwnerConfigError) as e:
        load_config(f, tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_amounts() -> None:
    assert parse_wei("0.5ether", "x") == 5 * 10**17
    assert parse_wei("2gwei", "x") == 2 * 10**9
    assert parse_wei(7, "x") == 7
    with pytest.raises(ValueError):
        parse_wei("1.5wei", "x")

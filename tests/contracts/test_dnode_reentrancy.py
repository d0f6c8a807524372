"""withdraw() pays exactly once even when the recipient re-enters from its default function."""

from __future__ import annotations

import pytest
from dnode_chain import ATTACKERS, ETHER, UNBOND_DELAY, Chain

from contracts.errors import TransactionReverted


def _ready(chain: Chain, name: str, *args) -> tuple:
    attacker = chain.deploy_vyper(ATTACKERS / name, chain.deployment.address, *args)
    sender = chain.w3.eth.accounts[0]
    tx = attacker.functions.setup(ETHER).transact({"from": sender, "value": 2 * ETHER})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    chain.advance(UNBOND_DELAY + 1)
    return attacker, sender


def test_reentrant_withdraw_swallowed_pays_once(chain: Chain) -> None:
    attacker, sender = _ready(chain, "reenter_withdraw.vy", True)
    dnode = chain.client(None)
    total_before = dnode.balance_of_contract()
    attacker.functions.cash_in().transact({"from": sender})
    assert attacker.functions.reentries().call() == 1
    assert attacker.functions.reentry_failed().call() is True
    assert chain.w3.eth.get_balance(attacker.address) == ETHER
    assert dnode.balance_of_contract() == total_before - ETHER
    assert dnode.credits(attacker.address) == 0
    assert dnode.node_info(attacker.address).stake == ETHER


def test_reentrant_withdraw_bubbled_reverts_everything(chain: Chain) -> None:
    attacker, sender = _ready(chain, "reenter_withdraw.vy", False)
    dnode = chain.client(None)
    total_before = dnode.balance_of_contract()
    with pytest.raises(Exception, match="registry: transfer failed"):
        attacker.functions.cash_in().transact({"from": sender})
    assert dnode.balance_of_contract() == total_before
    assert chain.w3.eth.get_balance(attacker.address) == 0
    assert dnode.node_info(attacker.address).unbonding == ETHER


def test_rejecting_recipient_keeps_credits(chain: Chain) -> None:
    rejecter, sender = _ready(chain, "rejecter.vy")
    dnode = chain.client(None)
    with pytest.raises(Exception, match="registry: transfer failed"):
        rejecter.functions.cash_in().transact({"from": sender})
    assert dnode.node_info(rejecter.address).unbonding == ETHER
    assert isinstance(TransactionReverted("withdraw", "x"), Exception)

"""Join intents: the signature a node gives to consent to a committee seat.

It lives with the chain bindings because ``ChainClient.join_signature`` produces it and the
contract's form_committee checks it; ``oracle.attestation`` re-exports it beside the report
signatures and recovers it (``recover_join``).
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

JOIN_TAG = keccak(text="dnode.join.v1")


def join_digest(chain_id: int, contract: str, task_id: int, round: int = 0) -> bytes:
    """The message a node signs to consent to a committee seat (round 0) or a re-execution
    seat (round 1): keccak256(abi_encode(keccak256("dnode.join.v1"), chain_id, contract,
    task_id, round)), EIP-191 prefixed like reports."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "uint256"],
            [JOIN_TAG, chain_id, to_checksum_address(contract), task_id, round],
        )
    )


def sign_join(account_or_key: Any, chain_id: int, contract: str, task_id: int, round: int = 0):
    """65-byte r||s||v join intent, accepted by form_committee / form_rerun_committee."""
    key = getattr(account_or_key, "key", account_or_key)
    signed = Account.sign_message(
        encode_defunct(primitive=join_digest(chain_id, contract, task_id, round)), key
    )
    v = signed.v if signed.v >= 27 else signed.v + 27
    return signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([v])

"""Committee report signatures, byte-identical to what the dnode contract's ``report`` checks.

digest  = keccak256(abi_encode(keccak256("dnode.report.v1"), chain_id, contract, task_id,
                               result_digest))
          # types: (bytes32, uint256, address, uint256, bytes32)
signed  = keccak256("\\x19Ethereum Signed Message:\\n32" ++ digest)   # EIP-191 personal sign
sig     = r (32) || s (32, low-s) || v (1, 27 or 28)
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from dnode.contracts.signing import JOIN_TAG, join_digest, sign_join
from dnode.oracle.errors import BadSignature

REPORT_TAG = keccak(text="dnode.report.v1")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
__all__ = ["JOIN_TAG", "join_digest", "recover_join", "recover_signer", "sign_join", "sign_report"]


def result_digest(result: bytes) -> bytes:
    """keccak256 of the raw result bytes, as stored on-chain."""
    return keccak(bytes(result))


def report_digest(
    chain_id: int, contract_address: str, task_id: int, result_digest: bytes
) -> bytes:
    """The 32-byte message a committee member attests to (before the EIP-191 prefix)."""
    if len(result_digest) != 32:
        raise BadSignature(f"result digest must be 32 bytes, got {len(result_digest)}")
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "bytes32"],
            [REPORT_TAG, chain_id, to_checksum_address(contract_address), task_id, result_digest],
        )
    )


def _prefixed_hash(chain_id: int, contract: str, task_id: int, digest: bytes) -> bytes:
    msg = report_digest(chain_id, contract, task_id, digest)
    return keccak(b"\x19Ethereum Signed Message:\n32" + msg)


def sign_report(
    account_or_key: Any, chain_id: int, contract: str, task_id: int, result: bytes
) -> bytes:
    """Sign a task result; returns 65 bytes r||s||v (v in {27, 28}, low s) ready for report()."""
    key = getattr(account_or_key, "key", account_or_key)
    digest = report_digest(chain_id, contract, task_id, result_digest(result))
    signed = Account.sign_message(encode_defunct(primitive=digest), key)
    v = signed.v if signed.v >= 27 else signed.v + 27
    sig = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([v])
    # eth_account already produces canonical low-s signatures; assert rather than trust
    if signed.s > HALF_N:  # pragma: no cover
        raise BadSignature("signer produced a high-s signature")
    return sig


def recover_signer(
    chain_id: int, contract: str, task_id: int, result_digest: bytes, signature: bytes
) -> str:
    """Recover the checksummed signer address, applying the same rejections as the contract."""
    signature = bytes(signature)
    if len(signature) != 65:
        raise BadSignature(f"expected 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise BadSignature(f"v must be 27 or 28, got {v}")
    if s == 0 or s > HALF_N:
        raise BadSignature("high-s (malleable) or zero s")
    if r == 0 or r >= SECP256K1_N:
        raise BadSignature("r out of range")
    h = _prefixed_hash(chain_id, contract, task_id, result_digest)
    try:
        pub = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(h)
    except Exception as exc:  # eth_keys raises BadSignature/ValidationError variants
        raise BadSignature(f"cannot recover signer: {exc}") from exc
    return pub.to_checksum_address()


def recover_join(chain_id: int, contract: str, task_id: int, round: int, signature: bytes) -> str:
    """Signer of a join intent (raises BadSignature on junk)."""
    signature = bytes(signature)
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise BadSignature("join signature must be 65 bytes with v in {27, 28}")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > HALF_N:
        raise BadSignature("high-s (malleable) or zero s")
    try:
        return Account.recover_message(
            encode_defunct(primitive=join_digest(chain_id, contract, task_id, round)),
            signature=signature,
        )
    except Exception as exc:  # eth_keys raises several types for junk
        raise BadSignature(f"cannot recover signer: {exc}") from exc

"""Encrypted key storage in the standard eth-account JSON keystore format (scrypt).

Keys never leave this file unencrypted; nodes derive their libp2p identity from the same key
so the peer id is stable across restarts without a second secret on disk.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from dnode.node.errors import KeystoreError, WrongPassword

# Lighter scrypt than geth's default so that tests and the devnet demo stay quick; still a KDF.
SCRYPT_N = 1 << 14


def _path_for(directory: Path, address: str) -> Path:
    return directory / f"{to_checksum_address(address).lower()[2:]}.json"


def save_key(directory: Path, private_key: bytes | str, password: str) -> tuple[str, Path]:
    """Encrypt ``private_key`` into ``directory``; returns (address, file)."""
    try:
        acct = Account.from_key(private_key)
    except (ValueError, TypeError) as e:
        raise KeystoreError(str(directory), f"not a valid private key ({e})") from None
    directory.mkdir(parents=True, exist_ok=True)
    path = _path_for(directory, acct.address)
    if path.exists():
        raise KeystoreError(str(path), f"account {acct.address} already exists")
    blob = Account.encrypt(acct.key, password, kdf="scrypt", iterations=SCRYPT_N)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(blob, f)
    tmp.replace(path)
    return acct.address, path


def new_account(directory: Path, password: str) -> tuple[str, Path]:
    return save_key(directory, secrets.token_bytes(32), password)


def find_keyfile(directory: Path, account: str | None) -> Path:
    """Resolve an address or a file path to a keystore file; with one key, ``None`` picks it."""
    if account and Path(account).is_file():
        return Path(account)
    if not directory.is_dir():
        raise KeystoreError(str(directory), "no keystore directory (run `dnode account new`)")
    files = sorted(directory.glob("*.json"))
    if account:
        try:
            want = _path_for(directory, account)
        except ValueError:
            raise KeystoreError(str(directory), f"{account!r} is not an address or file") from None
        if want.exists():
            return want
        raise KeystoreError(str(directory), f"no key for {account}")
    if len(files) == 1:
        return files[0]
    if not files:
        raise KeystoreError(str(directory), "no keys (run `dnode account new`)")
    raise KeystoreError(str(directory), f"{len(files)} keys; choose one with --account")


def load_account(path: Path, password: str) -> LocalAccount:
    try:
        blob = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KeystoreError(str(path), f"unreadable ({e})") from None
    try:
        key = Account.decrypt(blob, password)
    except ValueError as e:
        if "MAC mismatch" in str(e) or "password" in str(e).lower():
            raise WrongPassword(str(path)) from None
        raise KeystoreError(str(path), f"cannot decrypt ({e})") from None
    return Account.from_key(key)


def list_accounts(directory: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for f in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            out.append((to_checksum_address("0x" + json.loads(f.read_text())["address"]), f))
        except (OSError, ValueError, KeyError):
            continue
    return out


def identity_seed(account: LocalAccount) -> bytes:
    """32-byte seed for the node's Ed25519 libp2p identity, bound to its Ethereum key."""
    return keccak(b"dnode/libp2p-identity/v1" + bytes(account.key))

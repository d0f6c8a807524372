from __future__ import annotations

import stat
from pathlib import Path

import pytest
from eth_account import Account

from dnode.node import keystore
from dnode.node.errors import KeystoreError, WrongPassword
from dnode.node.p2p import peer_id_from_seed


def test_new_load_and_wrong_password(tmp_path: Path) -> None:
    address, path = keystore.new_account(tmp_path, "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.load_account(path, "pw").address == address
    with pytest.raises(WrongPassword, match="wrong password"):
        keystore.load_account(path, "nope")
    assert keystore.list_accounts(tmp_path) == [(address, path)]


def test_import_never_stores_the_key_in_clear(tmp_path: Path) -> None:
    key = Account.create().key
    address, path = keystore.save_key(tmp_path, key, "pw")
    assert key.hex() not in path.read_text()
    with pytest.raises(KeystoreError, match="already exists"):
        keystore.save_key(tmp_path, key, "pw")
    with pytest.raises(KeystoreError, match="not a valid private key"):
        keystore.save_key(tmp_path, "0x1234", "pw")


def test_find_keyfile_needs_a_choice_with_two_keys(tmp_path: Path) -> None:
    a, pa = keystore.new_account(tmp_path, "pw")
    assert keystore.find_keyfile(tmp_path, None) == pa
    b, pb = keystore.new_account(tmp_path, "pw")
    with pytest.raises(KeystoreError, match="choose one with --account"):
        keystore.find_keyfile(tmp_path, None)
    assert keystore.find_keyfile(tmp_path, b) == pb
    with pytest.raises(KeystoreError, match="no keystore directory"):
        keystore.find_keyfile(tmp_path / "missing", None)


def test_peer_id_is_stable_and_bound_to_the_key(tmp_path: Path) -> None:
    a, b = Account.create(), Account.create()
    pa = peer_id_from_seed(keystore.identity_seed(a))
    assert pa == peer_id_from_seed(keystore.identity_seed(Account.from_key(a.key)))
    assert pa != peer_id_from_seed(keystore.identity_seed(b))

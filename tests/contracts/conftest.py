"""Fixtures for the contract tests (helpers live in dnode_chain.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dnode_chain import Chain, make_account, new_chain, shutdown_all

from dnode.contracts.client import ChainClient


@pytest.fixture
def chain() -> Iterator[Chain]:
    yield new_chain()
    shutdown_all()


@pytest.fixture
def funded(chain: Chain) -> Callable[[str], ChainClient]:
    """Factory: a ChainClient for a freshly funded deterministic account."""

    def make(label: str) -> ChainClient:
        acct = make_account(label)
        chain.fund(acct)
        return chain.client(acct)

    return make

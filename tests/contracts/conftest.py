"""Fixtures for the contract tests (helpers live in dnode_chain.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dnode_chain import Chain, make_account, new_chain, shutdown_all

from dnode.contracts.client import ChainClient


@pytest.fixture
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A fresh chain with dnode deployed: anvil unless the test is parametrized with an
    engine (indirect) or its module sets CHAIN_ENGINE (dnode_chain.CONTRACT_CHAIN)."""
    engine = getattr(request, "param", None) or getattr(request.module, "CHAIN_ENGINE", None)
    yield new_chain(engine)
    shutdown_all()


@pytest.fixture
def funded(chain: Chain) -> Callable[[str], ChainClient]:
    """Factory: a ChainClient for a freshly funded deterministic account."""

    def make(label: str) -> ChainClient:
        acct = make_account(label)
        chain.fund(acct)
        return chain.client(acct)

    return make

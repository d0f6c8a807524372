"""compile / manifest / deploy / client plumbing: the failure modes users will actually hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dnode_chain import Chain
from web3 import Web3

from dnode.contracts import compile as compiler
from dnode.contracts.client import ChainClient, decode_revert_reason
from dnode.contracts.compile import compile_contracts, compile_file
from dnode.contracts.deploy import combined_abi
from dnode.contracts.errors import ChainMismatch, CompileError, ManifestError, RpcUnreachable
from dnode.contracts.manifest import Deployment


def test_compile_is_cached_and_complete() -> None:
    a = compile_contracts()
    assert a is compile_contracts()
    art, court = a["dnode"], a["dnode_court"]
    assert art["bytecode"].startswith("0x") and court["bytecode"].startswith("0x")
    names = {i.get("name") for i in art["abi"]}
    for fn in ("register", "post_task", "form_committee", "report", "cosign", "finalize"):
        assert fn in names
    # litigation runs in the extension; the manifest's ABI joins both
    assert "dispute" not in names
    joined = {i.get("name") for i in combined_abi(art["abi"], court["abi"])}
    for fn in ("dispute", "form_rerun_committee", "report_rerun", "resolve_dispute", "withdraw"):
        assert fn in joined
    # moved to the extension for contract size (EIP-170), reached the same way
    for fn in ("cancel", "decline", "claim_seat"):
        assert fn in joined and fn not in names


def test_compiled_artifacts_are_reused_across_processes_only_for_the_same_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every cluster deploys: the second process must not spend ~6 s compiling unchanged
    sources, and an edited source must never be served a stale artifact."""
    fresh = compile_contracts()
    monkeypatch.setenv("DNODE_COMPILE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compiler, "_cache", {})
    compiled: list[str] = []

    def the_compiler(path: Path, *_a: object) -> dict:  # what compile_file gave (seconds each)
        compiled.append(path.stem)
        return fresh[path.stem]

    monkeypatch.setattr(compiler, "compile_file", the_compiler)
    assert compile_contracts() == fresh  # compiled (the cache is empty) and stored
    assert compiled == list(compiler.MAIN_CONTRACTS)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1

    def no_compiler(*_a: object, **_k: object) -> None:
        raise AssertionError("compiled although the sources did not change")

    monkeypatch.setattr(compiler, "_cache", {})  # a new process: memory cache empty
    monkeypatch.setattr(compiler, "compile_file", no_compiler)
    assert compile_contracts() == fresh

    # an edit anywhere under contracts/vyper (a module, not a main contract) -> new digest
    src = tmp_path / "vyper"
    shutil.copytree(compiler.VYPER_DIR, src)
    before = compiler.source_digest()
    monkeypatch.setattr(compiler, "VYPER_DIR", src)
    assert compiler.source_digest() == before  # the digest depends on content, not the path
    (src / "registry.vy").write_text((src / "registry.vy").read_text() + "\n# edited\n")
    assert compiler.source_digest() != before
    monkeypatch.setattr(compiler, "_cache", {})
    with pytest.raises(AssertionError, match="did not change"):
        compile_contracts()  # a cache miss goes to the compiler

    monkeypatch.setenv("DNODE_COMPILE_CACHE", "0")
    assert compiler.cache_dir() is None


def test_compile_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vy"
    bad.write_text("# pragma version 0.4.3\n@external\ndef f() -> uint256:\n    return x\n")
    with pytest.raises(CompileError) as err:
        compile_file(bad)
    assert "bad.vy" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CompileError, match="not found"):
        compile_file(tmp_path / "missing.vy")


def test_manifest_round_trip_and_errors(chain: Chain, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "deployment.json"
    chain.deployment.save(path)
    loaded = Deployment.load(path)
    assert loaded == chain.deployment
    assert loaded.params["challenge_period"] == 600
    with pytest.raises(ManifestError, match="file not found"):
        Deployment.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="invalid JSON"):
        Deployment.load(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    del data["address"]
    (tmp_path / "partial.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="missing field"):
        Deployment.load(tmp_path / "partial.json")


def test_chain_mismatch(chain: Chain) -> None:
    dep = chain.deployment
    wrong = Deployment(dep.chain_id + 1, dep.address, dep.abi, dep.deploy_block, dep.params)
    with pytest.raises(ChainMismatch):
        ChainClient(chain.w3, wrong, None)


def test_rpc_unreachable(chain: Chain) -> None:
    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 2}))
    with pytest.raises(RpcUnreachable, match="127.0.0.1:9"):
        ChainClient(w3, chain.deployment, None)


def test_decode_revert_reason_from_error_data() -> None:
    from eth_abi import encode
    from web3.exceptions import ContractLogicError

    data = "0x08c379a0" + encode(["string"], ["market: zero reward"]).hex()
    exc = ContractLogicError("execution reverted", data=data)
    assert decode_revert_reason(exc) == "market: zero reward"
    assert decode_revert_reason(ContractLogicError("execution reverted: oracle: x")) == "oracle: x"


def test_events_decode_all_kinds(chain: Chain, funded) -> None:
    c = funded("ev")
    c.register("12D3KooWev", 1)
    c.stake(10**18)
    evs = c.events(chain.deployment.deploy_block, c.latest_block())
    assert [e.name for e in evs] == ["NodeRegistered", "Staked", "SlotsAdded"]
    assert evs[0].args["peer_id"] == "12D3KooWev"
    assert evs[2].args["count"] == 10**18 // int(c.params()["seat_collateral"])
    assert evs[1].tx_hash.startswith("0x") and evs[1].block_number > evs[0].block_number
    assert c.block_timestamp() > 0

"""Deploy the dnode contract from source with a locally-held key (any EVM JSON-RPC node)."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from web3 import Web3

from dnode.contracts.client import RERUN_SEAT_WINDOW, rpc_guard, send_transaction
from dnode.contracts.compile import compile_contracts, interface_abis
from dnode.contracts.errors import ChainTooOld, ContractsError
from dnode.contracts.manifest import Deployment

CONTRACT_NAME = "dnode"
COURT_NAME = "dnode_court"
DATA_NAME = "dnode_data"
# the key of dnode_data's own ABI in Deployment.interfaces: dnode returns what a data function
# returns ABI-encoded once more as `bytes` (see dnode.vy __default__), decoded with this ABI
DATA_ABI_KEY = "dnode_data"


def _as_bytes_return(entry: dict[str, Any]) -> dict[str, Any]:
    if entry.get("type") != "function" or not entry.get("outputs"):
        return entry
    return {**entry, "outputs": [{"name": "", "type": "bytes"}]}


def combined_abi(
    main: list[dict[str, Any]],
    extension: list[dict[str, Any]],
    data: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The ABI clients use at dnode's address: its own entries plus the extensions' functions
    and events (reached through dnode's DELEGATECALL fallback), without duplicates. The data
    extension's functions are declared returning `bytes` (what dnode's fallback returns)."""
    seen = {(e.get("type"), e.get("name")) for e in main}
    extra = [
        e
        for e in extension
        if e.get("type") in ("function", "event") and (e.get("type"), e.get("name")) not in seen
    ]
    seen |= {(e.get("type"), e.get("name")) for e in extra}
    extra += [
        _as_bytes_return(e)
        for e in data or []
        if e.get("type") in ("function", "event") and (e.get("type"), e.get("name")) not in seen
    ]
    return [*main, *extra]


#: the EVM the contracts are compiled for (vyper 0.4's default). Compiled for Shanghai (no
#: TSTORE/MCOPY) the main contract's runtime is 25,330 bytes, over EIP-170's 24,576-byte
#: limit (vyper 0.4.3, measured with either optimisation): older chains cannot host dnode.
EVM_VERSION = "cancun"
# creation code run by eth_call: it ends in STOP if the chain knows the version's opcode
_PROBES = (("cancun", "0x5f5c00"), ("shanghai", "0x5f00"))  # PUSH0 TLOAD / PUSH0


def chain_evm(w3: Web3) -> str:
    """The newest EVM version the chain runs, probed with eth_call (Cancun: TLOAD;
    Shanghai: PUSH0); "paris or older" when neither runs."""
    for version, code in _PROBES:
        try:
            w3.eth.call({"data": code})  # type: ignore[typeddict-item]
            return version
        except Exception:  # noqa: BLE001 - an invalid opcode, in each client's words
            continue
    return "paris or older"


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    *,
    min_stake: int,
    seat_collateral: int,
    unbond_delay: int,
    challenge_period: int,
    dispute_bond: int | None = None,
    dispute_period: int | None = None,
    min_reward: int | None = None,
    min_compute_window: int | None = None,
    claim_period: int | None = None,
    rpc: str | None = None,
) -> Deployment:
    """Compile, deploy and return the manifest of a fresh dnode contract.

    Defaults: the dispute bond equals the seat collateral; a re-execution gets
    max(4 * challenge_period, 4 * RERUN_SEAT_WINDOW) seconds (its committee must form in the
    first quarter, which the contract requires to cover the skip schedule: >= 190 s);
    the minimum reward is seat_collateral // 100 (at least 1 wei); skipped candidates get
    min(30, dispute_period // 2) seconds to claim their seat; a compute window is at least
    max(60, claim_period + 1) seconds. A chain older than Cancun is refused with
    :class:`ChainTooOld` before anything is sent.
    """
    found = chain_evm(w3)
    if found != EVM_VERSION:
        raise ChainTooOld(EVM_VERSION, found)  # before anything is compiled or sent
    artifacts = compile_contracts()
    artifact, court = artifacts[CONTRACT_NAME], artifacts[COURT_NAME]
    data_art = artifacts[DATA_NAME]
    params = {
        "min_stake": int(min_stake),
        "seat_collateral": int(seat_collateral),
        "unbond_delay": int(unbond_delay),
        "challenge_period": int(challenge_period),
        "dispute_bond": int(seat_collateral if dispute_bond is None else dispute_bond),
        "dispute_period": int(
            max(4 * int(challenge_period), 4 * RERUN_SEAT_WINDOW)
            if dispute_period is None
            else dispute_period
        ),
    }
    claim = min(30, params["dispute_period"] // 2) if claim_period is None else int(claim_period)
    params["min_reward"] = int(
        max(1, int(seat_collateral) // 100) if min_reward is None else min_reward
    )
    params["min_compute_window"] = int(
        max(60, claim + 1) if min_compute_window is None else min_compute_window
    )
    params["claim_period"] = claim
    args = encode(["uint256"] * len(params), list(params.values()))
    # the extensions first: dnode's constructor takes their addresses (same parameters, so
    # the immutables every copy of the modules reads agree; dnode checks)
    extensions = []
    for name, art in ((COURT_NAME, court), (DATA_NAME, data_art)):
        code = art["bytecode"] + args.hex()
        receipt = send_transaction(w3, deployer, "deploy", to=None, data=code)
        ext_address = receipt.get("contractAddress")
        if not ext_address:
            raise ContractsError(f"deploy: receipt has no {name} address")
        extensions.append(ext_address)
    args += encode(["address", "address"], extensions)
    data = artifact["bytecode"] + args.hex()
    receipt = send_transaction(w3, deployer, "deploy", to=None, data=data)
    address = receipt.get("contractAddress")
    if not address:
        raise ContractsError("deploy: receipt has no contract address")
    with rpc_guard(w3, "eth_chainId"):
        chain_id = int(w3.eth.chain_id)
    uri = getattr(w3.provider, "endpoint_uri", None)
    return Deployment(
        chain_id=chain_id,
        address=Web3.to_checksum_address(address),
        abi=combined_abi(artifact["abi"], court["abi"], data_art["abi"]),
        deploy_block=int(receipt["blockNumber"]),
        params=params,
        rpc=rpc or (str(uri) if uri else None),
        interfaces={**interface_abis(), DATA_ABI_KEY: data_art["abi"]},
    )

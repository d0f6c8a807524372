"""Deployment manifest: where the dnode contract lives and how it was configured."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dnode.contracts.errors import ManifestError

MANIFEST_VERSION = 1
_REQUIRED = ("chain_id", "address", "abi", "deploy_block")


@dataclass(frozen=True)
class Deployment:
    """Everything a client needs to talk to one deployed dnode contract."""

    chain_id: int
    address: str
    abi: list[dict[str, Any]]
    deploy_block: int
    params: dict[str, int] = field(default_factory=dict)
    rpc: str | None = None  # hint only; the caller's configured endpoint wins
    # ABIs of the consumer interfaces (IDnodeConsumer: what a dApp implements; IDnodeOracle:
    # what it calls on `address`); see docs/protocol.md, "Consuming results"
    interfaces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": MANIFEST_VERSION, **asdict(self)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (tmp + rename) so a crash never leaves half a manifest."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, p)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Deployment:
        if not isinstance(data, dict):
            raise ManifestError(source, "top level must be a JSON object")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ManifestError(source, f"missing field(s): {', '.join(missing)}")
        try:
            chain_id = int(data["chain_id"])
            deploy_block = int(data["deploy_block"])
        except (TypeError, ValueError) as exc:
            raise ManifestError(source, f"chain_id/deploy_block must be integers ({exc})") from exc
        address = data["address"]
        if not (isinstance(address, str) and address.startswith("0x") and len(address) == 42):
            raise ManifestError(source, f"address is not a 0x-prefixed 20-byte hex: {address!r}")
        abi = data["abi"]
        if not isinstance(abi, list):
            raise ManifestError(source, "abi must be a list")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ManifestError(source, "params must be an object")
        try:
            clean_params = {str(k): int(v) for k, v in params.items()}
        except (TypeError, ValueError) as exc:
            raise ManifestError(source, f"params values must be integers ({exc})") from exc
        rpc = data.get("rpc")
        interfaces = data.get("interfaces") or {}
        if not isinstance(interfaces, dict) or not all(
            isinstance(v, list) for v in interfaces.values()
        ):
            raise ManifestError(source, "interfaces must map names to ABI lists")
        return cls(
            chain_id=chain_id,
            address=address,
            abi=abi,
            deploy_block=deploy_block,
            params=clean_params,
            rpc=rpc if isinstance(rpc, str) else None,
            interfaces={str(k): v for k, v in interfaces.items()},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Deployment:
        """Read a manifest; any problem becomes a one-line ManifestError."""
        p = Path(path)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise ManifestError(str(p), "file not found (deploy first?)") from None
        except OSError as exc:
            raise ManifestError(str(p), f"cannot read: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(str(p), f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
        return cls.from_dict(data, str(p))


def save(deployment: Deployment, path: str | os.PathLike[str]) -> None:
    """Module-level alias of ``Deployment.save``."""
    deployment.save(path)


def load(path: str | os.PathLike[str]) -> Deployment:
    """Module-level alias of ``Deployment.load``."""
    return Deployment.load(path)

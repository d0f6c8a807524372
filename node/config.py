"""The node's settings and their defaults (one definition; the CLI fills it from flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from dnode.node.chainwatch import DEFAULT_CONFIRMATIONS
from dnode.node.retention import DEFAULT_RETENTION


@dataclass
class NodeConfig:
    home: Path
    account: LocalAccount
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False
    max_tasks: int = 4
    poll_interval: float = 0.5
    mpc_timeout: float = 120.0
    auto_finalize: bool = True
    tx_stuck_after: float = 30.0  # seconds before a pending tx is re-sent with higher fees
    confirmations: int = DEFAULT_CONFIRMATIONS  # blocks below the head before acting on events
    metrics_port: int | None = 0  # 127.0.0.1 port of /metrics and /status; 0: any, None: off
    share_retention: float = DEFAULT_RETENTION  # seconds shares are kept after settlement

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

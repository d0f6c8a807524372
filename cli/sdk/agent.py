"""A data owner's agent, run in-process: the same loop ``dnode owner start`` runs (one libp2p
host, the agent's chain watcher and deliveries), in a background thread with its own trio loop
so a notebook or a script keeps going while it serves."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnode.cli.sdk.errors import SdkError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from dnode.contracts.client import ChainClient
    from dnode.node.owner.config import OwnerConfig


def agent_identity(account: Any) -> bytes:
    """The agent's libp2p identity: bound to the owner key, distinct from a node's."""
    from eth_utils import keccak

    return keccak(b"dnode/owner-agent-identity/v1" + bytes(account.key))


def agent_config(
    home: Path,
    datasets: Sequence[Mapping[str, Any]],
    *,
    bootstrap: Sequence[str] = (),
    confirmations: int | None = None,
    poll_interval: float | None = None,
    metrics_port: int | None = None,
) -> OwnerConfig:
    """An owner agent's settings from Python values (the keys of owner.toml)."""
    from dnode.node.owner.config import Dataset, OwnerConfig, parse_policy

    cfg = OwnerConfig(home=Path(home), bootstrap=list(bootstrap))
    if confirmations is not None:
        cfg.confirmations = confirmations
    if poll_interval is not None:
        cfg.poll_interval = poll_interval
    cfg.metrics_port = metrics_port
    out = []
    for i, d in enumerate(datasets):
        name, file = d.get("name") or f"dataset-{i + 1}", d.get("file")
        if not file:
            raise SdkError(f"owner agent dataset {name!r} needs a file")
        try:
            policy = parse_policy(dict(d.get("policy", {})), f"dataset {name!r} policy")
        except ValueError as e:
            raise SdkError(str(e)) from None
        out.append(Dataset(str(name), Path(file), policy, int(d.get("dataset_id", 0))))
    if not out:
        raise SdkError("the owner agent needs at least one dataset")
    cfg.datasets = tuple(out)
    return cfg


async def serve_owner_agent(
    cfg: OwnerConfig,
    account: LocalAccount,
    chain: ChainClient,
    on_ready: Callable[[dict[str, Any]], None],
    until: Callable[[], Awaitable[None]],
) -> None:
    """Run the agent until ``until()`` returns (a signal, a stop request); ``on_ready`` gets
    its address, peer id, listen addresses and metrics URL once it serves."""
    import trio

    from dnode.node.owner.agent import OwnerAgent
    from dnode.node.owner.state import open_owner_state
    from dnode.node.p2p import open_host
    from dnode.node.protocol import TOPIC_TASKS

    state = open_owner_state(cfg.state_dir)  # first: one agent per home
    try:
        async with open_host(
            agent_identity(account), cfg.listen, cfg.bootstrap, topics=[TOPIC_TASKS]
        ) as host:
            agent = OwnerAgent(cfg, account, chain, host, state)
            async with trio.open_nursery() as nursery:
                await nursery.start(agent.run)
                on_ready({"address": account.address, "peer_id": host.peer_id,
                          "addrs": host.addrs, "metrics": agent.metrics_url})  # fmt: skip
                await until()
                nursery.cancel_scope.cancel()
    finally:
        close = getattr(state, "close", None)
        if close is not None:
            close()


class OwnerAgentHandle:
    """An owner agent running in a background thread (see :meth:`Client.owner_agent`)."""

    def __init__(self) -> None:
        self.ready: dict[str, Any] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._token: Any = None
        self._stop: Any = None

    @classmethod
    def start(
        cls, cfg: OwnerConfig, account: LocalAccount, chain: ChainClient, timeout: float = 60
    ) -> OwnerAgentHandle:
        import trio

        h = cls()

        async def main() -> None:
            h._token = trio.lowlevel.current_trio_token()
            h._stop = trio.Event()

            def ready(info: dict[str, Any]) -> None:
                h.ready = info
                h._ready.set()

            await serve_owner_agent(cfg, account, chain, ready, h._stop.wait)

        def target() -> None:
            try:
                trio.run(main)
            except BaseException as e:  # noqa: BLE001 - reported by start() or stop()
                h._error = e
            finally:
                h._ready.set()

        h._thread = threading.Thread(target=target, name="dnode-owner-agent", daemon=True)
        h._thread.start()
        if not h._ready.wait(timeout):
            raise SdkError(f"the owner agent did not start within {timeout:.0f} s")
        if h._error is not None:
            raise _one_line(h._error)
        return h

    @property
    def address(self) -> str:
        return str(self.ready.get("address", ""))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30) -> None:
        """Stop the agent (its deliveries in flight are cancelled) and wait for its thread."""
        import trio

        if self._thread is None:
            return
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout)
        self._thread = None
        if self._error is not None:
            raise _one_line(self._error)

    def __enter__(self) -> OwnerAgentHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _one_line(e: BaseException) -> BaseException:
    """The first known error inside a trio exception group, else the error itself."""
    from dnode.cli.sdk import ERRORS

    if isinstance(e, BaseExceptionGroup):
        for leaf in e.exceptions:
            found = _one_line(leaf)
            if isinstance(found, ERRORS):
                return found
    return e

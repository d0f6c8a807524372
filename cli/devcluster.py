"""A local dnode network of separate OS processes, driven only through the ``dnode`` CLI.

Used by ``dnode demo`` and the end-to-end tests: a chain process (the embedded devnet, or any
``--rpc-url``), one process per node, and each requester or data owner as its own CLI call,
each with its own home directory and encrypted keystore, exactly as separate users would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eth_account import Account

from dnode.cli import forkserver
from dnode.contracts.client import ChainClient, connect
from dnode.contracts.manifest import Deployment

#: a node or chain process: spawned, or forked from the cluster's fork server
Proc = subprocess.Popen[bytes] | forkserver.ForkedProcess

DEV_PASSWORD = "dev-only-password"  # the demo's keystores protect throwaway devnet keys


ANVIL_DIR = Path(__file__).resolve().parents[1] / "scripts" / "anvil"


def anvil_path() -> Path:
    """anvil as installed from the npm registry by scripts/install_anvil.sh."""
    path = ANVIL_DIR / "node_modules" / ".bin" / "anvil"
    if not path.exists():
        raise ClusterError(f"anvil is not installed (run scripts/install_anvil.sh): {path}")
    return path


class ClusterError(RuntimeError):
    """A cluster process failed; the message names it and the tail of its log."""


@dataclass(frozen=True)
class Placement:
    """Where the cluster's processes run when they are not all on this host's loopback: one
    host per user (a network namespace of scripts/netlab.py), given as the argv prefix that
    runs a command there and the address it listens on. The chain runs on host ``chain``;
    users the mapping does not name (the deployer, ...) run on ``default``. The process that
    drives the cluster must itself be on one of the hosts (it reads the chain and waits on it).
    """

    hosts: Mapping[str, tuple[Sequence[str], str]]  # name -> (argv prefix, address)
    default: str
    chain: str = "chain"

    def _host(self, name: str | None) -> tuple[Sequence[str], str]:
        return self.hosts.get(name or self.default) or self.hosts[self.default]

    def prefix(self, name: str | None) -> list[str]:
        return list(self._host(name)[0])

    def address(self, name: str | None) -> str:
        return self._host(name)[1]


class BlockTicker:
    """Mines an empty block every ``interval`` seconds (``evm_mine``) on an automining dev
    chain, so blocks keep coming without traffic and events reach their confirmation depth
    (a real chain produces blocks on its own)."""

    def __init__(self, rpc_url: str, interval: float) -> None:
        self.rpc_url, self.interval = rpc_url, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-ticker", daemon=True)

    def _run(self) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []})
        while not self._stop.wait(self.interval):
            req = urllib.request.Request(
                self.rpc_url, data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with contextlib.suppress(OSError, ValueError):
                urllib.request.urlopen(req, timeout=10).close()

    def start(self) -> BlockTicker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@dataclass
class Member:
    """One user of the network: a home directory with one encrypted key."""

    name: str
    home: Path
    address: str


@dataclass
class NodeProc:
    member: Member
    proc: Proc
    log_path: Path
    peer_id: str = ""
    addrs: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)  # the `dnode ... start` command, to restart
    restarts: int = 0
    metrics: str | None = None  # http://127.0.0.1:port of its /metrics and /status

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class DevCluster:
    def __init__(
        self,
        workdir: Path,
        *,
        rpc_url: str | None = None,
        engine: str | None = None,
        challenge_period: int = 5,
        dispute_period: int | None = None,
        accounts: int = 10,
        block_time: float | None = 1.0,
        say: Callable[[str], None] = lambda s: None,
        placement: Placement | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.external_rpc = rpc_url
        # the chain a cluster starts: the embedded devnet, or anvil (DNODE_CLUSTER_CHAIN)
        self.engine = engine or os.environ.get("DNODE_CLUSTER_CHAIN", "devnet")
        self.rpc_url = rpc_url or ""
        self.challenge_period = challenge_period
        self.dispute_period = dispute_period  # None: the deploy default
        self.accounts = accounts  # pre-funded dev accounts of the embedded devnet
        self.block_time = block_time  # empty block every so often on a chain we start
        self.ticker: BlockTicker | None = None
        self.say = say
        self.manifest = workdir / "deployment.json"
        self.password_file = workdir / "password.txt"
        self.password_file.write_text(DEV_PASSWORD)
        self.chain_proc: Proc | None = None
        self.nodes: list[NodeProc] = []
        self.agents: list[NodeProc] = []  # data owners' agents (dnode owner start)
        self.members: dict[str, Member] = {}
        self._logs: list[IO[bytes]] = []
        self._next_dev_key = 0
        self._key_lock = threading.Lock()  # members may be created from several threads
        self._forks: forkserver.ForkServer | None = None
        self.placement = placement  # None: every process on this host's 127.0.0.1

    # ---- processes ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DNODE_PASSWORD", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["DNODE_DEBUG"] = "1"  # a bug in a cluster process leaves its traceback in its log
        return env

    def _spawn(
        self,
        args: list[str],
        log_name: str,
        python: bool = True,
        append: bool = False,
        pipe_stdout: bool = True,
        where: str | None = None,
    ) -> tuple[Proc, Path]:
        """Start a process logging to WORKDIR/<log_name>.log, on host ``where`` when the
        cluster is placed on several. Only nodes keep stdout as a pipe (one ready line); a
        chain logs to stdout without end, and an undrained pipe would fill up and block it
        (anvil then stops answering)."""
        log_path = self.workdir / f"{log_name}.log"
        log = open(log_path, "ab" if append else "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        forks = self._forkserver() if python else None
        if forks is not None:
            with contextlib.suppress(forkserver.ForkServerError):
                out = None if pipe_stdout else log.fileno()
                return forks.spawn(args, self._env(), out, log.fileno()), log_path
        argv = [sys.executable, "-m", "dnode.cli", *args] if python else args
        if self.placement is not None:
            argv = [*self.placement.prefix(where), *argv]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if pipe_stdout else log,
            stderr=log,
            env=self._env(),
            start_new_session=True,
        )
        return proc, log_path

    def dnode(
        self, member: Member | None, *args: str, timeout: float = 300, check: bool = True
    ) -> dict[str, Any]:
        """Run one ``dnode --json`` command as ``member``; returns its JSON output."""
        cmd = [
            sys.executable,
            "-m",
            "dnode.cli",
            "--json",
            "--rpc-url",
            self.rpc_url,
            "--manifest",
            str(self.manifest),
            "--password-file",
            str(self.password_file),
        ]
        if member is not None:
            cmd += ["--home", str(member.home)]
        r = self._run_cli([*cmd[3:], *args], timeout, member.name if member else None)
        if check and r.returncode != 0:
            raise ClusterError(
                f"dnode {' '.join(args)} failed: {r.stderr.decode().strip()[-2000:]}"
            )
        out = r.stdout.decode().strip().splitlines()
        return json.loads(out[-1]) if out else {}

    def _forkserver(self) -> forkserver.ForkServer | None:
        """The cluster's warm fork server (started on first use), or None when disabled or
        when processes run on several hosts (a fork stays on the server's host)."""
        if not forkserver.enabled() or self.placement is not None:
            return None
        with self._key_lock:
            if self._forks is None or not self._forks.alive():
                self._forks = forkserver.ForkServer(self._env(), self.workdir / "forkserver.log")
            return self._forks

    def _run_cli(
        self, argv: list[str], timeout: float, where: str | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """``python -m dnode.cli ARGV`` (on host ``where`` when placed), forked from the warm
        fork server when it is enabled (each command is still its own process; see
        :mod:`dnode.cli.forkserver`)."""
        forks = self._forkserver()
        if forks is not None:
            with contextlib.suppress(forkserver.ForkServerError):
                return forks.run(argv, self._env(), timeout)
        cmd = [sys.executable, "-m", "dnode.cli", *argv]
        if self.placement is not None:
            cmd = [*self.placement.prefix(where), *cmd]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=self._env())

    def start_chain(self) -> None:
        if self.external_rpc:
            return
        port = free_port()
        where = self.placement.chain if self.placement else None
        host = self.placement.address(where) if self.placement else "127.0.0.1"
        self.rpc_url = f"http://{host}:{port}"
        if self.engine == "anvil":
            cmd = [str(anvil_path()), "--host", host, "--port", str(port)]
            cmd += ["--accounts", str(self.accounts)]
            self.chain_proc, log_path = self._spawn(
                cmd, "chain", python=False, pipe_stdout=False, where=where
            )
        else:
            self.chain_proc, log_path = self._spawn(
                ["chain", "--host", host, "--port", str(port), "--accounts", str(self.accounts)]
                + ["--block-time", str(self.block_time or 0)],
                "chain",
                pipe_stdout=False,
                where=where,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.chain_proc.poll() is not None:
                raise ClusterError(f"chain exited: {_tail(log_path)}")
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                name = "anvil" if self.engine == "anvil" else "embedded devnet"
                self.say(f"chain  {name} at {self.rpc_url}")
                if self.block_time and self.engine == "anvil":  # `dnode chain` ticks itself
                    self.ticker = BlockTicker(self.rpc_url, self.block_time).start()
                return
            time.sleep(0.2)
        raise ClusterError("chain did not start within 60 s")

    def dev_key(self) -> str:
        from dnode.contracts.devnet import dev_keys

        with self._key_lock:
            self._next_dev_key += 1
            n = self._next_dev_key
        if n >= self.accounts and not self.external_rpc:
            raise ClusterError(f"the devnet funds only {self.accounts} dev accounts")
        return dev_keys(n + 1)[n]

    def deploy(self) -> dict[str, Any]:
        out = self.dnode(
            None,
            "--home",
            str(self.workdir / "deployer"),
            "deploy",
            "--dev-account",
            "0",
            "--challenge-period",
            str(self.challenge_period),
            "--unbond-delay",
            "60",
            *(["--dispute-period", str(self.dispute_period)] if self.dispute_period else []),
        )
        self.say(f"deploy dnode contract {out['address']} (compiled from Vyper source)")
        return out

    def member(self, name: str) -> Member:
        """A new user with its own home and a funded dev key, imported into its keystore."""
        home = self.workdir / name
        key = self.dev_key()
        keyfile = self.workdir / f".{name}.key"
        keyfile.write_text(key)
        try:
            out = self.dnode(
                None, "--home", str(home), "account", "import", "--private-key-file", str(keyfile)
            )
        finally:
            keyfile.unlink()
        m = Member(name, home, out["address"])
        assert m.address == Account.from_key(key).address
        self.members[name] = m
        return m

    def start_node(
        self,
        name: str,
        stake: str = "2ether",
        bootstrap: list[str] | None = None,
        extra_args: list[str] | None = None,
        capabilities: str = "mpc",
        price: str = "0",
        capacity: int = 4,
    ) -> NodeProc:
        """Stake (declaring price and capacity) and start a node; ``extra_args`` go to
        ``dnode start`` (e.g. --max-tasks)."""
        m = self.members.get(name) or self.member(name)
        self.dnode(m, "stake", "--amount", stake, "--capabilities", capabilities,
                   "--price", price, "--capacity", str(capacity))  # fmt: skip
        args = [
            "--rpc-url",
            self.rpc_url,
            "--manifest",
            str(self.manifest),
            "--home",
            str(m.home),
            "--password-file",
            str(self.password_file),
            "start",
        ]
        for b in bootstrap if bootstrap is not None else self.bootstrap():
            args += ["--bootstrap", b]
        args += extra_args or []
        if self.placement is not None and "--listen" not in args:
            args += ["--listen", f"/ip4/{self.placement.address(name)}/tcp/0"]
        if self.engine == "devnet" and not self.external_rpc and "--confirmations" not in args:
            # the embedded devnet is one instant-mining node: it never reorgs, so its nodes
            # act at the head (real chains keep the default depth; see docs/operations.md)
            args += ["--confirmations", "0"]
        proc, log_path = self._spawn(args, name, where=name)
        node = NodeProc(m, proc, log_path, args=args)
        self._await_ready(node)
        self.nodes.append(node)
        self.say(f"node   {name} {m.address} peer {node.peer_id[:16]}… (pid {proc.pid})")
        return node

    def start_nodes(self, names: Sequence[str], **kw: Any) -> list[NodeProc]:
        """Start several nodes at once (in ``names`` order in the result): the first one alone
        when none runs yet (the others bootstrap to it), the rest concurrently. Each start is
        a key import, a stake transaction and a process start, mostly waiting on the chain."""
        names = list(names)
        started: list[NodeProc] = []
        if not self.nodes and names:
            started.append(self.start_node(names.pop(0), **kw))
        if names:
            kw.setdefault("bootstrap", self.bootstrap())
            with ThreadPoolExecutor(min(4, len(names))) as pool:
                futs = [pool.submit(self.start_node, n, **kw) for n in names]
                started += [f.result() for f in futs]
        return started

    def _await_ready(self, node: NodeProc) -> None:
        proc = node.proc
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the daemon prints one JSON line when it serves
        if not line:
            raise ClusterError(f"node {node.member.name} exited: {_tail(node.log_path)}")
        ready = json.loads(line)
        node.peer_id, node.addrs = ready["peer_id"], ready["addrs"]
        node.metrics = ready.get("metrics")

    def restart_node(self, node: NodeProc, bootstrap: Sequence[str] = ()) -> None:
        """Start a stopped (or killed) node again with the same home, key and arguments; its
        bootstrap peers are replaced by ``bootstrap`` when given (e.g. the live nodes)."""
        if node.alive:
            raise ClusterError(f"node {node.member.name} is still running")
        args = list(node.args)
        if bootstrap:
            keep, skip = [], False
            for a in args:
                if skip:
                    skip = False
                elif a == "--bootstrap":
                    skip = True
                else:
                    keep.append(a)
            i = keep.index("start") + 1
            args = keep[:i] + [x for b in bootstrap for x in ("--bootstrap", b)] + keep[i:]
        node.proc, _ = self._spawn(args, node.member.name, append=True, where=node.member.name)
        node.restarts += 1
        self._await_ready(node)
        self.say(f"node   {node.member.name} restarted (pid {node.proc.pid})")

    def start_agent(
        self,
        member: Member,
        config: Path,
        extra_args: Sequence[str] = (),
        bootstrap: Sequence[str] | None = None,
    ) -> NodeProc:
        """Run ``dnode owner start`` (the data owner's agent) as ``member`` with ``config``,
        through ``bootstrap`` (default: the first node); logs to WORKDIR/agent-<name>.log."""
        args = [
            "--rpc-url", self.rpc_url, "--manifest", str(self.manifest),
            "--home", str(member.home), "--password-file", str(self.password_file),
            "owner", "start", "--config", str(config),
        ]  # fmt: skip
        for b in self.bootstrap() if bootstrap is None else bootstrap:
            args += ["--bootstrap", b]
        if self.engine == "devnet" and not self.external_rpc:
            args += ["--confirmations", "0"]  # as its nodes (see start_node)
        args += list(extra_args)
        if self.placement is not None and "--listen" not in args:
            args += ["--listen", f"/ip4/{self.placement.address(member.name)}/tcp/0"]
        proc, log_path = self._spawn(args, f"agent-{member.name}", where=member.name)
        agent = NodeProc(member, proc, log_path, args=args)
        self._await_ready(agent)
        self.agents.append(agent)
        self.say(f"agent  {member.name} {member.address} (pid {proc.pid})")
        return agent

    def restart_agent(self, agent: NodeProc) -> None:
        """Start a stopped (or killed) owner agent again with the same home and config."""
        if agent.alive:
            raise ClusterError(f"agent {agent.member.name} is still running")
        agent.proc, _ = self._spawn(
            agent.args, f"agent-{agent.member.name}", append=True, where=agent.member.name
        )
        agent.restarts += 1
        self._await_ready(agent)

    def post_mpc(
        self,
        requester: Member,
        owners: Sequence[Member],
        program: str = "mpc.mean",
        reward: str = "0.3ether",
        extra: Sequence[str] = (),
    ) -> int:
        """``dnode task post`` as ``requester``, announced through the first live nodes;
        ``extra`` goes to ``dnode task post`` (e.g. --seat-timeout)."""
        args = ["task", "post", "--program", program, "--reward", reward, *extra]
        for b in self.bootstrap(3):  # one node killed or busy must not lose the announcement
            args += ["--bootstrap", b]
        for m in owners:
            args += ["--owner", m.address]
        return int(self.dnode(requester, *args)["task_id"])

    def write_inputs(
        self, inputs: Mapping[str, Sequence[object]], header: str = ""
    ) -> dict[str, Path]:
        """One inputs file per data owner (one value per line), in the cluster's workdir."""
        files = {}
        for name, values in inputs.items():
            files[name] = self.workdir / f"{name}-inputs.csv"
            files[name].write_text(header + "\n".join(map(str, values)) + "\n")
        return files

    def contribute(self, owner: Member, task_id: int, inputs: Path, *extra: str) -> dict[str, Any]:
        """``dnode task contribute`` as ``owner``, through the first live nodes."""
        return self.dnode(
            owner,
            "task",
            "contribute",
            str(task_id),
            "--inputs",
            str(inputs),
            *[x for b in self.bootstrap(3) for x in ("--bootstrap", b)],
            *extra,
        )

    def contribute_all(
        self, task_id: int, owners: Mapping[str, Member], files: Mapping[str, Path]
    ) -> dict[str, dict[str, Any]]:
        """Every owner contributes at once, each as its own CLI process."""
        with ThreadPoolExecutor(max(1, len(owners))) as pool:
            futs = {
                n: pool.submit(self.contribute, m, task_id, files[n]) for n, m in owners.items()
            }
            return {n: f.result() for n, f in futs.items()}

    def wait_status(
        self, member: Member | None, task_id: int, *want: str, timeout: float = 180
    ) -> dict[str, Any]:
        """``dnode task status --until``: one process waits on the chain (each CLI start costs
        ~1.5 s of CPU, so polling with a command per second would keep a core busy)."""
        until = [a for w in want for a in ("--until", w)]
        return self.dnode(
            member,
            "task",
            "status",
            str(task_id),
            *until,
            "--timeout",
            str(timeout),
            timeout=timeout + 60,
        )

    def reader(self) -> ChainClient:
        """A read-only view of the deployed contracts over JSON-RPC (no key), for monitors."""
        return ChainClient(connect(self.rpc_url), Deployment.load(self.manifest))

    def watch(self, cond: Callable[[], Any], what: str, timeout: float, every: float = 0.5) -> Any:
        """Poll ``cond`` in this process (e.g. a read-only ChainClient over JSON-RPC, as any
        monitor reads the chain) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            got = cond()
            if got:
                return got
            if time.monotonic() > deadline:
                raise ClusterError(f"gave up after {timeout:.0f} s waiting: {what}")
            time.sleep(every)

    def bootstrap(self, many: int = 1) -> list[str]:
        """The first ``many`` live nodes' addresses (the first nodes' while all run)."""
        live = [n for n in self.nodes if n.alive] or self.nodes
        return [n.addrs[0] for n in live[:many]]

    def signal_node(self, node: NodeProc, sig: signal.Signals) -> None:
        """Send ``sig`` to a node's process group (SIGSTOP/SIGCONT pause and resume it)."""
        os.killpg(node.proc.pid, sig)

    def kill_node(self, node: NodeProc) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)

    def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        procs = [n.proc for n in [*self.agents, *self.nodes]]
        procs += [self.chain_proc] if self.chain_proc else []
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        if self._forks is not None:  # after its children's exits were reported
            self._forks.close()
            self._forks = None
        for f in self._logs:
            f.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[DevCluster]:
        try:
            self.start_chain()
            self.deploy()
            yield self
        finally:
            self.stop()

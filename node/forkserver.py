"""Start Python processes without paying for their imports each time.

A ``dnode`` command spends ~1.2 s of CPU importing web3, eth-account and libp2p before it does
anything, and an MPC party ~0.7 s importing numpy, gmpy2 and MPyC; a cluster runs hundreds of
commands and a node one party per seat and task.  A fork server imports a fixed list of
modules once (``preload``), then forks one child per process asked for, which calls the
server's ``entry`` function with its argv: every process still runs in its own OS process,
with its own environment, working directory, session and output, exactly as a fresh
``python -m ...`` would -- minus the start-up.  Users: :mod:`dnode.cli.forkserver` (``dnode``
commands and nodes of a dev cluster) and :mod:`dnode.node.mpc.executor` (MPC parties).

A server must hold no secret: every child starts as a copy of it.  It is started with the
environment of its children's kind (a party's server with a party's scrubbed environment), and
refuses to fork once it has a thread (fork in a threaded process can deadlock the child).

Protocol: a SOCK_SEQPACKET unix socket pair (one message per datagram, file descriptors
passed with SCM_RIGHTS).  The client sends ``{"id", "argv", "env", "cwd"}`` with two fds (the
child's stdout and stderr); the server answers ``{"id", "pid"}`` once the child runs (or
``{"id", "error"}``) and ``{"pid", "rc"}`` when it exits.  The server never starts a thread
or an event loop, so forking it is safe; when the client goes away it terminates its
children and exits.  :class:`ForkServer` is the client (thread-safe).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

__all__ = ["ForkServer", "ForkServerError", "ForkedProcess", "enabled", "serve"]

MAX_MSG = 1 << 20
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _threads() -> int:
    """OS threads of this process (C extensions' threads included, which threading misses)."""
    return len(os.listdir("/proc/self/task"))


def enabled(var: str = "DNODE_FORKSERVER") -> bool:
    """Whether fork servers are wanted (``VAR=0`` spawns plain processes)."""
    return os.environ.get(var, "1").lower() not in ("0", "", "false", "no")


def _resolve(target: str) -> Any:
    """``module:function`` -> the function (imported); ``module`` -> the module."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def _interpreter_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONUNBUFFERED"}


class ForkServerError(Exception):
    """The fork server is gone or refused a request (the caller may spawn instead)."""


# ---------------------------------------------------------------------------- server side


def _run_child(
    req: dict[str, Any], fds: list[int], entry: str, argv0: str, preset: dict[str, str]
) -> None:
    """In the forked child: become the requested process, run ``entry(argv)``, never
    return. ``preset``: what the preloaded modules put in the environment at import (MPyC's
    MPYC_MAXWORKERS, read later): kept unless the request sets it."""
    code = 1
    try:
        os.setsid()  # its own session and process group, like start_new_session=True
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(preset)
        os.environ.update(req["env"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (devnull, *fds):
            os.close(fd)
        # the dispositions a fresh interpreter starts with (Python ignores SIGPIPE so that a
        # write to a closed socket raises BrokenPipeError instead of killing the process)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        if "numpy" in sys.modules:  # numpy's legacy global state is not reseeded by fork
            sys.modules["numpy"].random.seed()
        tempfile.tempdir = None  # found again from the child's TMPDIR
        sys.argv = [argv0, *req["argv"]]
        main = _resolve(entry)

        try:
            rc = main(list(req["argv"]))
            code = rc if isinstance(rc, int) else 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a child reports and exits; it never returns
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(fd: int, entry: str, preload: list[str], argv0: str) -> None:
    """The server loop on socket ``fd``: fork on each request, report exits.  ``preload``:
    modules to import, or ``module:function`` hooks to call, before the first fork."""
    for var in BLAS_THREADS:  # numpy's BLAS would start a pool thread at import: forking a
        os.environ[var] = "1"  # process with threads can deadlock the child (POSIX fork)
    before = dict(os.environ)
    for name in preload:
        hook = _resolve(name)
        if ":" in name:
            hook()
    _resolve(entry)
    preset = {k: v for k, v in os.environ.items() if before.get(k) != v}
    if _threads() != 1:
        raise SystemExit(f"forkserver: {_threads()} threads after the imports; refusing to fork")
    sock = socket.socket(fileno=fd)
    children: set[int] = set()

    def say(obj: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            sock.send(json.dumps(obj).encode())

    say({"ready": True})
    open_ = True
    while open_:
        ready, _, _ = select.select([sock], [], [], 0.02)
        if ready:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MSG, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                open_ = False
            else:
                rid = None
                try:
                    req = json.loads(data)
                    rid = req["id"]
                    if len(fds) != 2:
                        raise ForkServerError(f"expected 2 descriptors, got {len(fds)}")
                    if _threads() != 1:
                        raise ForkServerError("the server has threads; forking is unsafe")
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        sock.close()
                        _run_child(req, fds, entry, argv0, preset)
                    children.add(pid)
                    say({"id": rid, "pid": pid})
                except Exception as e:  # noqa: BLE001 - a bad request must not stop the server
                    say({"id": rid, "error": f"{type(e).__name__}: {e}"})
                finally:
                    for f in fds:
                        os.close(f)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            say({"pid": pid, "rc": os.waitstatus_to_exitcode(status)})
    for pid in children:  # the client is gone: leave nothing behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)


# ---------------------------------------------------------------------------- client side


class ForkedProcess:
    """The part of ``subprocess.Popen`` dnode's clusters use, for a child of the fork server."""

    def __init__(self, argv: list[str], stdout: IO[bytes] | None, argv0: str = "dnode") -> None:
        self.args = [argv0, *argv]
        self.stdout = stdout
        self.pid = 0
        self.returncode: int | None = None
        self.error: str | None = None
        self._done = threading.Event()

    def _exited(self, rc: int) -> None:
        self.returncode = rc
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        if self.returncode is None:  # the server died: its children died with it
            raise ForkServerError(self.error or "the fork server exited")
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """Client of one fork server process (thread-safe): children run ``entry(argv)``
    (``module:function``) after the server imported ``preload``."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path | None = None,
        *,
        entry: str,
        preload: tuple[str, ...] = (),
        argv0: str = "python",
        start_timeout: float = 120.0,
    ) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._env = env
        self.argv0 = argv0
        self._lock = threading.Lock()
        self._next = 0
        self._by_id: dict[int, ForkedProcess] = {}
        self._by_pid: dict[int, ForkedProcess] = {}
        self._started = threading.Event()
        with open(log, "ab") if log else open(os.devnull, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dnode.node.forkserver",
                    str(theirs.fileno()),
                    entry,
                    ",".join(preload),
                    argv0,
                ],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        theirs.close()
        self._reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self._reader.start()
        if not self._started.wait(start_timeout) or not self.alive():
            self.close()
            raise ForkServerError("the fork server did not start")

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(MAX_MSG)
            except OSError:
                data = b""
            if not data:
                break
            msg = json.loads(data)
            with self._lock:
                if msg.get("ready"):
                    self._started.set()
                elif "rc" in msg:
                    p = self._by_pid.pop(msg["pid"], None)
                    if p is not None:
                        p._exited(msg["rc"])
                elif (p := self._by_id.pop(msg["id"], None)) is not None:
                    if "error" in msg:
                        p.error = msg["error"]
                        p._done.set()
                    else:
                        p.pid = msg["pid"]
                        self._by_pid[p.pid] = p
                    p._spawned.set()  # type: ignore[attr-defined]
        self._started.set()
        with self._lock:  # the server died: fail everything still waiting
            for p in [*self._by_id.values(), *self._by_pid.values()]:
                p.error = p.error or "the fork server exited"
                p._done.set()
                p._spawned.set()  # type: ignore[attr-defined]
            self._by_id.clear()
            self._by_pid.clear()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
        cwd: str | None = None,
    ) -> ForkedProcess:
        """Start ``entry(ARGV)`` in a child; ``stdout``/``stderr`` are descriptors for the
        child (the caller keeps and closes its own copies) or None: stdout becomes a pipe read
        through ``.stdout``, stderr goes to /dev/null."""
        env = env if env is not None else self._env
        if _interpreter_env(env) != _interpreter_env(self._env):
            # PYTHONPATH (a test's sitecustomize), PYTHONHASHSEED, ... act at interpreter
            # start, which a forked child never repeats: such a process must be spawned
            raise ForkServerError("the environment changes how Python starts")
        close: list[int] = []
        reader: IO[bytes] | None = None
        if stdout is None:
            r, w = os.pipe()
            reader = os.fdopen(r, "rb")
            stdout = w
            close.append(w)
        if stderr is None:
            stderr = os.open(os.devnull, os.O_WRONLY)
            close.append(stderr)
        p = ForkedProcess(argv, reader, self.argv0)
        p._spawned = threading.Event()  # type: ignore[attr-defined]
        try:
            with self._lock:
                self._next += 1
                rid = self._next
                self._by_id[rid] = p
                req = {
                    "id": rid,
                    "argv": argv,
                    "env": env,
                    "cwd": cwd or os.getcwd(),
                }
                try:
                    socket.send_fds(self._sock, [json.dumps(req).encode()], [stdout, stderr])
                except OSError as e:
                    self._by_id.pop(rid, None)
                    raise ForkServerError("the fork server is gone") from e
            p._spawned.wait()  # type: ignore[attr-defined]
        finally:
            for fd in close:
                os.close(fd)
        if p.error is not None:
            if reader is not None:
                reader.close()
            raise ForkServerError(p.error)
        return p

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Like ``subprocess.run(capture_output=True)`` for ``entry(ARGV)``."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = self.spawn(argv, env, out.fileno(), err.fileno())
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(p.args, rc, out.read(), err.read())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._sock.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], [p for p in sys.argv[3].split(",") if p], sys.argv[4])

"""One real MPyC party of one dnode task session.

Usage::

    python -m node.mpc.party JOB.json

The job file (written by :mod:`node.mpc.executor`, mode 0600, it holds secret shares)::

    {
      "task_id": 7,                      # optional (default 0); checked across parties
      "program": "mpc.mean",             # the program's name (part of the session fingerprint)
      "kernel": "dnode.node.engines.mpc.kernels.stats",  # module with async run(session, args)
      "args": {...},                     # the spec's kernel_args (JSON), same on every party
      "width": 1,                        # integers per table row (the shares are row-major)
      "bit_length": 64,                  # secint(bit_length)
      "index": 1,                        # this party, 0-based
      "parties": ["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"],
      "threshold": 1,
      "shares": [[...], [...]],          # per data-owner contribution: THIS party's shares
      "output": "/path/result.json",
      "modulus": 1237940039285380274899124191,   # optional: expected secint field modulus
      "listen_host": "127.0.0.1",        # optional: interface this party listens on
      "deadline": 70.0,                  # optional: seconds before the party gives up
      "checks": true,                    # optional (default true): malicious-minority checks
      "witness": {"bounds": [..], "level": 1},  # optional: each owner's vector is its rows
                                         # plus an influence witness (node.mpc.influence)
      "commitments": ["ab12..", ...]     # optional: per owner, the hex sharing commitment
                                         # (node.mpc.commitments); compared across parties
    }

How MPyC connects (``mpyc.runtime.Runtime.start``): party ``i`` LISTENS on the port of
its own entry ``parties[i]`` (MPyC itself binds all interfaces; we rebind to
``listen_host``, default loopback, because MPyC unpickles peer data) and accepts the
connections of all parties ``j < i``; it CONNECTS to ``parties[j]`` (host:port) for
every ``j > i``, retrying every 0.1 s forever.  Party 0 never listens; party m-1 never
connects.  Entries ``parties[j]`` for ``j < i`` are not used by party ``i`` (only their
count matters), so each node may give its party arbitrary addresses, e.g. local
forwarder ports of a libp2p tunnel to party ``j``'s listen port.  The connecting side
announces its pid (2 bytes) -- there is no authentication at the MPyC level.
MPyC never reconnects: if a connection is accepted and then closed (e.g. a tunnel
forwarder accepts locally, then fails to reach a far party that is not listening yet),
the client counts that peer as connected and the session hangs until the timeout.  So a
tunnel must reach party ``j``'s port only after party ``j`` printed LISTENING_MARKER
(``run_party(..., listening=event)`` sets the event), or retry its far-end dial.

How shares are injected: exactly like ``mpc.input`` does with the shares it receives --
a secure object whose ``.share`` is this party's field element:
``secint.array(secint.field.array(my_shares))``.  No party ever sees a plaintext input.

What is revealed: ONLY what the program's kernel opens (through its
:class:`dnode.node.mpc.table.TableSession`), listed by its spec (``ProgramSpec.reveals``); the
number of rows is public (every party knows the shape of its shares). The node turns the
opened values into the public output (``spec.finish``).

Private result (job ``result_key``, :mod:`dnode.node.mpc.delivery`): the kernel's outputs are
not opened; each party seals its own shares of them to the requester and the parties agree on
the m boxes, returned as ``"bundle"`` (hex) with ``"revealed": {}``.

Result JSON: ``{"revealed": {...the kernel's opened values...}, "rows": int,
"transcript": hex | null, "bundle": hex (private results only), ...}``.  Exit codes:
0 ok, 2 bad job file, 3 deadline exceeded, 4 parties disagree (session mismatch /
inconsistent output), 5 a peer violated the wire protocol (see :mod:`node.mpc.hardening`),
6 cheating detected (a check of :mod:`node.mpc.malicious` or :mod:`node.mpc.influence`
failed: no result is written), 1 anything else.  The last
stderr line is always a one-line reason on failure.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from typing import Any

from dnode.node.mpc.sharing import SEC_PARAM

CONNECTED_MARKER = "dnode-mpc: all parties connected"
#: Printed (stderr) once this party accepts connections (party 0: right away, it never
#: listens).  Lower parties / tunnels must not connect before this line (see executor).
LISTENING_MARKER = "dnode-mpc: listening"


class JobError(Exception):
    pass


class DisagreeError(Exception):
    pass


#: exit code of a party whose malicious-minority checks failed (node.mpc.malicious)
EXIT_CHEATING = 6
EXIT_PEER_LOST = 5  # a peer's connection closed before the session ended: no waiting it out
PEER_LOST_GRACE = 5.0  # seconds without progress after a peer is lost before giving up


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_job(path: str) -> dict[str, Any]:
    """Read and validate a job file (no mpyc import)."""
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except (OSError, ValueError) as e:
        raise JobError(f"cannot read job file {path}: {e}") from None
    if not isinstance(job, dict):
        raise JobError("job file must hold a JSON object")

    def need(key: str, typ: type | tuple[type, ...]) -> Any:
        if key not in job:
            raise JobError(f"job file lacks {key!r}")
        v = job[key]
        if not isinstance(v, typ) or isinstance(v, bool):
            raise JobError(f"job field {key!r} has the wrong type")
        return v

    job.setdefault("task_id", 0)
    need("task_id", int)
    need("program", str)
    kernel = need("kernel", str)
    if not all(part.isidentifier() for part in kernel.split(".")):
        raise JobError(f"bad kernel module name {kernel!r}")
    need("args", dict)
    width, bl = need("width", int), need("bit_length", int)
    if width < 1 or bl < 2:
        raise JobError(f"bad width={width} / bit_length={bl}")
    parties = need("parties", list)
    m = len(parties)
    for a in parties:
        if not isinstance(a, str) or ":" not in a or not a.rsplit(":", 1)[1].isdigit():
            raise JobError(f"bad party address {a!r} (want host:port)")
        if not a.rsplit(":", 1)[0]:
            raise JobError(f"bad party address {a!r} (empty host)")
    i, t = need("index", int), need("threshold", int)
    if not 0 <= i < m:
        raise JobError(f"index {i} out of range for {m} parties")
    if t < 0 or 2 * t >= m:
        raise JobError(f"threshold {t} invalid for {m} parties (need 2t < m)")
    shares = need("shares", list)
    for owner in shares:
        if not isinstance(owner, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in owner
        ):
            raise JobError("shares must be a list of lists of non-negative ints")
    need("output", str)
    if job.get("modulus") is not None:
        need("modulus", int)
    if job.get("commitments") is not None:
        cs = need("commitments", list)
        if len(cs) != len(shares) or not all(isinstance(c, str) for c in cs):
            raise JobError("commitments must be one hex string per data owner")
    job.setdefault("listen_host", "127.0.0.1")
    need("listen_host", str)
    if job.get("deadline") is not None:
        need("deadline", (int, float))
    job.setdefault("witness", None)
    job["rows"] = []  # per owner: its number of table rows (the rest is its witness)
    if job["witness"] is not None:
        from dnode.node.mpc.influence import TableWitness, table_rows

        try:
            w = TableWitness.from_json(job["witness"])
        except ValueError as e:
            raise JobError(str(e)) from None
        if w.width != width:
            raise JobError(f"witness bounds for {w.width} columns, rows of {width}")
        for k, owner in enumerate(shares):
            try:
                job["rows"].append(table_rows(len(owner), w))
            except ValueError as e:
                raise JobError(f"data owner {k}: {e}") from None
    else:
        for owner in shares:
            if len(owner) % width:
                raise JobError(f"an owner's {len(owner)} shares are not whole rows of {width}")
            job["rows"].append(len(owner) // width)
    job.setdefault("checks", True)
    if not isinstance(job["checks"], bool):
        raise JobError("job field 'checks' has the wrong type")
    job.setdefault("result_key", None)
    if job["result_key"] is not None:
        key = need("result_key", str)
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise JobError("result_key must be 64 lowercase hex digits (an X25519 public key)")
    return job


def mpyc_argv(job: dict[str, Any]) -> list[str]:
    """The argv MPyC parses at import of ``mpyc`` / ``mpyc.runtime``."""
    argv = [sys.argv[0] if sys.argv else "dnode.node.mpc.party", "-I", str(job["index"])]
    for a in job["parties"]:
        argv += ["-P", a]
    argv += ["-T", str(job["threshold"]), "-K", str(SEC_PARAM), "-L", str(job["bit_length"])]
    argv += ["--no-log"]
    return argv


async def _session(mpc: Any, job: dict[str, Any], kernel: Any) -> dict[str, Any]:
    import numpy as np

    from dnode.node.mpc.table import TableSession

    m, t = len(job["parties"]), job["threshold"]
    secint = mpc.SecInt(job["bit_length"])
    if job.get("modulus") is not None and job["modulus"] != secint.field.modulus:
        try:  # a program that fixes its field (spec.field_prime, e.g. a group order)
            secint = mpc.SecInt(job["bit_length"], p=job["modulus"])
        except ValueError as e:
            raise JobError(f"field modulus {job['modulus']}: {e}") from None
    field = secint.field
    if job.get("modulus") is not None and job["modulus"] != field.modulus:
        raise JobError(
            f"field modulus mismatch: shares use {job['modulus']}, "
            f"secint({job['bit_length']}) uses {field.modulus}"
        )
    if any(x >= field.modulus for owner in job["shares"] for x in owner):
        raise JobError("a share is not a field element (>= modulus)")
    width = job["width"]
    rows = job["rows"]

    if job["index"] == 0:
        _say(f"{LISTENING_MARKER} (party 0 never listens)")
    await mpc.start()
    _say(f"{CONNECTED_MARKER} ({m}, I am party {job['index']})")

    # Every party must be in the same session with the same public shape of inputs;
    # otherwise the program counters diverge and the result would be garbage.
    fingerprint = (
        job["task_id"],
        job["program"],
        job["kernel"],
        json.dumps(job["args"], sort_keys=True),
        width,
        job["bit_length"],
        m,
        t,
        tuple(len(owner) for owner in job["shares"]),
        job["checks"],
        json.dumps(job["witness"], sort_keys=True),
        job["result_key"],
    )
    commitments = tuple(job.get("commitments") or ())
    got = await mpc.transfer((fingerprint, commitments))
    if any(fp != fingerprint for fp, _ in got):
        bad = [j for j, (fp, _) in enumerate(got) if fp != fingerprint]
        raise DisagreeError(f"parties {bad} are in a different session or hold other inputs")
    for k, mine in enumerate(commitments):
        if any(len(c) != len(commitments) or c[k] != mine for _, c in got):
            raise DisagreeError(f"data owner {k} committed to different sharings at the seats")

    def arr(xs: list[int]) -> Any:
        return secint.array(field.array(np.array(xs, dtype=object)))

    # the shares as secure arrays: no party ever sees a plaintext input
    vectors = [arr(o) for o in job["shares"]]
    blocks = [arr(o[: n * width]).reshape(n, width) for o, n in zip(job["shares"], rows,
                                                                     strict=True)]  # fmt: skip
    witness = None
    if job["witness"] is not None:
        from dnode.node.mpc.influence import TableWitness

        witness = TableWitness.from_json(job["witness"])
    digest = None
    private = job["result_key"] is not None
    if job["checks"]:
        from dnode.node.mpc.malicious import Guard

        session = (*fingerprint, commitments)  # the transcript binds the committed inputs
        guard = Guard(mpc, secint, json.dumps(session).encode())
        # every owner's vector (rows and witness) is a consistent degree-t sharing
        await guard.check_sharings(vectors)
        seed = await guard.coin("influence") if witness is not None else b""
        bits = [arr(o[n * width :]) for o, n in zip(job["shares"], rows, strict=True)]
        s = TableSession(mpc, secint, blocks, width, guard, witness, bits, seed, private)
    else:
        s = TableSession(mpc, secint, blocks, width, private=private)
    revealed = await kernel.run(s, job["args"])
    if job["checks"]:
        digest = s.guard.transcript.hex()
    if private:  # node.mpc.delivery: seal our shares, agree on every seat's box
        bundle = await _deliver(mpc, job, revealed, sum(rows), field.modulus)
        sent = _bytes_sent(mpc)
        await mpc.shutdown()
        return {**_summary(job, sum(rows), field.modulus, digest, sent), "revealed": {},
                "bundle": bundle.hex()}  # fmt: skip

    # Each party must hold the same output (without checks: each recombined from a
    # different set of t+1 shares, so an inconsistent owner sharing shows up here)
    mine = json.dumps(revealed, sort_keys=True)
    outs = await mpc.transfer(mine)
    if any(o != mine for o in outs):
        raise DisagreeError("parties obtained different outputs (inconsistent input shares)")
    sent = _bytes_sent(mpc)
    await mpc.shutdown()
    return {**_summary(job, sum(rows), field.modulus, digest, sent), "revealed": revealed}


def _summary(
    job: dict[str, Any], rows: int, modulus: int, digest: str | None, sent: int = 0
) -> dict[str, Any]:
    return {
        "task_id": job["task_id"],
        "program": job["program"],
        "rows": rows,
        "bit_length": job["bit_length"],
        "modulus": modulus,
        "parties": len(job["parties"]),
        "threshold": job["threshold"],
        "index": job["index"],
        "checks": job["checks"],
        "transcript": digest,
        "bytes_sent": sent,
        **_usage(),
    }


#: /proc/self/status, opened before the sandbox closes /proc (read again at the end): its
#: VmHWM is this process's own peak RSS (ru_maxrss also counts the parent's at fork/exec)
_STATUS: list[Any] = []


def _open_status() -> None:
    import contextlib

    with contextlib.suppress(OSError):
        _STATUS.append(open("/proc/self/status", "rb", buffering=0))  # noqa: SIM115


def _usage() -> dict[str, Any]:
    """This party's CPU seconds (user + system) and peak resident memory so far: metrics."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak = ru.ru_maxrss * 1024
    try:
        f = _STATUS[0]
        f.seek(0)
        for line in f.read().splitlines():
            if line.startswith(b"VmHWM:"):
                peak = int(line.split()[1]) * 1024
    except (IndexError, OSError, ValueError):
        pass
    return {"cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "peak_rss": peak}


def _bytes_sent(mpc: Any) -> int:
    """Bytes this party sent to the others so far (MPyC's own per-peer counters)."""
    try:
        return sum(
            int(getattr(p.protocol, "nbytes_sent", 0))
            for p in mpc.parties
            if p.pid != mpc.pid and p.protocol is not None
        )
    except Exception:  # noqa: BLE001 - a figure for benchmarks, never a reason to fail
        return 0


async def _deliver(
    mpc: Any, job: dict[str, Any], shares: dict[str, Any], rows: int, modulus: int
) -> bytes:
    """Seal this party's output shares to the requester, exchange the boxes, and check every
    party holds the same m boxes (a party that equivocates makes the honest ones abort)."""
    import hashlib

    from dnode.node.mpc.delivery import Bundle, seal_shares

    mine = seal_shares(job["result_key"], job["index"], shares, rows)
    boxes = await mpc.transfer(mine)  # hardened: bytes in a fixed format, never pickled
    if not isinstance(boxes, list) or not all(isinstance(b, bytes) for b in boxes):
        raise DisagreeError("a party sent something other than a sealed box")
    if boxes[job["index"]] != mine:
        raise DisagreeError("our own box came back changed")
    bundle = Bundle(tuple(boxes), job["threshold"], modulus).to_bytes()
    digest = hashlib.sha256(bundle).hexdigest()
    if any(d != digest for d in await mpc.transfer(digest)):
        raise DisagreeError("parties received different sealed boxes (a party equivocated)")
    return bundle


def _write_json(path: str, obj: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def _exit_when_a_peer_is_lost(mpc: Any, index: int) -> None:
    """A peer whose connection closes before our shutdown began has died (killed, its tunnel
    broke): MPyC would wait for its messages until the deadline. Exit at once, so the node
    retries at the next slot with the others instead of idling through this one."""
    from mpyc import asyncoro

    closing = False
    lost = asyncoro.MessageExchanger.connection_lost
    shutdown = mpc.shutdown

    def give_up(peer: Any, exc: Exception | None) -> None:
        _say(f"dnode-mpc: party {index}: lost the connection to party {peer} ({exc!r})")
        sys.stdout.flush()
        os._exit(EXIT_PEER_LOST)

    def progress() -> int:
        return int(mpc._program_counter[0])

    lost_first: list[tuple[Any, Exception | None]] = []  # the report names the first loss

    def after_grace(peer: Any, exc: Exception | None, seen: int) -> None:
        # still computing (a slow or starved process reaching the same finding): wait on;
        # stuck waiting for the lost peer's messages: nothing moves, give up
        now = progress()
        if now != seen:
            mpc._loop.call_later(PEER_LOST_GRACE, after_grace, peer, exc, now)
            return
        give_up(*lost_first[0])

    def connection_lost(self: Any, exc: Exception | None) -> None:
        if not closing:
            # a grace while this party still makes progress: a peer that just exited on a
            # failed check closes first, and this party should report the same finding (once
            # it gets there, however loaded the machine), not the lost connection
            peer = getattr(self, "peer_pid", None)
            lost_first.append((peer, exc))
            mpc._loop.call_later(PEER_LOST_GRACE, after_grace, peer, exc, progress())
            return
        lost(self, exc)

    async def shutdown_then_close() -> Any:
        nonlocal closing
        closing = True  # peers close their connections once everyone reached shutdown
        return await shutdown()

    asyncoro.MessageExchanger.connection_lost = connection_lost  # type: ignore[method-assign]
    mpc.shutdown = shutdown_then_close


#: what a party's fork server (:mod:`dnode.node.forkserver`, started by the executor) imports
#: once: everything a party needs except ``mpyc.runtime``, which parses ``sys.argv`` (the
#: job's) at import, and which the child therefore imports itself
PRELOAD = (
    "dnode.node.mpc.party:mpyc_import_argv",
    "numpy",
    "gmpy2",
    "mpyc.gfpx",
    "mpyc.finfields",
    "mpyc.thresha",
    "mpyc.asyncoro",
    "mpyc.sectypes",
    "mpyc.mpctools",
    "dnode.node.mpc.hardening",
    "dnode.node.mpc.isolation",
    "dnode.node.localpeer",
    "dnode.node.mpc.table",
    "dnode.node.mpc.malicious",
    "dnode.node.mpc.delivery",
    "dnode.node.mpc.party:preload_kernels",
)


def mpyc_import_argv() -> None:
    """``import mpyc`` parses ``sys.argv`` too (logging level, worker threads): give the fork
    server the options every party has there, so its children start configured alike."""
    sys.argv = ["dnode.node.mpc.party", "--no-log"]


def preload_kernels() -> None:
    """Import every registered program's MPC kernel (kernels import no MPyC runtime), and
    check that nothing imported ``mpyc.runtime``: a runtime built from the server's argv would
    be every child's."""
    from dnode.scheduler.programs import registry

    registry.discover()
    for spec in registry.all_programs():
        if spec.capability == "mpc":
            with contextlib.suppress(ImportError):
                importlib.import_module(spec.kernel)
    if "mpyc.runtime" in sys.modules:
        raise SystemExit("party fork server: mpyc.runtime was imported; refusing to fork")


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if len(args) != 1:
        _say("usage: python -m node.mpc.party JOB.json")
        return 2
    try:
        job = load_job(args[0])
    except JobError as e:
        _say(f"dnode-mpc: bad job: {e}")
        return 2

    try:  # the kernel is local code named by the local registry; loaded before confinement
        kernel = importlib.import_module(job["kernel"])  # (a kernel must not import mpyc)
    except ImportError as e:
        _say(f"dnode-mpc: bad job: kernel {job['kernel']!r} cannot be imported: {e}")
        return 2

    from dnode.node.mpc.hardening import secure_party

    _open_status()  # a metric (peak RSS), read at the end
    # confined before any peer byte arrives (no secrets, only its job, rlimits, sandbox)
    patch_runtime = secure_party(args[0], job.get("deadline"))

    # MPyC parses sys.argv when mpyc / mpyc.runtime is imported: set it first, and make
    # sure nothing of our own command line leaks into it.
    sys.argv = mpyc_argv(job)
    import asyncio
    import functools

    import mpyc.runtime as mpyc_runtime
    from mpyc.runtime import mpc

    patch_runtime(mpyc_runtime)  # no pickle; party ids checked; only our user connects
    from dnode.node.mpc.sharing import install_fast_split

    install_fast_split()  # re-sharing: one os.urandom call per degree reduction, Horner
    _exit_when_a_peer_is_lost(mpc, job["index"])

    # MPyC's server binds every interface; peers' pickled messages are unpickled, so
    # listen on listen_host only (loopback by default: remote peers come via tunnels).
    loop = mpc._loop
    create_server = functools.partial(loop.create_server, host=job["listen_host"])

    async def create_server_bound(*a: Any, **kw: Any) -> Any:
        server = await create_server(*a, **kw)
        _say(f"{LISTENING_MARKER} on {job['listen_host']}:{kw.get('port')}")
        return server

    loop.create_server = create_server_bound

    t0 = time.monotonic()
    coro = _session(mpc, job, kernel)
    if job.get("deadline") is not None:
        coro = asyncio.wait_for(coro, job["deadline"])
    try:
        result = mpc.run(coro)
    except TimeoutError:
        _say(f"dnode-mpc: party {job['index']}: deadline of {job['deadline']:g} s exceeded")
        return 3
    except JobError as e:
        _say(f"dnode-mpc: bad job: {e}")
        return 2
    except DisagreeError as e:
        _say(f"dnode-mpc: {e}")
        return 4
    except Exception as e:  # noqa: BLE001
        from dnode.node.mpc.malicious import CheatingDetected

        if not isinstance(e, CheatingDetected):
            _say(f"dnode-mpc: party {job['index']} failed: {type(e).__name__}: {e}")
            return 1
        _say(f"dnode-mpc: party {job['index']}: {e}")
        return EXIT_CHEATING
    result["elapsed"] = round(time.monotonic() - t0, 3)
    _write_json(job["output"], result)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: MPyC may leave pending callbacks/transports on failure.
    os._exit(code)

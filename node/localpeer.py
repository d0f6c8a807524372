"""Who is on the other end of a loopback TCP connection: local endpoints serve only our user.

MPC traffic crosses two loopback hops on each node: the party's MPyC port (reached by this
node's tunnel listener) and the per-peer forwarder ports (reached by this node's party).  Any
local process can connect to a loopback port; another user's process that got there first
would sit in the session as a seat (issue 13, finding 2).  Linux reports the owner uid of every
TCP socket in ``/proc/net/tcp`` and ``/proc/net/tcp6``: :func:`peer_uid` finds the socket on
the other end of an accepted connection there, and :func:`same_user` admits it only if it
belongs to our own uid -- what a 0600 unix socket would give, for the TCP ports MPyC needs.

A confined party (:mod:`node.mpc.isolation`) cannot open ``/proc`` any more, so it opens the
tables first (:func:`open_tables`) and re-reads those descriptors afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from typing import IO, Any, Protocol


class _Socket(Protocol):
    def getsockname(self) -> Any: ...

    def getpeername(self) -> Any: ...


__all__ = ["PROC_TABLES", "open_tables", "peer_uid", "same_user"]

PROC_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def open_tables() -> list[IO[bytes]]:
    """Open the kernel's TCP tables now, for reading later (e.g. after a sandbox closed /proc)."""
    tables: list[IO[bytes]] = []
    for path in PROC_TABLES:
        with contextlib.suppress(OSError):
            tables.append(open(path, "rb"))  # noqa: SIM115 - kept for the process lifetime
    return tables


def _hex_addr(addr: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = addr[0], addr[1]
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host)
        # the kernel prints each 32-bit word of the address in host byte order
        hexed = "".join(f"{w:08X}" for w in struct.unpack("=4I", raw))
    else:
        hexed = f"{struct.unpack('=I', socket.inet_aton(host))[0]:08X}"
    return f"{hexed}:{port:04X}"


def _read(table: IO[bytes]) -> bytes:
    table.seek(0)
    return table.read()


def peer_uid(sock: _Socket, tables: list[IO[bytes]] | None = None) -> int | None:
    """The uid owning the other end of the connected loopback TCP socket ``sock``, or None if
    it cannot be found (not TCP, not local, or the tables are unreadable)."""
    try:
        ours, theirs = _hex_addr(sock.getsockname()), _hex_addr(sock.getpeername())
    except (OSError, ValueError, IndexError):
        return None
    opened = tables is None
    use = open_tables() if tables is None else tables
    try:
        for table in use:
            try:
                text = _read(table).decode("ascii", "replace")
            except OSError:
                continue
            for line in text.splitlines()[1:]:
                f = line.split()
                # sl local rem st queues timer retrnsmt uid ...: the peer's socket is "theirs->ours"
                if len(f) > 7 and f[1] == theirs and f[2] == ours:
                    return int(f[7])
    finally:
        if opened:
            for t in use:
                t.close()
    return None


def same_user(sock: _Socket, tables: list[IO[bytes]] | None = None) -> bool:
    """True iff the peer of ``sock`` is a process of our own uid (fails closed)."""
    return peer_uid(sock, tables) == os.getuid()

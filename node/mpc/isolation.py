"""How an MPC party process is confined: what it inherits, what it may touch, what it may use.

The party talks to other committee members' parties, so it is the process a malicious peer
aims at (issue 13, finding 1: code run there copied shares and read ``DNODE_PASSWORD``).
Beside removing the code-execution path (:mod:`node.mpc.hardening`) the party is confined:

* :func:`party_env` (executor side): a scrubbed environment -- a few locale/path variables,
  ``PYTHONPATH`` = the code only, ``HOME``/``TMPDIR`` = its job directory.  No
  ``DNODE_PASSWORD``, no RPC URLs, nothing else of the node's environment.
* the job directory is private (0700, created by ``mkdtemp``) and holds only the job file
  (0600, written with ``O_EXCL``) and the result.
* :func:`confine` (party side, first thing after reading the job, before any peer byte):
  umask 077; not dumpable (no core files, no ptrace or ``/proc/<pid>/mem`` by same-user
  processes); rlimits on address space, CPU seconds, open files and file size; and, where the
  kernel has Landlock (Linux >= 5.13), a filesystem sandbox: read-only access to the Python
  installation and the ``node`` package, read-write to the job directory, nothing else -- so
  not the keystore, the state database, other tasks' files or ``/proc`` (other processes'
  environments).  Without Landlock the rest still applies; the party logs what it got.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PartyLimits", "confine", "party_env", "readable_roots"]

# environment variables a party may inherit (everything else is dropped)
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")

_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and arm64
_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_FS_ABI1 = (1 << 13) - 1  # every right Landlock ABI 1 handles
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE


@dataclass(frozen=True)
class PartyLimits:
    """Resource limits of one party (``None``: leave the inherited limit)."""

    address_space: int | None = 8 << 30  # bytes of virtual memory (1M-value sessions fit)
    cpu_seconds: int | None = None  # default: the job's deadline plus a margin
    open_files: int | None = 256
    file_size: int | None = 1 << 30


def party_env(workdir: Path, code_root: Path) -> dict[str, str]:
    """The whole environment of a party process: nothing secret survives."""
    env = {k: v for k in SAFE_ENV if (v := os.environ.get(k))}
    env.update(
        PYTHONPATH=str(code_root),
        HOME=str(workdir),
        TMPDIR=str(workdir),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
    )
    return env


def readable_roots(code_root: Path) -> list[str]:
    """Directories a confined party may read: the interpreter, its libraries, our code."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for entry in sys.path:  # stdlib and site-packages; not the repository or the cwd
        if entry and ("site-packages" in entry or "dist-packages" in entry or "python3" in entry):
            roots.add(entry)
    roots.update(["/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/dev/null"])
    # our code: the dnode package, and in a source checkout the folders it maps (dnode.node)
    roots.update(str(code_root / d) for d in ("dnode", "node", "scheduler", "oracle", "contracts"))
    return sorted(r for r in roots if os.path.exists(r))


def _set_limit(which: int, value: int | None) -> None:
    if value is None:
        return
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def _landlock(read_only: list[str], read_write: list[str]) -> str:
    """Restrict this process's filesystem access (Landlock); returns what was applied."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return "no libc"
    sc = libc.syscall
    sc.restype = ctypes.c_long
    abi = sc(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), _RULESET_VERSION)
    if abi < 1:
        return "landlock unavailable"
    handled = _FS_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = ctypes.create_string_buffer(struct.pack("<Q", handled), 8)
    ruleset = sc(ctypes.c_long(_SYS_CREATE_RULESET), attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"landlock ruleset failed (errno {ctypes.get_errno()})"
    try:
        ro = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        rules = [(p, ro) for p in read_only] + [(p, handled) for p in read_write]
        for path, access in rules:
            if not os.path.isdir(path):
                access &= _FS_FILE_RIGHTS
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = ctypes.create_string_buffer(struct.pack("<Qi", access, pfd), 12)
                if sc(ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_PATH_BENEATH, rule, 0) < 0:
                    return f"landlock rule for {path} failed (errno {ctypes.get_errno()})"
            finally:
                os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return "no_new_privs failed"
        if sc(ctypes.c_long(_SYS_RESTRICT_SELF), ruleset, ctypes.c_uint32(0)) < 0:
            return f"landlock restrict failed (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return f"landlock abi {abi}"


def confine(workdir: str, code_root: Path, limits: PartyLimits | None = None) -> str:
    """Confine the calling (party) process for good; returns a one-line summary."""
    limits = limits or PartyLimits()
    os.umask(0o077)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_AS, limits.address_space)
    _set_limit(resource.RLIMIT_CPU, limits.cpu_seconds)
    _set_limit(resource.RLIMIT_NOFILE, limits.open_files)
    _set_limit(resource.RLIMIT_FSIZE, limits.file_size)
    sandbox = _landlock(readable_roots(code_root), [os.path.abspath(workdir)])
    return f"confined to {workdir} ({sandbox})"

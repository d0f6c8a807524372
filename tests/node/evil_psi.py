"""TEST ONLY: a real MPyC party of dnode that sends wrong PSI partials.

    python -m tests.node.evil_psi JOB.json

Everything is node.mpc.party unchanged, except that the partials this party sends the others
(``TableSession.exchange``) have element 1 shifted by a point of the group; its own copy stays
honest, so only the parity check at the honest parties can notice.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from coincurve import PublicKey


def main() -> int:
    from dnode.node.mpc import party, table
    from dnode.scheduler.programs.psi import tokens as T

    shift = T.hash_to_point(b"evil", "shift")
    honest = table.TableSession.exchange

    async def exchange(self: Any, payload: bytes, label: str) -> list[bytes]:
        bad = bytearray(payload)
        n = T.PARTIAL_BYTES
        p = PublicKey(bytes(payload[n : 2 * n]))
        bad[n : 2 * n] = PublicKey.combine_keys([p, PublicKey(shift)]).format(compressed=False)
        got = await honest(self, bytes(bad), label)
        got[self.mpc.pid] = payload
        return got

    table.TableSession.exchange = exchange  # type: ignore[method-assign]
    return party.main(sys.argv[1:])


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""TEST ONLY: a real MPyC party of dnode that deviates from the protocol.

    python -m tests.node.evil_party MODE OFFSET JOB.json

MODE is one of
  reshare  add OFFSET to the product share it re-shares in every degree reduction (GRR)
  reshare-from-E  the same, only once its Guard reached epoch E (after E multiplication
           checks: e.g. in a later batch of a batched kernel, TableSession.batches)
  input    add OFFSET to its share of the first value of the first data owner
  output   add OFFSET to its share of the first value of every result it opens
Everything else is node.mpc.party unchanged (the same process layout, job file, exit codes).
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: what the Guard itself opens (coins and checks); everything else is a kernel's output
INTERNAL = {"inputs", "influence", "verify", "input-check", "r", "mult-check", "zero-tests"}


def main() -> int:
    mode, offset, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    from dnode.node.mpc import party

    job = party.load_job(path)
    sys.argv = party.mpyc_argv(job)  # MPyC parses argv at its first import
    from mpyc import thresha

    if mode == "reshare" or mode.startswith("reshare-from-"):
        np_split, split = thresha.np_random_split, thresha.random_split
        start = int(mode.rsplit("-", 1)[1]) if mode != "reshare" else 0
        from dnode.node.mpc import malicious

        guards: list[Any] = []
        real_init = malicious.Guard.__init__

        def init(self: Any, *a: Any, **kw: Any) -> None:
            real_init(self, *a, **kw)
            guards.append(self)

        malicious.Guard.__init__ = init  # type: ignore[method-assign]

        def active() -> bool:
            return start == 0 or bool(guards and guards[0].epoch >= start)

        def np_evil(field: Any, s: Any, t: int, m: int) -> Any:
            if not active():
                return np_split(field, s, t, m)
            s = s.copy()
            s[0] = (int(s[0]) + offset) % field.modulus  # a consistent sharing of c + e
            return np_split(field, s, t, m)

        def evil(field: Any, s: Any, t: int, m: int) -> Any:
            if not active():
                return split(field, s, t, m)
            s = list(s)
            v = s[0].value if hasattr(s[0], "value") else s[0]
            s[0] = (int(v) + offset) % field.modulus
            return split(field, s, t, m)

        thresha.np_random_split = np_evil
        thresha.random_split = evil
    elif mode == "input":
        real_load = party.load_job

        def load_evil(p: str) -> dict[str, Any]:
            j = real_load(p)
            mod = j["modulus"]
            j["shares"][0][0] = (j["shares"][0][0] + offset) % mod
            return j

        party.load_job = load_evil  # type: ignore[assignment]
    elif mode == "output":
        from dnode.node.mpc import malicious

        real_payload = malicious.Guard._payload

        def payload_evil(self: Any, label: str, shares: list[int]) -> bytes:
            if label not in INTERNAL:  # any value a kernel opens (output, sum, gram, ...)
                shares = [(shares[0] + offset) % self.p, *shares[1:]]
            return real_payload(self, label, shares)

        malicious.Guard._payload = payload_evil  # type: ignore[method-assign]
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    return party.main([path])


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

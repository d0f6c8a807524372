"""Private results: output shares sealed to the requester, never opened by the committee.

A task whose params carry a ``result_key`` (the requester's X25519 public key) is computed
exactly like a public one -- same kernel, same malicious-minority checks before anything
leaves the parties -- except that :class:`dnode.node.mpc.table.TableSession` does not open
the outputs: every party seals ITS OWN shares of them to the requester (libsodium sealed box:
X25519 + XSalsa20-Poly1305, anonymous sender; PyNaCl).  The parties exchange their sealed
boxes, check that each of them received the same m boxes (a party that sends different boxes
to different parties aborts the session), and every node stores the same :class:`Bundle` as a
content-addressed blob; the quorum signs and reports only its keccak digest (the ``private``
codec).  No node, and no coalition of up to t nodes, learns the result: t shares of a
degree-t sharing are independent of the secret.

The requester fetches the bundle from any member, checks it against the attested digest,
opens its m boxes with its key and reconstructs each output with error DETECTION: all m
shares must lie on one polynomial of degree t (:func:`open_bundle`), so a seat that sealed a
wrong share is caught (it cannot be corrected with m = 2t + 1; the requester disputes).

What the delivered shares reveal beyond the output: the output sharing's other coefficients
are sums of the owners' random sharing coefficients (sums) or of the parties' fresh re-sharing
randomness (products) -- independent of the inputs while one owner or party is honest.

The requester's key is derived from its account key (:func:`result_keypair`): no new secret
to keep, and only the account that posted the task can read the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from dnode.node.errors import NodeError

__all__ = [
    "BUNDLE_VERSION",
    "Bundle",
    "DeliveryError",
    "open_bundle",
    "result_keypair",
    "seal_shares",
]

BUNDLE_VERSION = 1
KEY_DOMAIN = b"dnode.result-key.v1"


class DeliveryError(NodeError):
    """A private result cannot be opened (wrong key, tampered box, inconsistent shares)."""

    def __init__(self, detail: str, seat: int | None = None) -> None:
        self.detail, self.seat = detail, seat
        super().__init__(f"private result: {detail}")


def result_keypair(account_key: bytes) -> tuple[PrivateKey, str]:
    """The requester's X25519 result key pair, derived from its 32-byte account key.

    A one-way derivation under a domain tag: the result key reveals nothing about the account
    key, and the account key recovers the result key (nothing else to back up)."""
    if len(account_key) != 32:
        raise ValueError("account key must be 32 bytes")
    sk = PrivateKey(hashlib.sha256(KEY_DOMAIN + bytes(account_key)).digest())
    return sk, bytes(sk.public_key).hex()


def parse_public_key(hex_key: str) -> PublicKey:
    try:
        raw = bytes.fromhex(hex_key)
    except ValueError:
        raise DeliveryError(f"result key {hex_key[:16]!r}… is not hex") from None
    if len(raw) != 32:
        raise DeliveryError("result key must be 32 bytes (an X25519 public key)")
    return PublicKey(raw)


def seal_shares(
    result_key: str, seat: int, shares: Mapping[str, Sequence[int]], rows: int
) -> bytes:
    """This seat's sealed box: its shares of every output (label -> field elements)."""
    body = json.dumps(
        {"v": BUNDLE_VERSION, "seat": seat, "rows": rows,
         "shares": {k: [int(v) for v in vs] for k, vs in shares.items()}},
        sort_keys=True, separators=(",", ":"),
    ).encode()  # fmt: skip
    return bytes(SealedBox(parse_public_key(result_key)).encrypt(body))


@dataclass(frozen=True)
class Bundle:
    """Every seat's sealed box, in seat order, plus what reconstruction needs (public)."""

    boxes: tuple[bytes, ...]
    threshold: int
    modulus: int

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"v": BUNDLE_VERSION, "t": self.threshold, "p": str(self.modulus),
             "boxes": [b.hex() for b in self.boxes]},
            sort_keys=True, separators=(",", ":"),
        ).encode()  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> Bundle:
        try:
            d = json.loads(data)
            if d["v"] != BUNDLE_VERSION:
                raise ValueError(f"bundle version {d['v']!r}")
            boxes = tuple(bytes.fromhex(b) for b in d["boxes"])
            t, p = int(d["t"]), int(d["p"])
        except (ValueError, KeyError, TypeError) as e:
            raise DeliveryError(f"malformed result bundle: {e}") from None
        if not 0 <= t < len(boxes) or p < 2:
            raise DeliveryError("malformed result bundle: threshold or modulus out of range")
        return cls(boxes, t, p)


def _open_box(sk: PrivateKey, box: bytes, seat: int) -> dict[str, Any]:
    try:
        body = json.loads(SealedBox(sk).decrypt(box))
    except CryptoError:
        raise DeliveryError("a box does not open with this account's result key", seat) from None
    except ValueError as e:
        raise DeliveryError(f"seat {seat} sealed malformed content: {e}", seat) from None
    if not isinstance(body, dict) or body.get("seat") != seat or body.get("v") != BUNDLE_VERSION:
        raise DeliveryError(f"the box in position {seat} is not seat {seat}'s", seat)
    return body


def open_bundle(sk: PrivateKey, bundle: Bundle) -> tuple[dict[str, list[int]], int]:
    """The outputs (signed ints, per label) and the row count, from every seat's shares.

    Raises :class:`DeliveryError` unless all m shares of every output lie on one polynomial
    of degree t (error detection: any wrong share from a minority is caught)."""
    from dnode.node.mpc.malicious import degree_check  # numpy only, no mpyc
    from dnode.node.mpc.sharing import to_signed

    bodies = [_open_box(sk, box, i) for i, box in enumerate(bundle.boxes)]
    rows = {b.get("rows") for b in bodies}
    labels = {tuple(sorted(b.get("shares", {}))) for b in bodies}
    if len(rows) != 1 or len(labels) != 1:
        raise DeliveryError("the seats sealed different outputs")
    out: dict[str, list[int]] = {}
    p, t = bundle.modulus, bundle.threshold
    for label in next(iter(labels)):
        vecs = [[int(v) % p for v in b["shares"][label]] for b in bodies]
        if len({len(v) for v in vecs}) != 1:
            raise DeliveryError(f"the seats sealed {label!r} with different lengths")
        if not vecs[0]:
            out[label] = []
            continue
        secrets, bad = degree_check(vecs, t, p)
        if bad:
            raise DeliveryError(
                f"the shares of {label!r} are inconsistent (a seat sealed a wrong share): "
                "dispute the task"
            )
        out[label] = [to_signed(s, p) for s in secrets]
    (n,) = rows
    if not isinstance(n, int):
        raise DeliveryError("the seats sealed no row count")
    return out, n

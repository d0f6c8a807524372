"""Result codecs by name: the one place that turns reported bytes into values and back.

A program's spec names its codec (``ProgramSpec.codec``); the node encodes with it, and
``dnode task result``, ``dnode oracle get`` and :mod:`oracle.reader` decode with it. No reader
branches on a program or a capability.

``tensor`` -- public results of any shape (the consumer ABI)::

    abi.encode(int256[] values, uint8 decimals, uint256 count)

``values`` are the output in row-major order, each fixed-point with ``decimals`` decimal places
(rounded half away from zero; exact when the true value has at most that many); ``count`` is
the number of input rows. The shape and the axis labels are NOT on-chain (each stored word
costs ~22k gas): they follow from the program and its public params (``spec.layout(params)``),
which the requester holds and a contract fixes when it asks. A scalar program (``mpc.mean`` on
one column) has one value, so consumers such as ``contracts/examples/price_feed.vy`` decode
``(DynArray[int256, 16], uint8, uint256)`` and read ``values[0]``. A matrix ``(r, c)`` has
``values[i * c + j]`` at row ``i``, column ``j``.

``private`` -- results that never go on-chain (HE)::

    abi.encode(bytes32 result_digest, string locator)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError

from dnode.oracle.encoding import AggregateResult, fmt_short
from dnode.oracle.errors import OracleError

Labels = tuple[tuple[str, ...], ...]
PRIVATE_TYPES = ["bytes32", "string"]
LOCATOR_PREFIX = "dnode-blob:0x"
MAX_RESULT = 1024  # the contract's result size limit
MAX_LOCATOR = 512


class Decoded(Protocol):
    def to_json(self) -> dict[str, Any]: ...
    def line(self) -> str: ...


@dataclass(frozen=True)
class TensorResult:
    """A decoded public result with its (off-chain) layout."""

    value: AggregateResult
    shape: tuple[int, ...] = ()
    labels: Labels = ()

    def __post_init__(self) -> None:
        n = 1
        for d in self.shape:
            n *= d
        if self.shape and n != len(self.value.values):
            raise OracleError(f"{len(self.value.values)} values do not fit shape {self.shape}")
        if self.labels and [len(a) for a in self.labels] != list(self.shape):
            raise OracleError("labels do not match the shape")

    def nested(self) -> Any:
        """The values (decimal strings) as nested lists of the shape."""
        flat: list[Any] = self.value.texts()
        for d in reversed(self.shape[1:]):
            flat = [flat[i : i + d] for i in range(0, len(flat), d)]
        return flat if self.shape else flat

    def named(self) -> dict[str, str]:
        """label -> value for 1-D results; "row/col" keys for 2-D ones."""
        t = self.value.texts()
        if len(self.labels) == 1:
            return dict(zip(self.labels[0], t, strict=True))
        if len(self.labels) == 2:
            rows, cols = self.labels
            return {f"{r}/{c}": t[i * len(cols) + j] for i, r in enumerate(rows)
                    for j, c in enumerate(cols)}  # fmt: skip
        return {f"value{i}": v for i, v in enumerate(t)}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "public",
            "values": self.value.texts(),
            "values_scaled": list(self.value.values),
            "decimals": self.value.decimals,
            "count": self.value.count,
            "shape": list(self.shape) if self.shape else None,
            "labels": [list(a) for a in self.labels] or None,
            "named": self.named(),
        }

    def line(self) -> str:
        """For people: each value to 9 significant digits (--json has them exact)."""
        short = [fmt_short(v, self.value.decimals) for v in self.value.values]
        shown = ", ".join(f"{k} {short[i]}" for i, k in enumerate(self.named()))
        exact = f"exact to {self.value.decimals} decimals in --json"
        return f"{shown} (over {self.value.count} rows; {exact})"


@dataclass(frozen=True)
class PrivateResult:
    """A result that stays off-chain: its blob digest and where to fetch the blob."""

    blob_digest: bytes
    locator: str
    shape: tuple[int, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "private",
            "blob_digest": "0x" + self.blob_digest.hex(),
            "locator": self.locator,
        }

    def line(self) -> str:
        return f"private result, blob 0x{self.blob_digest.hex()[:16]}… at {self.locator[:28]}…"


class TensorCodec:
    name = "tensor"

    def encode(self, value: AggregateResult) -> bytes:
        out = value.encode()
        if len(out) > MAX_RESULT:
            raise OracleError(f"result of {len(out)} bytes exceeds {MAX_RESULT}")
        return out

    def decode(self, data: bytes, shape: Sequence[int] = (), labels: Labels = ()) -> TensorResult:
        return TensorResult(AggregateResult.decode(data), tuple(shape), tuple(labels))


class PrivateCodec:
    name = "private"

    def encode_report(self, result_digest: bytes, locator: str | None = None) -> bytes:
        if len(result_digest) != 32:
            raise ValueError("result digest must be 32 bytes")
        locator = LOCATOR_PREFIX + result_digest.hex() if locator is None else locator
        if len(locator) > MAX_LOCATOR:
            raise ValueError(f"locator longer than {MAX_LOCATOR} characters")
        out = encode(PRIVATE_TYPES, [result_digest, locator])
        assert len(out) <= MAX_RESULT
        return out

    def decode(self, data: bytes, shape: Sequence[int] = (), labels: Labels = ()) -> PrivateResult:
        try:
            digest, locator = decode(PRIVATE_TYPES, bytes(data))
        except (DecodingError, ValueError, TypeError, UnicodeDecodeError) as e:
            raise OracleError(f"result is not an encoded private report: {e}") from None
        if encode(PRIVATE_TYPES, [digest, locator]) != bytes(data):
            raise OracleError("private report is not canonically encoded")
        return PrivateResult(bytes(digest), str(locator))


class Codec(Protocol):
    name: str

    def decode(self, data: bytes, shape: Sequence[int] = (), labels: Labels = ()) -> Any: ...


CODECS: dict[str, Codec] = {"tensor": TensorCodec(), "private": PrivateCodec()}


def codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise OracleError(f"unknown result codec {name!r}") from None

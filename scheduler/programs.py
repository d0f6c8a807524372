"""The programs a task can name, and the canonical task parameters every party hashes.

The chain stores only ``keccak(program name)`` and ``keccak(canonical params)``; the params
travel off-chain (gossip, request/response) and every receiver re-hashes them before use, so
a peer cannot make a node or data owner act on parameters the requester did not post.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eth_utils import is_checksum_address, is_hex_address, keccak, to_checksum_address

from dnode.scheduler.errors import InvalidTaskParams, UnknownProgram

CAP_MPC = 1
CAP_HE = 2

MIN_COMMITTEE = 3
MAX_COMMITTEE = 16
MAX_OWNERS = 64
MAX_VALUES = 1 << 24
PARAMS_VERSION = 1


@dataclass(frozen=True)
class Program:
    name: str
    capability: int
    description: str
    outputs: tuple[str, ...] = ("value",)
    squares: bool = False  # the program multiplies inputs by themselves (tighter input range)

    @property
    def program_id(self) -> bytes:
        return keccak(text=self.name)


_HE_OUTPUTS = ("result_digest", "locator")

PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        Program("mpc.sum", CAP_MPC, "secure sum of every data owner's values", ("sum",)),
        Program("mpc.mean", CAP_MPC, "secure mean of every data owner's values", ("mean",)),
        Program(
            "mpc.variance",
            CAP_MPC,
            "secure mean and population variance of every data owner's values",
            ("mean", "variance"),
            squares=True,
        ),
        # homomorphic encryption (node.he): the requester encrypts, the committee evaluates;
        # the on-chain result is abi.encode(bytes32 result_digest, string locator)
        *(
            Program(name, CAP_HE, desc, _HE_OUTPUTS)
            for name, desc in (
                ("he.sum", "sum of an encrypted tensor"),
                ("he.mean", "mean of an encrypted tensor, optionally along an axis"),
                ("he.dot", "weighted sum of an encrypted tensor (plaintext weights)"),
                ("he.matmul", "encrypted rows x plaintext matrix (+ bias, + polynomial)"),
                ("he.poly", "element-wise polynomial, e.g. a sigmoid approximation"),
                ("he.add", "element-wise add of a scalar, plaintext or ciphertext"),
                ("he.sub", "element-wise subtract of a scalar, plaintext or ciphertext"),
                ("he.mul", "element-wise multiply by a scalar, plaintext or ciphertext"),
                ("he.div", "element-wise divide by a scalar or plaintext (CKKS)"),
                ("he.transpose", "transpose of an encrypted matrix"),
            )
        ),
    )
}


def get_program(name: str) -> Program:
    try:
        return PROGRAMS[name]
    except KeyError:
        raise UnknownProgram(name, sorted(PROGRAMS)) from None


def program_by_id(program_id: bytes) -> Program | None:
    for p in PROGRAMS.values():
        if p.program_id == program_id:
            return p
    return None


@dataclass(frozen=True)
class TaskParams:
    """What the committee and the data owners need beyond the on-chain record."""

    program: str
    owners: tuple[str, ...]
    kind: str = "int"  # "int" or "fixed"
    frac_bits: int = 0
    bit_length: int = 64
    input_timeout: int = 120  # seconds nodes wait for all owners' shares after the committee forms
    max_values: int = 1 << 16  # values over all owners; bounds each value so the sum cannot wrap
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_program(self.program)
        if self.kind not in ("int", "fixed"):
            raise InvalidTaskParams(f"kind must be 'int' or 'fixed', not {self.kind!r}")
        if self.kind == "int" and self.frac_bits != 0:
            raise InvalidTaskParams("frac_bits must be 0 for integer inputs")
        if self.kind == "fixed" and not 1 <= self.frac_bits <= 32:
            raise InvalidTaskParams("frac_bits must be between 1 and 32 for fixed-point inputs")
        if not 16 <= self.bit_length <= 128:
            raise InvalidTaskParams("bit_length must be between 16 and 128")
        if not 1 <= len(self.owners) <= MAX_OWNERS:
            raise InvalidTaskParams(f"a task needs between 1 and {MAX_OWNERS} data owners")
        for o in self.owners:
            if not (is_hex_address(o) and is_checksum_address(to_checksum_address(o))):
                raise InvalidTaskParams(f"data owner {o!r} is not an address")
        if len({o.lower() for o in self.owners}) != len(self.owners):
            raise InvalidTaskParams("data owners must be distinct")
        if not 10 <= self.input_timeout <= 86_400:
            raise InvalidTaskParams("input_timeout must be between 10 s and 1 day")
        if self.capability == CAP_HE and not isinstance(self.extra.get("he"), dict):
            # full validation (security, depth, shapes): node.he.task.HeTask.from_task_params
            raise InvalidTaskParams("an HE task needs its HE parameters in extra['he']")
        if not 1 <= self.max_values <= MAX_VALUES:
            raise InvalidTaskParams(f"max_values must be between 1 and {MAX_VALUES}")

    @property
    def capability(self) -> int:
        return get_program(self.program).capability

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": PARAMS_VERSION,
            "program": self.program,
            "owners": [to_checksum_address(o) for o in self.owners],
            "kind": self.kind,
            "frac_bits": self.frac_bits,
            "bit_length": self.bit_length,
            "input_timeout": self.input_timeout,
            "max_values": self.max_values,
            "extra": self.extra,
        }

    def canonical(self) -> bytes:
        """Byte-exact encoding that is hashed on-chain: sorted keys, no whitespace."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> bytes:
        return keccak(self.canonical())

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskParams:
        try:
            d = json.loads(data)
            if not isinstance(d, dict) or d.get("v") != PARAMS_VERSION:
                raise InvalidTaskParams(f"unsupported params version {d.get('v')!r}")
            return cls(
                program=str(d["program"]),
                owners=tuple(str(o) for o in d["owners"]),
                kind=str(d["kind"]),
                frac_bits=int(d["frac_bits"]),
                bit_length=int(d["bit_length"]),
                input_timeout=int(d["input_timeout"]),
                max_values=int(d["max_values"]),
                extra=dict(d.get("extra") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidTaskParams(f"malformed params: {e}") from None

    def is_owner(self, address: str) -> bool:
        return address.lower() in {o.lower() for o in self.owners}

    def owner_index(self, address: str) -> int:
        return [o.lower() for o in self.owners].index(address.lower())


def threshold_for(committee_size: int) -> int:
    """Shamir degree t with an honest majority: t < m/2, the largest such t."""
    return (committee_size - 1) // 2

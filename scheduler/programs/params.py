"""The task envelope every party hashes: program, data owners, public schema, typed arguments.

The chain stores only ``keccak(program name)`` and ``keccak(canonical params)``; the params
travel off-chain (gossip, request/response) and every receiver re-hashes them before use, so
a peer cannot make a node or data owner act on parameters the requester did not post.
Constructing a :class:`TaskParams` runs the program's own validation (its spec), so a
requester learns before paying that a program cannot take a column or an argument.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_checksum_address, is_hex_address, keccak, to_checksum_address

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.registry import ProgramSpec, get_program
from dnode.scheduler.programs.schema import DEFAULT_COLUMN, Column, schema_from

MIN_COMMITTEE = 3
MAX_COMMITTEE = 16
MAX_OWNERS = 64
MAX_ROWS = 1 << 24
PARAMS_VERSION = 2
HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class TaskParams:
    """What the committee and the data owners need beyond the on-chain record.

    ``columns``: the public schema of the table columns the task uses (default: one decimal
    column ``value``); ``args``: the program's typed arguments (normalized by its spec);
    ``max_rows``: most rows all owners together may contribute (bounds every sum);
    ``extra``: engine-specific public data (HE: the encryption parameters and input digests)."""

    program: str
    owners: tuple[str, ...]
    args: dict[str, Any] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()
    input_timeout: int = 120  # seconds nodes wait for all owners' inputs once the committee forms
    max_rows: int = 1 << 16
    extra: dict[str, Any] = field(default_factory=dict)
    # private result: the requester's X25519 public key (hex); the committee seals its output
    # shares to it instead of opening them (node.mpc.delivery); "" = a public result
    result_key: str = ""

    def __post_init__(self) -> None:
        spec = get_program(self.program)
        object.__setattr__(self, "owners", tuple(self.owners))
        object.__setattr__(self, "args", spec.check_args(dict(self.args)))
        cols = schema_from(self.columns)
        if spec.uses_table and not cols:
            cols = (DEFAULT_COLUMN,)
        if not spec.uses_table and cols:
            raise InvalidTaskParams(f"{spec.name} takes no table columns")
        object.__setattr__(self, "columns", cols)
        if not 1 <= len(self.owners) <= MAX_OWNERS:
            raise InvalidTaskParams(f"a task needs between 1 and {MAX_OWNERS} data owners")
        for o in self.owners:
            if not (is_hex_address(o) and is_checksum_address(to_checksum_address(o))):
                raise InvalidTaskParams(f"data owner {o!r} is not an address")
        if len({o.lower() for o in self.owners}) != len(self.owners):
            raise InvalidTaskParams("data owners must be distinct")
        if not 10 <= self.input_timeout <= 86_400:
            raise InvalidTaskParams("input_timeout must be between 10 s and 1 day")
        if not 1 <= self.max_rows <= MAX_ROWS:
            raise InvalidTaskParams(f"max_rows must be between 1 and {MAX_ROWS}")
        spec.validate(self)
        if self.result_key:
            if len(self.result_key) != 64 or any(c not in HEX for c in self.result_key):
                raise InvalidTaskParams("result_key must be 64 lowercase hex digits")
            why = spec.private_refusal(self)
            if why:
                raise InvalidTaskParams(f"{spec.name} cannot deliver a private result: {why}")

    @property
    def spec(self) -> ProgramSpec:
        return get_program(self.program)

    @property
    def capability(self) -> int:
        """The on-chain capability bit the program needs."""
        return self.spec.capability_bit

    @property
    def bit_length(self) -> int:
        """Bit length of the MPC secure integers (owners share over its field)."""
        return self.spec.field_bits(self)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise InvalidTaskParams(f"the task has no column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": PARAMS_VERSION,
            "program": self.program,
            "owners": [to_checksum_address(o) for o in self.owners],
            "args": self.args,
            "columns": [c.to_dict() for c in self.columns],
            "input_timeout": self.input_timeout,
            "max_rows": self.max_rows,
            "extra": self.extra,
            **({"result_key": self.result_key} if self.result_key else {}),
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
                args=dict(d.get("args") or {}),
                columns=tuple(Column.from_dict(c) for c in d.get("columns") or ()),
                input_timeout=int(d["input_timeout"]),
                max_rows=int(d["max_rows"]),
                extra=dict(d.get("extra") or {}),
                result_key=str(d.get("result_key") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidTaskParams(f"malformed params: {e}") from None

    def encode_table(self, path: str | Path, owner: str | None = None) -> list[int]:
        """A data owner's file as the integers it secret-shares (type- and range-checked;
        TableError names the file, row and column of the first bad cell). ``owner``: its
        address, when the program gives owners different columns (``spec.owner_columns``)."""
        from dnode.scheduler.programs.tables import read_table

        k = self.owner_index(owner) if owner is not None and self.is_owner(owner) else None
        cols = self.spec.owner_columns(self, k)
        return self.spec.encode_owner(self, read_table(path, cols))

    @property
    def field_prime(self) -> int | None:
        """The MPC field's prime when the program fixes it (None: from ``bit_length``)."""
        return self.spec.field_prime(self)

    def encode_values(self, values: list[str], source: str = "<values>") -> list[int]:
        """Values of a one-column task (a list instead of a file), checked like a file's."""
        from dnode.scheduler.programs.tables import Table, _from_cells

        if len(self.columns) != 1:
            raise InvalidTaskParams(f"{self.program} uses {len(self.columns)} columns, not one")
        table: Table = _from_cells(source, self.columns, [(i + 1, [str(v)]) for i, v in
                                                          enumerate(values)])  # fmt: skip
        return self.spec.encode_owner(self, table)

    def contribution_error(self, values: int, other_rows: int = 0) -> str | None:
        """Why a seat must refuse an owner's ``values`` shares (None: acceptable): not whole
        rows of the program's width, or more rows in all than ``max_rows`` (every sum's bound,
        hence the field size, assumes at most that many)."""
        width = max(self.spec.width(self), 1)
        if values % width:
            return f"{values} shares are not whole rows of {width}"
        if other_rows + values // width > self.max_rows:
            return f"more than max_rows={self.max_rows} rows in all"
        return None

    def is_owner(self, address: str) -> bool:
        return address.lower() in {o.lower() for o in self.owners}

    def owner_index(self, address: str) -> int:
        return [o.lower() for o in self.owners].index(address.lower())


def threshold_for(committee_size: int) -> int:
    """Shamir degree t with an honest majority: t < m/2, the largest such t."""
    return (committee_size - 1) // 2

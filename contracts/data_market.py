"""Types and codecs of the on-chain data marketplace (contracts/vyper/datasets.vy).

The data functions run in the ``dnode_data`` extension, which ``dnode`` reaches by
DELEGATECALL from its fallback; Vyper 0.4.3 cannot return raw data from a fallback, so what a
data function returns arrives ABI-encoded once more as ``bytes`` (the manifest's ABI says so).
:func:`unwrap` decodes the inner value with the types below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

MAX_PROGRAMS = 16  # datasets.vy
MAX_TASK_DATASETS = 8
MAX_LOCATOR = 256
MICRO = 1_000_000  # budgets and costs are integers in millionths of epsilon (or rho)
DATASET_INFO_TYPE = (
    "(address,bytes32,uint256,uint256,uint256,uint256,uint256,uint256,bool,bytes32[],string)"
)
# task entry packing (datasets.vy): dataset id 0..63 | cost 64..127 | price 128..223
_ID_MASK = (1 << 64) - 1


class BudgetKind(IntEnum):
    """How a dataset's privacy budget is accounted (datasets.vy EPSILON / RHO)."""

    EPSILON = 1  # pure epsilon-DP, costs add up (micro-epsilon)
    RHO = 2  # zero-concentrated DP, rho adds up (micro-rho)


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as the contract holds it (``dataset_info``)."""

    dataset_id: int
    owner: str
    schema_digest: bytes
    rows: int
    price: int  # wei per task
    expiry: int  # unix seconds; no task may name it from then on
    budget_kind: BudgetKind
    budget: int  # total, millionths
    spent: int  # charged by tasks posted and not refunded, millionths
    retired: bool
    programs: tuple[bytes, ...]
    locator: str

    @property
    def exists(self) -> bool:
        return int(self.owner, 16) != 0

    @property
    def budget_left(self) -> int:
        return self.budget - self.spent

    def allows(self, program_id: bytes) -> bool:
        return bytes(program_id) in self.programs


@dataclass(frozen=True)
class TaskDataset:
    """A dataset a task computes over, with what the task paid and charged for it."""

    dataset_id: int
    cost: int  # privacy budget charged, millionths
    price: int  # wei escrowed for the owner


def unwrap(raw: bytes, types: list[str]) -> tuple[Any, ...]:
    """Decode a data function's return value from dnode's ``bytes`` wrapper."""
    return tuple(abi_decode(types, bytes(raw)))


def dataset_from_abi(dataset_id: int, value: tuple[Any, ...]) -> DatasetInfo:
    owner, schema, rows, price, expiry, kind, budget, spent, retired, programs, locator = value
    return DatasetInfo(
        dataset_id=dataset_id,
        owner=to_checksum_address(owner),
        schema_digest=bytes(schema),
        rows=int(rows),
        price=int(price),
        expiry=int(expiry),
        budget_kind=BudgetKind(int(kind)) if int(kind) else BudgetKind.EPSILON,
        budget=int(budget),
        spent=int(spent),
        retired=bool(retired),
        programs=tuple(bytes(p) for p in programs),
        locator=str(locator),
    )


def unpack_entry(word: int) -> TaskDataset:
    """A task entry as stored on-chain (``task_datasets``)."""
    return TaskDataset(word & _ID_MASK, (word >> 64) & _ID_MASK, word >> 128)


def to_micro(value: float | str) -> int:
    """A privacy parameter (epsilon or rho) in the contract's fixed-point units."""
    micro = round(float(value) * MICRO)
    if micro <= 0:
        raise ValueError(f"privacy parameter must be positive, got {value}")
    return micro

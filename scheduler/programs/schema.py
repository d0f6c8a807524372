"""The public schema of a task's input table: named, typed columns with declared ranges.

A schema travels inside the task parameters (so it is hashed on-chain): every node, owner and
requester sees the same columns, types and ranges, and never a value. A program's spec checks
the schema when the task is built, so a requester learns *before paying* that a program cannot
take a column (e.g. a range whose squares overflow the MPC field).

Column types:

* ``int``: integers in ``[min, max]``;
* ``fixed``: decimals with ``scale`` digits after the point, in ``[min, max]``; encoded exactly
  as ``x * 10**scale`` (a value with more digits is refused, never rounded);
* ``cat``: one label of a declared ``domain`` (encoded as its index);
* ``id``: an identifier (free text); never an arithmetic input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cached_property
from typing import Any

from dnode.scheduler.errors import InvalidTaskParams

TYPES = ("int", "fixed", "cat", "id")
NUMERIC = ("int", "fixed")
# the envelope's cap on a task's schema; each program's spec sets its own limit
# (``ProgramSpec.max_columns``, 32 by default; ml.logreg_step takes 64 features and a label:
# its MPC width is its statistics', not its columns')
MAX_COLUMNS = 65
MAX_SCALE = 18
MAX_DOMAIN = 64
MAX_MAGNITUDE = 1 << 96  # |encoded bound|: keeps every program's field below 2**128 or so


def parse_decimal(text: str) -> Fraction:
    """An exact decimal (``'-1.25'``, ``'3'``, ``'1e3'``); ValueError for anything else."""
    s = text.strip()
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not s or not d.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return Fraction(d)


@dataclass(frozen=True)
class Column:
    """One declared column. ``lo``/``hi`` are the declared range as exact fractions."""

    name: str
    type: str
    scale: int = 0
    lo: Fraction = Fraction(0)
    hi: Fraction = Fraction(0)
    domain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise InvalidTaskParams(f"column name {self.name!r} must be alphanumeric (_ - ok)")
        if self.type not in TYPES:
            raise InvalidTaskParams(f"{where}: type {self.type!r} is not one of {TYPES}")
        if self.type == "int" and self.scale:
            raise InvalidTaskParams(f"{where}: an int column has no scale")
        if self.type == "fixed" and not 0 <= self.scale <= MAX_SCALE:
            raise InvalidTaskParams(f"{where}: scale must be 0..{MAX_SCALE}")
        if self.type in NUMERIC:
            if self.lo > self.hi:
                raise InvalidTaskParams(f"{where}: min {self.lo} > max {self.hi}")
            for b in (self.lo, self.hi):
                if (b * 10**self.scale).denominator != 1:
                    raise InvalidTaskParams(
                        f"{where}: bound {b} has more than {self.scale} decimals"
                    )
            if max(abs(self.enc_lo), abs(self.enc_hi)) > MAX_MAGNITUDE:
                raise InvalidTaskParams(f"{where}: declared range is too wide (over 2**96 units)")
        distinct = len(set(self.domain)) == len(self.domain)
        if self.type == "cat" and not (1 <= len(self.domain) <= MAX_DOMAIN and distinct):
            raise InvalidTaskParams(f"{where}: domain needs 1..{MAX_DOMAIN} distinct labels")

    # ---- encoding ----------------------------------------------------------------------

    @cached_property
    def _unit(self) -> int:
        return 10**self.scale

    @cached_property
    def _enc_range(self) -> tuple[int, int]:
        # exact: the bounds have at most ``scale`` decimals (checked in __post_init__)
        return self.enc_lo, self.enc_hi

    @property
    def enc_lo(self) -> int:
        return int(self.lo * 10**self.scale)

    @property
    def enc_hi(self) -> int:
        return int(self.hi * 10**self.scale)

    @property
    def bound(self) -> int:
        """Largest |encoded value| of this column (the one-hot width for ``cat``: 1)."""
        return max(abs(self.enc_lo), abs(self.enc_hi)) if self.type in NUMERIC else 1

    def parse(self, text: str) -> int | str:
        """One cell as the integer the MPC computes on (or the text of an ``id``).

        ValueError (a short reason, no file/row: the caller adds them) if it does not fit."""
        s = text.strip()
        if self.type == "id":
            if not s:
                raise ValueError("empty identifier")
            return s
        if self.type == "cat":
            try:
                return self.domain.index(s)
            except ValueError:
                raise ValueError(
                    f"{s!r} is not in the declared domain {list(self.domain)}"
                ) from None
        digits = s[1:] if s.startswith("-") else s
        if digits.isdecimal() and digits.isascii():  # an integer: no Fraction (1M-row files)
            iv = int(s) * self._unit
            if not self._enc_range[0] <= iv <= self._enc_range[1]:
                raise ValueError(f"{s!r} is outside the declared range [{self.lo}, {self.hi}]")
            return iv
        x = parse_decimal(s)
        v = x * 10**self.scale
        if v.denominator != 1:
            what = "an integer" if self.type == "int" else f"a decimal with <= {self.scale} digits"
            raise ValueError(f"{s!r} is not {what}")
        if not self.lo <= x <= self.hi:
            raise ValueError(f"{s!r} is outside the declared range [{self.lo}, {self.hi}]")
        return int(v)

    def decode(self, v: int) -> Fraction:
        return Fraction(v, 10**self.scale)

    # ---- wire form ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type in NUMERIC:
            d.update(min=_dec(self.lo), max=_dec(self.hi))
            if self.type == "fixed":
                d["scale"] = self.scale
        if self.type == "cat":
            d["domain"] = list(self.domain)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Column:
        if not isinstance(d, Mapping):
            raise InvalidTaskParams("a column must be an object")
        try:
            typ = str(d["type"])
            name = str(d["name"])
            if typ in NUMERIC:
                scale = int(d.get("scale", 0))
                return cls(name, typ, scale, _frac(d["min"]), _frac(d["max"]))
            if typ == "cat":
                return cls(name, typ, domain=tuple(str(x) for x in d["domain"]))
            return cls(name, typ)
        except KeyError as e:
            raise InvalidTaskParams(f"column {d.get('name')!r} lacks {e}") from None
        except (TypeError, ValueError) as e:
            raise InvalidTaskParams(f"column {d.get('name')!r}: {e}") from None

    @classmethod
    def parse_flag(cls, text: str) -> Column:
        """``NAME:int:MIN:MAX``, ``NAME:fixed:SCALE:MIN:MAX``, ``NAME:cat:A|B|C``, ``NAME:id``."""
        parts = text.split(":")
        try:
            name, typ, rest = parts[0], parts[1], parts[2:]
            if typ == "int" and len(rest) == 2:
                return cls(name, typ, 0, _frac(rest[0]), _frac(rest[1]))
            if typ == "fixed" and len(rest) == 3:
                return cls(name, typ, int(rest[0]), _frac(rest[1]), _frac(rest[2]))
            if typ == "cat" and len(rest) == 1:
                return cls(name, typ, domain=tuple(rest[0].split("|")))
            if typ == "id" and not rest:
                return cls(name, typ)
        except (IndexError, ValueError):
            pass
        raise InvalidTaskParams(
            f"column {text!r}: want NAME:int:MIN:MAX, NAME:fixed:SCALE:MIN:MAX, "
            "NAME:cat:A|B|C or NAME:id"
        )


def _frac(x: Any) -> Fraction:
    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise ValueError(f"bound {x!r} must be an integer or a decimal string")
    return Fraction(x) if isinstance(x, int) else parse_decimal(x)


def _dec(x: Fraction) -> int | str:
    if x.denominator == 1:
        return int(x)
    return format(Decimal(x.numerator) / Decimal(x.denominator), "f")


def schema_from(cols: Sequence[Any]) -> tuple[Column, ...]:
    out = tuple(c if isinstance(c, Column) else Column.from_dict(c) for c in cols)
    if len(out) > MAX_COLUMNS:
        raise InvalidTaskParams(f"at most {MAX_COLUMNS} columns")
    if len({c.name for c in out}) != len(out):
        raise InvalidTaskParams("column names must be distinct")
    return out


#: The schema of a task that names none: one decimal column, the classic "one number a line".
DEFAULT_COLUMN = Column("value", "fixed", 6, Fraction(-(10**9)), Fraction(10**9))

"""Programs as plug-ins: the ProgramSpec every program declares, and the registry that finds them.

A program is ONE spec (a subclass or instance of :class:`ProgramSpec`, importable without mpyc
or tenseal) plus ONE kernel (the MPC or HE code, named by ``spec.kernel`` as a dotted module
path and imported only where it runs). The node, the CLI, the oracle reader and the docs go
through the spec and the engine interface (``node.engines.base``); none of them branches on a
program name or a capability.

Discovery: every module of every subpackage of ``scheduler.programs`` (``stats/spec.py``,
``he/reduce.py``, ...) is imported on first lookup; a module registers its specs with
:func:`register` at import. ``DNODE_PROGRAMS`` (``os.pathsep``-separated module names, e.g.
``tests.programs.clip_sum``) adds programs from elsewhere -- a test adds a program by writing a
spec module and a kernel module and setting that variable for the processes it starts.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from eth_utils import keccak

from dnode.scheduler.dp import Plan, Release, dp_target, plan
from dnode.scheduler.errors import InvalidTaskParams, UnknownProgram

if TYPE_CHECKING:
    from dnode.scheduler.programs.schema import Column
    from dnode.scheduler.programs.tables import Table


class TaskView(Protocol):
    """What a spec reads of a task's params (``scheduler.programs.params.TaskParams`` is one;
    declared here so the envelope can find its spec without an import cycle)."""

    @property
    def program(self) -> str: ...
    @property
    def owners(self) -> tuple[str, ...]: ...
    @property
    def args(self) -> dict[str, Any]: ...
    @property
    def columns(self) -> tuple[Column, ...]: ...
    @property
    def max_rows(self) -> int: ...
    @property
    def extra(self) -> dict[str, Any]: ...


CAP_MPC = 1
CAP_HE = 2
#: capability name -> the on-chain capability bit (contracts/vyper: CAP_MPC, CAP_HE)
CAPABILITY_BITS = {"mpc": CAP_MPC, "he": CAP_HE}
ENV_PROGRAMS = "DNODE_PROGRAMS"
MAX_RESULT_VALUES = 16  # what fits the contract's 1024-byte result with shape and labels


@dataclass(frozen=True)
class Arg:
    """One typed program argument: a CLI flag ``--NAME`` and a key of ``TaskParams.args``.

    ``type``: ``int``, ``decimal`` (exact, kept as a string), ``decimals`` (a comma-separated
    list on the command line, a JSON list in params), ``str`` or ``json`` (any JSON value)."""

    name: str
    type: str
    help: str
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()

    def coerce(self, value: Any, program: str) -> Any:
        where = f"{program}: argument {self.name!r}"
        try:
            if self.type == "int":
                if isinstance(value, bool):
                    raise ValueError("not an integer")
                v: Any = int(value)
                if isinstance(value, str) or v == value:
                    pass
                else:
                    raise ValueError("not an integer")
            elif self.type == "decimal":
                v = _decimal_text(value)
            elif self.type == "decimals":
                items = value.split(",") if isinstance(value, str) else list(value)
                v = [_decimal_text(x) for x in items if str(x).strip()]
            elif self.type == "str":
                if not isinstance(value, str):
                    raise ValueError("not a string")
                v = value
            else:
                v = value
        except (TypeError, ValueError) as e:
            raise InvalidTaskParams(f"{where}: {e}") from None
        if self.choices and v not in self.choices:
            raise InvalidTaskParams(f"{where}: {v!r} is not one of {list(self.choices)}")
        return v


def _decimal_text(x: Any) -> str:
    from dnode.scheduler.programs.schema import _dec, parse_decimal

    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise ValueError(f"{x!r} is not an integer or a decimal string")
    return str(_dec(parse_decimal(str(x))))


#: the differential-privacy arguments of every program whose spec sets ``dp = True``
#: (calibration and composition: :mod:`dnode.scheduler.dp`)
DP_ARGS = (
    Arg("epsilon", "decimal", "differential privacy: total epsilon of the noisy outputs "
        "(pure DP; noise sampled inside the MPC); the task's privacy cost"),
    Arg("rho", "decimal", "differential privacy: total zCDP rho (instead of --epsilon)"),
    Arg("delta", "decimal", "with --epsilon/--rho: the largest delta the in-MPC sampler's "
        "finite precision may add (default 1e-9)"),
)  # fmt: skip


@dataclass(frozen=True)
class Output:
    """A program's public result before encoding: exact values in row-major order, the shape
    (``()`` scalar, ``(n,)`` vector, ``(r, c)`` matrix) and one label list per axis."""

    values: tuple[Fraction, ...]
    count: int
    shape: tuple[int, ...] = ()
    labels: tuple[tuple[str, ...], ...] = ()


class ProgramSpec:
    """What a program declares. Subclass it (class attributes) or instantiate with keywords.

    Required: ``name``, ``capability`` ("mpc" or "he"), ``description``, ``kernel``.
    The defaults describe an MPC program over a table of numeric columns.
    """

    name: str = ""
    capability: str = "mpc"
    description: str = ""
    family: str = ""
    kernel: str = ""  # dotted module path of the kernel (imported only where it runs)
    args: tuple[Arg, ...] = ()
    input_types: tuple[str, ...] = ("int", "fixed")  # column types it takes
    min_columns: int = 1
    max_columns: int = 32
    uses_table: bool = True  # inputs are owners' table columns (else: engine-specific inputs)
    reveals: str = "the output only"
    revealed_to: str = "the committee, then everyone (on-chain)"
    codec: str = "tensor"  # oracle.codecs name of the output codec
    cost: str = ""  # a short cost hint for node operators
    supports_rerun: bool = True  # a disputed task can be re-executed by a fresh committee
    squares: ClassVar[bool] = False
    # what each owner's influence witness bounds (node.mpc.influence): 0 its column sums,
    # 1 also its sums of squares, 2 also its cross products (the kernel reveals X^T X)
    moments: int = 0
    # differential privacy: the program takes DP_ARGS, declares its noisy releases
    # (``dp_releases``) and its kernel adds the noise of ``dp_plan`` to what it opens
    dp: bool = False
    # the neighbouring relation the guarantee is stated for, when it is not dnode's default
    # (one table row changed) -- e.g. one owner's id changed in a PSI; and who, if anyone,
    # sees the exact value anyway (the guarantee then protects the output from everyone else)
    dp_neighbours: str = ""
    dp_scope: str = ""
    # why a program that takes no DP arguments cannot offer them (the one-line refusal)
    dp_refusal: str = ""

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            if not hasattr(type(self), k):
                raise TypeError(f"unknown ProgramSpec field {k!r}")
            setattr(self, k, v)
        if not self.name or self.capability not in CAPABILITY_BITS or not self.kernel:
            raise TypeError(f"program spec {self.name!r} needs a name, a capability and a kernel")

    def __repr__(self) -> str:
        return f"<program {self.name} ({self.capability})>"

    @property
    def program_id(self) -> bytes:
        return keccak(text=self.name)

    @property
    def capability_bit(self) -> int:
        return CAPABILITY_BITS[self.capability]

    # ---- arguments and validation (requester side, node side: the same code) ----------------

    @property
    def all_args(self) -> tuple[Arg, ...]:
        """The program's own arguments, plus the DP arguments when it supports DP."""
        return (*self.args, *(DP_ARGS if self.dp else ()))

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        known = {a.name: a for a in self.all_args}
        unknown = sorted(set(args) - set(known))
        dp_asked = sorted(set(unknown) & {a.name for a in DP_ARGS})
        if dp_asked:
            why = f": {self.dp_refusal}" if self.dp_refusal else ""
            raise InvalidTaskParams(
                f"{self.name} offers no differential privacy (--{dp_asked[0]}){why}; "
                "see docs/protocol.md, Differential privacy"
            )
        if unknown:
            raise InvalidTaskParams(f"{self.name}: unknown argument(s) {unknown}")
        out: dict[str, Any] = {}
        for a in self.all_args:
            if a.name in args and args[a.name] is not None:
                out[a.name] = a.coerce(args[a.name], self.name)
            elif a.required:
                raise InvalidTaskParams(f"{self.name}: argument {a.name!r} is required")
            elif a.default is not None:
                out[a.name] = a.coerce(a.default, self.name)
        return out

    def private_refusal(self, params: TaskView) -> str | None:
        """Why this program cannot deliver its result privately to the requester (None: it
        can). An MPC kernel can when it opens nothing but its outputs: those are sealed to the
        requester share by share instead (node.mpc.delivery)."""
        if self.capability != "mpc":
            return "its results are already encrypted to the requester's own key"
        return None

    def validate(self, params: TaskView) -> None:
        """Raise InvalidTaskParams if this program cannot run on ``params`` (schema, ranges)."""
        if not self.uses_table:
            return
        cols = params.columns
        if not self.min_columns <= len(cols) <= self.max_columns:
            raise InvalidTaskParams(
                f"{self.name} takes {self.min_columns}..{self.max_columns} column(s), "
                f"the task names {len(cols)}"
            )
        for c in cols:
            if c.type not in self.input_types:
                raise InvalidTaskParams(
                    f"{self.name} cannot take column {c.name!r} of type {c.type} "
                    f"(it takes {', '.join(self.input_types)})"
                )

    # ---- differential privacy ----------------------------------------------------------

    def dp_releases(self, params: TaskView) -> list[Release]:
        """The noisy releases of a DP task (names the kernel opens, sizes, L1 sensitivities
        for one changed row, in encoded integer units)."""
        raise InvalidTaskParams(f"{self.name} offers no differential privacy")

    def dp_plan(self, params: TaskView) -> Plan | None:
        """The task's DP calibration (None: the task asked for no noise): the same on the
        requester's machine, every node and every reader (OpenDP, :mod:`scheduler.dp`)."""
        if not self.dp:
            return None
        target = dp_target(params.args)
        if target is None:
            return None
        return _plan(tuple(self.dp_releases(params)), tuple(sorted(target.items())))

    def reruns(self, params: TaskView) -> bool:
        """Whether a disputed task is re-executed by a fresh committee: not a DP task (a
        second noisy release of the same statistics would spend budget nobody charged; the
        first result stands, docs/protocol.md "Differential privacy")."""
        return self.supports_rerun and self.dp_plan(params) is None

    def guarantee(self, params: TaskView) -> dict[str, Any] | None:
        """The DP guarantee a result of this task carries (None: an exact result)."""
        p = self.dp_plan(params)
        if p is None:
            return None
        g = p.guarantee()
        if self.dp_neighbours:
            g["neighbours"] = self.dp_neighbours
        if self.dp_scope:
            g["scope"] = self.dp_scope
        return g

    # ---- owner side --------------------------------------------------------------------

    def owner_columns(self, params: TaskView, owner: int | None) -> tuple[Column, ...]:
        """The columns owner number ``owner`` holds (its file is read against these); all of
        the task's by default. A program over vertically split tables (a join) differs."""
        return tuple(params.columns)

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        """An owner's table as the flat, row-major integers it secret-shares (``width`` per row)."""
        cols = list(zip(*table.data, strict=True))
        return [int(v) for row in cols for v in row]

    def width(self, params: TaskView) -> int:
        """Integers per table row after owner-side encoding."""
        return len(params.columns)

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        """(per encoded column its declared |value| bound, moment level) that every owner's
        witness proves inside the MPC (node.mpc.influence); None: no table input (HE)."""
        if not self.uses_table:
            return None
        width = self.width(params)
        bounds = [max(1, c.bound) for c in params.columns]
        if len(bounds) != width:  # an encoding that is not one integer per column (one-hot)
            bounds = [max(bounds, default=1)] * width
        return tuple(bounds), self.moments

    def influence_checks(self, params: TaskView) -> list[tuple[list[tuple[int, int]], int, int]]:
        """Linear checks that replace the per-column witness quantities (node.mpc.influence
        ``Check``): ``(terms [(column, coefficient)], constant, upper)``, each proving
        ``constant + sum(coefficient * column sum) >= 0`` with the owner's bits; [] (the
        default): the column bounds of :meth:`influence`. For owners that contribute
        statistics they computed themselves (the federated ML steps)."""
        return []

    # ---- engine side -------------------------------------------------------------------

    def field_bits(self, params: TaskView) -> int:
        """Bit length of the MPC secure integers (the field follows from it)."""
        return 64

    def field_prime(self, params: TaskView) -> int | None:
        """The prime of the MPC field when the program needs a specific one (e.g. a group
        order, so shares are exponents); None: MPyC's rule for ``field_bits`` bits."""
        return None

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        """What the kernel needs besides the shares (JSON; identical on every party)."""
        return dict(params.args)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        """The public output, computed from what the kernel revealed (same on every node)."""
        raise InvalidTaskParams(f"{self.name} defines no output")

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return ()

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        """One label list per output axis (empty: unlabelled)."""
        return ()

    def layout(self, params: TaskView) -> tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]:
        """(shape, labels) of the output: public, so any reader holding the params can
        reshape the flat on-chain values (see oracle.codecs)."""
        return self.out_shape(params), self.labels(params)

    def check_output_size(self, params: TaskView) -> None:
        n = 1
        for d in self.out_shape(params):
            n *= d
        if n > MAX_RESULT_VALUES:
            raise InvalidTaskParams(
                f"{self.name}: the result would have {n} values; at most {MAX_RESULT_VALUES} fit "
                "the on-chain result (name fewer columns or bins)"
            )


Program = ProgramSpec  # the name older code uses


@lru_cache(maxsize=128)
def _plan(releases: tuple[Release, ...], target: tuple[tuple[str, str], ...]) -> Plan:
    return plan(releases, dict(target))


_REGISTRY: dict[str, ProgramSpec] = {}
_BY_ID: dict[bytes, ProgramSpec] = {}
_lock = threading.RLock()
_discovered = False


def register(spec: ProgramSpec) -> ProgramSpec:
    """Add a spec; a second spec with the same name is a programming error."""
    with _lock:
        old = _REGISTRY.get(spec.name)
        if old is not None and type(old) is not type(spec):
            raise ValueError(f"program {spec.name!r} is registered twice")
        _REGISTRY[spec.name] = spec
        _BY_ID[spec.program_id] = spec
    return spec


def discover(extra: Sequence[str] | None = None) -> None:
    """Import every program family module (once), plus ``DNODE_PROGRAMS`` / ``extra`` modules."""
    global _discovered
    with _lock:
        if not _discovered:
            _discovered = True
            # the family packages beside this module (found on disk: no import of the package)
            for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
                if info.ispkg:
                    sub = importlib.import_module(f"{__package__}.{info.name}")
                    for m in pkgutil.iter_modules(sub.__path__):
                        importlib.import_module(f"{sub.__name__}.{m.name}")
        env = os.environ.get(ENV_PROGRAMS, "")
        for name in [*(x for x in env.split(os.pathsep) if x), *(extra or ())]:
            importlib.import_module(name)


def get_program(name: str) -> ProgramSpec:
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProgram(name, sorted(_REGISTRY)) from None


def program_by_id(program_id: bytes) -> ProgramSpec | None:
    discover()
    return _BY_ID.get(bytes(program_id))


def all_programs() -> list[ProgramSpec]:
    discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.capability, s.family, s.name))

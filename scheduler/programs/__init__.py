"""Programs a task can name (``registry``), the task envelope (``params``), table schemas.

Re-exports the names most callers need; see :mod:`scheduler.programs.registry` for how a
program is declared and discovered.
"""

from dnode.scheduler.programs.params import (
    MAX_COMMITTEE,
    MAX_OWNERS,
    MAX_ROWS,
    MIN_COMMITTEE,
    TaskParams,
    threshold_for,
)
from dnode.scheduler.programs.registry import (
    CAP_HE,
    CAP_MPC,
    Arg,
    Output,
    Program,
    ProgramSpec,
    all_programs,
    get_program,
    program_by_id,
    register,
)
from dnode.scheduler.programs.schema import Column

__all__ = [
    "CAP_HE",
    "CAP_MPC",
    "MAX_COMMITTEE",
    "MAX_OWNERS",
    "MAX_ROWS",
    "MIN_COMMITTEE",
    "Arg",
    "Column",
    "Output",
    "Program",
    "ProgramSpec",
    "TaskParams",
    "all_programs",
    "get_program",
    "program_by_id",
    "register",
    "threshold_for",
]

"""Building a ``synth.mst`` task from tables' public schemas (what ``dnode synth`` calls), and
turning its opened result into synthetic rows and a quality report (the requester's side)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.params import TaskParams
from dnode.scheduler.programs.schema import Column
from dnode.scheduler.programs.synth.spec import SynthMst, unpack

PROGRAM = "synth.mst"


def synth_params(
    tables: Sequence[tuple[str, Sequence[Column]]],
    owners: Sequence[str],
    *,
    join: str | None,
    epsilon: str | None = None,
    rho: str | None = None,
    delta: str | None = None,
    bins: int = 8,
    max_rows: int = 1 << 16,
    input_timeout: int = 120,
    result_key: str = "",
) -> TaskParams:
    """The task over ``tables`` (per owner, in owner order: its table's name and columns).

    ``join``: the id column the owners' tables share (vertical: two owners, different value
    columns, joined on it in the MPC); None: the owners hold the same columns (horizontal)."""
    if len(tables) != len(owners):
        raise InvalidTaskParams("give one table per data owner")
    args: dict[str, Any] = {"bins": bins}
    for k, v in (("epsilon", epsilon), ("rho", rho), ("delta", delta)):
        if v is not None:
            args[k] = v
    if join is not None:
        if len(tables) != 2:
            raise InvalidTaskParams(f"--join takes two tables (datasets), got {len(tables)}")
        ident: Column | None = None
        cols: list[Column] = []
        held: list[list[str]] = []
        for name, tcols in tables:
            ids = [c for c in tcols if c.name == join]
            if not ids or ids[0].type != "id":
                raise InvalidTaskParams(f"table {name!r} has no id column {join!r}")
            ident = ident or ids[0]
            mine = [c for c in tcols if c.type != "id"]
            for c in mine:
                if any(c.name == x.name for x in cols):
                    raise InvalidTaskParams(
                        f"column {c.name!r} is in both tables: rename one (a vertical "
                        "layout splits the columns between the owners)"
                    )
            cols += mine
            held.append([c.name for c in mine])
        assert ident is not None
        args["layout"] = {"mode": "vertical", "tables": held}
        columns: tuple[Column, ...] = (ident, *cols)
    else:
        first = [c for c in tables[0][1] if c.type != "id"]
        for name, tcols in tables[1:]:
            if [c for c in tcols if c.type != "id"] != first:
                raise InvalidTaskParams(
                    f"table {name!r} has other columns than {tables[0][0]!r}: without --join "
                    "every owner holds the same columns (UNION ALL)"
                )
        args["layout"] = {"mode": "horizontal"}
        columns = tuple(first)
    return TaskParams(
        PROGRAM, tuple(owners), args=args, columns=columns, max_rows=max_rows,
        input_timeout=input_timeout, result_key=result_key,
    )  # fmt: skip


def write_outputs(
    params: TaskParams,
    values: Sequence[Any],
    *,
    rows: int,
    out: Path,
    report: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the model to the opened measurements, write ``rows`` synthetic rows to ``out`` (CSV)
    and the quality report (JSON) beside it (``report``: default ``out`` + ``.report.json``);
    returns the report."""
    from dnode.scheduler.programs.synth import model

    spec = params.spec
    if not isinstance(spec, SynthMst):
        raise InvalidTaskParams(f"task program {params.program} is not {PROGRAM}")
    meas = unpack(spec, params, values)
    _, text, quality = model.synthesize(meas, rows, seed)
    model.write_csv(out, meas.columns, text)
    doc = {
        "program": PROGRAM,
        "rows": rows,
        "out": str(out),
        "guarantee": spec.guarantee(params),
        "binning": {
            b.column.name: b.labels() for b in meas.columns
        },  # public, from the declared ranges: data-independent
        "quality": quality,
    }
    path = report or out.with_name(out.name + ".report.json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    doc["report"] = str(path)
    return doc

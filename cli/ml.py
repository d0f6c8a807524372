"""``dnode ml kmeans`` / ``dnode ml logreg``: train over owners' tables and wait for the model.

Thin: ``--federated`` runs the chain of step tasks of :meth:`Client.kmeans` /
:meth:`Client.logreg` (one task per iteration, owners online); without it, one task of the
MPC program (``ml.kmeans`` / ``ml.logreg``: every row's assignment or sigmoid inside the MPC,
owners contribute once) is posted and awaited, as ``dnode task post`` + ``task result``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dnode.cli.context import CliError, Ctx
from dnode.cli.task import COLUMN_HELP
from dnode.cli.units import AMOUNT


def _common(f: Any) -> Any:
    """The options every training command shares (as ``dnode task post``)."""
    opts = [
        click.option("--owner", "owners", multiple=True, required=True,
                     help="Address of a data owner (repeatable)."),
        click.option("--column", "columns", multiple=True, help=COLUMN_HELP),
        click.option("--schema", type=click.Path(dir_okay=False, path_type=Path),
                     help="Columns as a JSON file."),
        click.option("--federated", is_flag=True,
                     help="One task per iteration: owners compute each iteration's statistics "
                     "for the public model in plaintext (docs/protocol.md 'Federated ML')."),
        click.option("--tol", default="0", show_default=True,
                     help="Stop once no model value moves more than this (column units)."),
        click.option("--reward", type=AMOUNT, required=True,
                     help="Escrowed reward per task (--federated: per iteration)."),
        click.option("--committee", "committee_size", default=3, show_default=True,
                     help="Committee size m."),
        click.option("--seat-timeout", default=120, show_default=True,
                     help="Seconds to fill the seats (each task)."),
        click.option("--report-timeout", default=600, show_default=True,
                     help="Seconds after posting by which each task must be reported."),
        click.option("--input-timeout", default=120, show_default=True,
                     help="Seconds nodes wait for the owners' shares (each task)."),
        click.option("--max-rows", default=1 << 16, show_default=True,
                     help="Most rows all owners together hold (bounds every statistic)."),
        click.option("--min-owners", type=click.IntRange(min=1), default=None,
                     help="Fewest distinct owners that must contribute."),
        click.option("--bootstrap", multiple=True, envvar="DNODE_BOOTSTRAP",
                     help="Peer multiaddr to announce the tasks through (repeatable)."),
    ]  # fmt: skip
    for o in reversed(opts):
        f = o(f)
    return f


@click.group("ml")
def ml() -> None:
    """Train k-means or logistic regression over owners' tables (--federated: a task per step).

    \b
    Examples:
      dnode ml kmeans --federated --owner 0xA.. --owner 0xB.. --column x:fixed:2:-100:100 \\
          --column y:fixed:2:-100:100 --k 3 --init -40,-40,40,40,40,-40 --reward 0.1ether \\
          --bootstrap /ip4/…/p2p/…
      dnode ml logreg --federated --owner 0xA.. --owner 0xB.. --schema cancer.json \\
          --iterations 8 --reward 0.1ether --bootstrap /ip4/…/p2p/…
    """


def _post_kw(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "reward": kw["reward"], "committee": kw["committee_size"],
        "seat_timeout": kw["seat_timeout"], "report_timeout": kw["report_timeout"],
        "input_timeout": kw["input_timeout"], "max_rows": kw["max_rows"],
        "min_owners": kw["min_owners"], "bootstrap": kw["bootstrap"],
    }  # fmt: skip


def _emit_run(c: Ctx, run: Any, what: str) -> None:
    out = run.to_json()
    tasks = ", ".join(str(t) for t in run.task_ids)
    done = ", converged" if run.converged else ""
    c.emit(out, f"{what}: {len(run.task_ids)} step(s) (tasks {tasks}){done}; "
           f"last: {', '.join(out['values'])}")  # fmt: skip


def _one_task(c: Ctx, program: str, args: dict[str, Any], kw: dict[str, Any],
              private: bool) -> None:  # fmt: skip
    """Without --federated: one task of the MPC program, posted and awaited."""
    client = c.client(kw["bootstrap"])
    post = _post_kw(kw)
    t = client.post(program, owners=kw["owners"], columns=kw["columns"], schema=kw["schema"],
                    args=args, private_result=private, **post)  # fmt: skip
    r = t.result(wait=kw["report_timeout"] + 60, progress=False)
    c.emit({"task_id": t.id, "program": program, **r.to_json()},
           f"task {t.id} ({program}): {r.line}")  # fmt: skip


@ml.command("kmeans")
@_common
@click.option("--k", type=click.IntRange(min=1), required=True, help="Number of clusters.")
@click.option("--init", help="Initial centroids: k rows of the columns, row-major, e.g. "
              "-40,-40,40,40 (default: public draws from the ranges by --seed).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Public seed of the initial draws.")
@click.option("--iterations", default=10, show_default=True, help="Lloyd iterations at most.")
@click.pass_context
def kmeans(cctx: click.Context, **kw: Any) -> None:
    """k-means (Lloyd) over the owners' points; prints the centroids and cluster sizes.

    \b
    Examples:
      dnode ml kmeans --federated --owner 0xA.. --owner 0xB.. --owner 0xC.. \\
          --column x:fixed:2:-100:100 --column y:fixed:2:-100:100 --k 3 \\
          --init -40,-40,40,40,40,-40 --iterations 10 --reward 0.1ether --bootstrap /ip4/…
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    init = [v for v in (kw["init"] or "").split(",") if v.strip()]
    if not kw["federated"]:
        args: dict[str, Any] = {"k": kw["k"], "iterations": kw["iterations"], "tol": kw["tol"],
                                "seed": kw["seed"], **({"init": init} if init else {})}  # fmt: skip
        return _one_task(c, "ml.kmeans", args, kw, False)
    run = c.client(kw["bootstrap"]).kmeans(
        owners=kw["owners"], columns=kw["columns"], schema=kw["schema"], k=kw["k"],
        init=init or None, seed=kw["seed"], iterations=kw["iterations"], tol=kw["tol"],
        **_post_kw(kw),
    )  # fmt: skip
    _emit_run(c, run, "ml.kmeans_step")


@ml.command("logreg")
@_common
@click.option("--c", "c_value", default="1", show_default=True,
              help="Inverse L2 strength (scikit-learn LogisticRegression C).")  # fmt: skip
@click.option("--iterations", default=8, show_default=True, help="Newton steps.")
@click.option("--private-result", is_flag=True,
              help="Seal each result to this account (automatic above 15 features).")  # fmt: skip
@click.pass_context
def logreg(cctx: click.Context, c_value: str, private_result: bool, **kw: Any) -> None:
    """Binary logistic regression (the last column is the 0/1 label); prints the weights.

    \b
    Examples:
      dnode ml logreg --federated --owner 0xA.. --owner 0xB.. --owner 0xC.. \\
          --schema cancer.json --c 1 --iterations 8 --reward 0.1ether --bootstrap /ip4/…
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    if not kw["federated"]:
        if kw["tol"] != "0":
            raise CliError("--tol needs --federated (ml.logreg runs a fixed number of steps)")
        args = {"c": c_value, "iterations": kw["iterations"]}
        return _one_task(c, "ml.logreg", args, kw, private_result)
    post = _post_kw(kw)
    if private_result:
        post["private_result"] = True
    run = c.client(kw["bootstrap"]).logreg(
        owners=kw["owners"], columns=kw["columns"], schema=kw["schema"], c=c_value,
        iterations=kw["iterations"], tol=kw["tol"], **post,
    )  # fmt: skip
    _emit_run(c, run, "ml.logreg_step")


COMMANDS = [ml]

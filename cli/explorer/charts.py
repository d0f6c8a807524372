"""Charts of results as Vega-Lite specs, built with altair (rendered in the page by
vega-embed). The chart follows the result's layout (its labels and shape), never the program's
name: a 1-D result of intervals is a histogram, a square matrix over the same labels a
heatmap, rows of (x, y, size) k-means clusters, anything else a bar chart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dnode.cli.sdk.tasks import Result
    from dnode.scheduler.programs import TaskParams


def chart_for(r: Result, params: TaskParams | None = None) -> dict[str, Any] | None:
    """The Vega-Lite spec for a result, or None when nothing sensible draws it.

    >>> from fractions import Fraction
    >>> from dnode.cli.sdk.tasks import Result
    >>> from dnode.oracle.codecs import TensorResult
    >>> from dnode.oracle.encoding import AggregateResult
    >>> hist = Result.from_decoded(1, "h", "finalized", TensorResult(AggregateResult.from_fractions(
    ...     [Fraction(3), Fraction(5)], 8), (2,), (("[0,10)", "[10,20]"),)), "0x", True)
    >>> spec = chart_for(hist)
    >>> spec["mark"]["type"], spec["title"], spec["data"]["values"][1]
    ('bar', 'histogram', {'interval': '[10,20]', 'count': 5.0})

    A correlation matrix is a heatmap (cells coloured by value, labelled with it):

    >>> corr = Result.from_decoded(2, "c", "finalized", TensorResult(AggregateResult.from_fractions(
    ...     [Fraction(1), Fraction(-1, 2), Fraction(-1, 2), Fraction(1)], 8), (2, 2),
    ...     (("age", "income"), ("age", "income"))), "0x", True)
    >>> spec = chart_for(corr)
    >>> [layer["mark"]["type"] for layer in spec["layer"]], spec["title"]
    (['rect', 'text'], 'matrix')
    >>> spec["data"]["values"][1]
    {'row': 'age', 'column': 'income', 'value': -0.5}

    k-means centroids over two columns are points in that plane, sized by their clusters:

    >>> km = Result.from_decoded(3, "k", "finalized", TensorResult(AggregateResult.from_fractions(
    ...     [Fraction(2), Fraction(3), Fraction(40), Fraction(8), Fraction(9), Fraction(25)], 65),
    ...     (2, 3), (("c0", "c1"), ("x", "y", "size"))), "0x", True)
    >>> spec = chart_for(km)
    >>> spec["mark"]["type"], spec["title"], spec["data"]["values"][1]
    ('circle', 'k-means clusters', {'cluster': 'c1', 'x': 8.0, 'y': 9.0, 'size': 25.0})
    """
    labels, shape = r.labels, r.shape
    if len(shape) == 2 and len(labels) == 2:
        rows, cols = labels
        if len(cols) == 3 and cols[2] == "size":
            return clusters(r, params)
        if list(rows) == list(cols):
            return heatmap(r)
        return grouped_bars(r)
    if len(shape) <= 1 and labels and all(x[:1] in "[(" for x in labels[0]):
        return bars(r, "histogram", "interval", "count")
    if r.named:
        return bars(r, "values", "name", "value")
    return None


def _alt() -> Any:
    import altair as alt

    return alt


def bars(r: Result, title: str, x: str, y: str) -> dict[str, Any]:
    alt = _alt()
    data = [{x: k, y: v} for k, v in r.named.items()]
    chart = (
        alt.Chart(alt.Data(values=data), title=title)
        .mark_bar()
        .encode(x=alt.X(f"{x}:N", sort=None), y=alt.Y(f"{y}:Q"), tooltip=[f"{x}:N", f"{y}:Q"])
        .properties(width=420, height=240)
    )
    return dict(chart.to_dict())


def heatmap(r: Result) -> dict[str, Any]:
    alt = _alt()
    rows, cols = r.labels
    n = len(cols)
    data = [{"row": a, "column": b, "value": r.values[i * n + j]}
            for i, a in enumerate(rows) for j, b in enumerate(cols)]  # fmt: skip
    base = alt.Chart(alt.Data(values=data)).encode(
        x=alt.X("column:N", sort=list(cols)), y=alt.Y("row:N", sort=list(rows))
    )
    rect = base.mark_rect().encode(
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domainMid=0)),
        tooltip=["row:N", "column:N", "value:Q"],
    )
    text = base.mark_text(baseline="middle").encode(text=alt.Text("value:Q", format=".3f"))
    return dict((rect + text).properties(title="matrix", width=320, height=320).to_dict())


def grouped_bars(r: Result) -> dict[str, Any]:
    alt = _alt()
    rows, cols = r.labels
    n = len(cols)
    data = [{"group": a, "measure": b, "value": r.values[i * n + j]}
            for i, a in enumerate(rows) for j, b in enumerate(cols)]  # fmt: skip
    chart = (
        alt.Chart(alt.Data(values=data), title="by group")
        .mark_bar()
        .encode(
            x=alt.X("group:N", sort=list(rows)),
            y=alt.Y("value:Q"),
            color="measure:N",
            xOffset="measure:N",
            tooltip=["group:N", "measure:N", "value:Q"],
        )
        .properties(width=420, height=240)
    )
    return dict(chart.to_dict())


def clusters(r: Result, params: TaskParams | None) -> dict[str, Any]:
    """k-means centroids in the plane of the two columns (declared ranges as the axes when
    the params are known), each sized by its cluster's population."""
    alt = _alt()
    rows, cols = r.labels
    data = [{"cluster": c, "x": r.values[3 * i], "y": r.values[3 * i + 1],
             "size": r.values[3 * i + 2]} for i, c in enumerate(rows)]  # fmt: skip
    xs, ys = alt.Scale(zero=False), alt.Scale(zero=False)
    names = ("x", "y")
    if params is not None and len(params.columns) == 2:
        a, b = params.columns
        names = (a.name, b.name)
        xs = alt.Scale(domain=[float(a.lo), float(a.hi)])
        ys = alt.Scale(domain=[float(b.lo), float(b.hi)])
    chart = (
        alt.Chart(alt.Data(values=data), title="k-means clusters")
        .mark_circle(opacity=0.7)
        .encode(
            x=alt.X("x:Q", scale=xs, title=names[0]),
            y=alt.Y("y:Q", scale=ys, title=names[1]),
            size=alt.Size("size:Q", scale=alt.Scale(range=[100, 2000])),
            color="cluster:N",
            tooltip=["cluster:N", "x:Q", "y:Q", "size:Q"],
        )
        .properties(width=360, height=300)
    )
    return dict(chart.to_dict())

"""The requester's side of ``synth.mst``: fit a graphical model to the noisy marginals and
sample synthetic rows (private-pgm's ``mbi``: McKenna, Sheldon, Miklau, "Graphical-model based
estimation and inference for differential privacy", ICML 2019), then a quality report.

All of it is post-processing of the DP measurements: it costs no privacy budget. ``mbi`` (and
JAX under it) is imported only when a model is fitted, never when the program registry loads.

Caveat (as the DP synthetic-data workshop warns): the model keeps the 1-way marginals and the
2-way marginals of the chosen tree; relations the tree does not hold (between columns that are
not adjacent in it), minority clusters whose counts drown in the noise, and non-linear
relations finer than the bins may be lost.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnode.scheduler.programs.synth.spec import Binned, Measurements, laplace_std

if TYPE_CHECKING:
    import numpy as np

FIT_ITERS = 1000


def _mbi() -> Any:
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mbi
    return mbi


def fit(m: Measurements, iters: int = FIT_ITERS) -> Any:
    """The mbi model (a MarkovRandomField) fitted to every noisy measurement, each weighted by
    its noise's standard deviation (mirror descent, as MST does)."""
    import numpy as np

    mbi = _mbi()
    names = m.names
    domain = mbi.Domain(names, [b.k for b in m.columns])
    ms = []
    s1 = laplace_std(m.scales["one"])
    for name, ys in zip(names, m.one, strict=True):
        ms.append(mbi.LinearMeasurement(np.array(ys, dtype=float), (name,), s1))
    s2 = laplace_std(m.scales["two"])
    for (a, b), cells in zip(m.edges, m.two, strict=True):
        y = np.array(cells, dtype=float).reshape(-1)
        ms.append(mbi.LinearMeasurement(y, (names[a], names[b]), s2))
    return mbi.estimation.MirrorDescent().estimate(
        domain, ms, known_total=float(m.total), iters=iters
    )


def sample_bins(model: Any, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``rows`` synthetic rows as bin indexes per column (mbi's synthetic_data, seeded)."""
    import logging

    import numpy as np
    from mbi.extensions.synthetic_data import synthetic_data

    # mbi logs a warning on the root logger when its JIT cache is cold (every first call)
    logging.disable(logging.WARNING)
    try:
        ds = synthetic_data(model, rows, seed=seed)
    finally:
        logging.disable(logging.NOTSET)
    return {k: np.asarray(v, dtype=int) for k, v in ds.to_dict().items()}


def decode(
    columns: Sequence[Binned], bins: Mapping[str, np.ndarray], seed: int = 0
) -> list[list[str]]:
    """Rows of text values: a categorical bin is its label; a numeric bin a value drawn
    uniformly from the bin's interval at the column's precision (post-processing)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cols: list[list[str]] = []
    for b in columns:
        idx = bins[b.column.name]
        c = b.column
        if c.type == "cat":
            cols.append([c.domain[int(i)] for i in idx])
            continue
        edges = b.edges()
        lo = np.array([edges[int(i)][0] for i in idx], dtype=np.int64)
        hi = np.array([edges[int(i)][1] for i in idx], dtype=np.int64)
        v = lo + (rng.random(len(idx)) * (hi - lo + 1)).astype(np.int64)
        v = np.minimum(v, hi)
        cols.append([_text(int(x), c.scale) for x in v])
    return [list(r) for r in zip(*cols, strict=True)] if cols else []


def _text(v: int, scale: int) -> str:
    if scale == 0:
        return str(v)
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(v), 10**scale)
    return f"{sign}{q}.{r:0{scale}d}"


def write_csv(path: Path, columns: Sequence[Binned], rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([b.column.name for b in columns])
        w.writerows(rows)


def _dist(x: np.ndarray) -> np.ndarray:
    import numpy as np

    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    s = x.sum()
    return x / s if s > 0 else np.full(x.shape, 1.0 / max(1, x.size))


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance of two count tables (negative counts clipped, normalized)."""
    import numpy as np

    return float(0.5 * np.abs(_dist(p).reshape(-1) - _dist(q).reshape(-1)).sum())


def marginal(bins: Mapping[str, np.ndarray], sizes: Mapping[str, int], *cols: str) -> np.ndarray:
    """The count table of ``cols`` over rows given as bin indexes."""
    import numpy as np

    shape = tuple(sizes[c] for c in cols)
    flat = np.ravel_multi_index(tuple(bins[c] for c in cols), shape)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)


def _corr(table: np.ndarray, xa: Sequence[float], xb: Sequence[float]) -> float | None:
    import numpy as np

    p = _dist(table)
    a, b = np.asarray(xa), np.asarray(xb)
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    ma, mb = (pa * a).sum(), (pb * b).sum()
    va, vb = (pa * (a - ma) ** 2).sum(), (pb * (b - mb) ** 2).sum()
    if va <= 0 or vb <= 0:
        return None
    cov = (p * np.outer(a - ma, b - mb)).sum()
    return float(cov / math.sqrt(va * vb))


def quality(m: Measurements, bins: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What the synthetic rows preserve, measured against the noisy measurements (the only
    thing the requester has): per column the 1-way TVD, per tree edge the 2-way TVD, and per
    tree edge the correlation of the bin midpoints in the noisy 2-way marginal beside the
    synthetic one (ordinal codes for categorical columns)."""
    import numpy as np

    sizes = {b.column.name: b.k for b in m.columns}
    names = m.names
    one = {
        n: round(tvd(np.array(ys), marginal(bins, sizes, n)), 4)
        for n, ys in zip(names, m.one, strict=True)
    }
    two: dict[str, float] = {}
    corr: dict[str, dict[str, float | None]] = {}
    for (a, b), cells in zip(m.edges, m.two, strict=True):
        key = f"{names[a]}~{names[b]}"
        noisy = np.array(cells, dtype=float)
        syn = marginal(bins, sizes, names[a], names[b])
        two[key] = round(tvd(noisy, syn), 4)
        xa, xb = m.columns[a].midpoints(), m.columns[b].midpoints()
        c_noisy, c_syn = _corr(noisy, xa, xb), _corr(syn.astype(float), xa, xb)
        corr[key] = {
            "noisy": None if c_noisy is None else round(c_noisy, 4),
            "synthetic": None if c_syn is None else round(c_syn, 4),
        }
    return {
        "rows_noisy_total": m.total,
        "tree": [[names[a], names[b]] for a, b in m.edges],
        "tvd_1way_vs_noisy": one,
        "tvd_2way_vs_noisy": two,
        "mean_tvd_1way": round(float(np.mean(list(one.values()))), 4),
        "mean_tvd_2way": round(float(np.mean(list(two.values()))), 4) if two else None,
        "correlation": corr,
        "noise_scale": {k: round(v, 4) for k, v in m.scales.items()},
        "warning": (
            "marginal-based synthesis keeps the 1-way marginals and the tree's 2-way marginals "
            "only: minority clusters, relations between columns not adjacent in the tree and "
            "non-linear relations finer than the bins may be lost"
        ),
    }


def synthesize(
    m: Measurements, rows: int, seed: int = 0, iters: int = FIT_ITERS
) -> tuple[dict[str, np.ndarray], list[list[str]], dict[str, Any]]:
    """Fit, sample ``rows`` rows, decode them, report: (bins, text rows, quality report)."""
    model = fit(m, iters)
    bins = sample_bins(model, rows, seed)
    return bins, decode(m.columns, bins, seed), quality(m, bins)

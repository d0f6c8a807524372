"""Specs, schemas, tables and codecs of the statistics family (no mpyc, no processes)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnode.oracle.codecs import TensorCodec, codec
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams, all_programs, get_program
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES
from dnode.scheduler.programs.tables import TableError, read_table

OWNER = ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8",)
AGE = Column("age", "int", 0, Fraction(0), Fraction(120))
PRICE = Column("price", "fixed", 2, Fraction(0), Fraction(10_000))
REGION = Column("region", "cat", domain=("n", "s", "e", "w"))


def test_every_program_has_a_kernel_and_imports_without_mpyc_or_tenseal() -> None:
    import subprocess
    import sys

    names = {p.name for p in all_programs()}
    assert {"mpc.sum", "mpc.mean", "mpc.variance", "mpc.median", "mpc.correlation"} <= names
    assert {"he.sum", "he.matmul", "he.transpose", "he.compare"} <= names
    assert all(p.kernel for p in all_programs())
    code = (
        "import sys; from scheduler.programs import all_programs, TaskParams; all_programs(); "
        "assert not {'mpyc', 'tenseal', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_column_flags_and_wire_form() -> None:
    assert Column.parse_flag("age:int:0:120") == AGE
    assert Column.parse_flag("price:fixed:2:0:10000") == PRICE
    assert Column.parse_flag("region:cat:n|s|e|w") == REGION
    for c in (AGE, PRICE, REGION, Column("id", "id")):
        assert Column.from_dict(c.to_dict()) == c
    with pytest.raises(InvalidTaskParams, match="want NAME:int"):
        Column.parse_flag("age:int:0")


def test_cells_are_exact_and_range_checked() -> None:
    assert PRICE.parse("12.5") == 1250 and PRICE.parse("1e2") == 10000
    with pytest.raises(ValueError, match="not a decimal with <= 2 digits"):
        PRICE.parse("12.345")
    with pytest.raises(ValueError, match="outside the declared range"):
        AGE.parse("121")
    with pytest.raises(ValueError, match="not in the declared domain"):
        REGION.parse("north")


def test_table_errors_name_file_row_and_column(tmp_path: Path) -> None:
    f = tmp_path / "sales.csv"
    f.write_text("# a comment\nregion,age,price\nn,30,10.5\ns,31,12.345\n")
    with pytest.raises(TableError) as e:
        read_table(f, [AGE, PRICE])
    assert str(e.value) == (
        f"{f}: row 4, column 'price': '12.345' is not a decimal with <= 2 digits"
    )
    t = read_table(f.with_name("ok.csv") if False else _write(tmp_path, "a,age\nx,3\ny,4\n"), [AGE])
    assert t.data == ((3, 4),) and t.rows == 2
    legacy = read_table(_write(tmp_path, "5\n# c\n7\n"), [AGE])  # headerless, one column
    assert legacy.data == ((5, 7),)
    with pytest.raises(TableError, match="header lacks column"):
        read_table(_write(tmp_path, "a,b\n1,2\n"), [AGE, PRICE])
    with pytest.raises(TableError, match="pyarrow"):
        read_table(tmp_path / "x.parquet", [AGE])


def _write(tmp: Path, text: str) -> Path:
    p = tmp / f"t{abs(hash(text))}.csv"
    p.write_text(text)
    return p


def test_requester_learns_before_paying_that_a_range_does_not_fit() -> None:
    """mpc.variance sums squares: a wide declared range with many rows is refused up front."""
    wide = Column("x", "fixed", 6, Fraction(-(10**15)), Fraction(10**15))
    TaskParams("mpc.mean", OWNER, columns=(wide,), max_rows=1 << 20)  # sums fit
    with pytest.raises(InvalidTaskParams, match="cannot take column 'x'.*needs 1[0-9]{2}-bit"):
        TaskParams("mpc.variance", OWNER, columns=(wide,), max_rows=1 << 20)
    with pytest.raises(InvalidTaskParams, match="cannot take column 'region' of type cat"):
        TaskParams("mpc.mean", OWNER, columns=(REGION,))
    with pytest.raises(InvalidTaskParams, match="takes 2..4"):
        TaskParams("mpc.correlation", OWNER, columns=(AGE,))
    with pytest.raises(InvalidTaskParams, match=f"at most {MAX_RESULT_VALUES}"):
        TaskParams("mpc.histogram", OWNER, columns=(AGE,),
                   args={"bins": ",".join(str(i) for i in range(0, 120, 5))})  # fmt: skip
    with pytest.raises(InvalidTaskParams, match="q needs"):
        TaskParams("mpc.quantiles", OWNER, columns=(AGE,), args={"q": "1.5"})


def _finish(params: TaskParams, revealed: dict, rows: int) -> list[float]:
    return [float(v) for v in params.spec.finish(params, revealed, rows).values]


def test_finish_matches_numpy() -> None:
    """What the nodes compute from the opened sufficient statistics equals numpy."""
    a = np.array([30, 41, 25, 60, 33])
    b = np.array([10.5, 20.25, 7.0, 99.99, 15.0])
    cols = (AGE, PRICE)
    enc = np.array([[int(x), round(y * 100)] for x, y in zip(a, b, strict=True)], dtype=object)
    r = {"sum": list(enc.sum(axis=0)), "sumsq": list((enc * enc).sum(axis=0)),
         "gram": list((enc.T @ enc).ravel())}  # fmt: skip
    p = lambda name, **kw: TaskParams(name, OWNER, columns=cols, **kw)  # noqa: E731
    assert _finish(p("mpc.sum"), r, 5) == pytest.approx([a.sum(), b.sum()], abs=1e-12)
    assert _finish(p("mpc.std"), r, 5) == pytest.approx([a.std(), b.std()], abs=1e-12)
    cov = _finish(p("mpc.covariance"), r, 5)
    assert cov == pytest.approx(np.cov(np.vstack([a, b])).ravel().tolist(), abs=1e-9)
    corr = _finish(p("mpc.correlation"), r, 5)
    assert corr == pytest.approx(np.corrcoef(np.vstack([a, b])).ravel().tolist(), abs=1e-15)
    hist = TaskParams("mpc.histogram", OWNER, columns=(AGE,), args={"bins": "0,30,40,60"})
    below = [int((a < t).sum()) for t in hist.spec.kernel_args(hist)["below"]]
    assert _finish(hist, {"below": below}, 5) == list(np.histogram(a, [0, 30, 40, 60])[0])


def test_tensor_codec_roundtrip_and_layout() -> None:
    params = TaskParams("mpc.variance", OWNER, columns=(AGE, PRICE))
    out = params.spec.finish(params, {"sum": [10, 1000], "sumsq": [60, 600000]}, 2)
    data = TensorCodec().encode(AggregateResult.from_fractions(out.values, out.count))
    # the consumer ABI is unchanged: (int256[] values, uint8 decimals, uint256 count)
    assert AggregateResult.decode(data).values[0] == 5 * 10**18
    shaped = codec("tensor").decode(data, *params.spec.layout(params))
    assert shaped.shape == (2, 2)
    assert shaped.named()["mean/age"] == "5" and shaped.named()["variance/price"] == "5"
    assert shaped.to_json()["labels"] == [["mean", "variance"], ["age", "price"]]


def test_private_codec_is_canonical() -> None:
    c = codec("private")
    rep = get_program("he.sum")  # its codec
    assert rep.codec == "private"
    data = c.encode_report(b"\x11" * 32)  # type: ignore[attr-defined]
    assert c.decode(data).blob_digest == b"\x11" * 32


def test_seats_refuse_ragged_or_oversized_contributions() -> None:
    """An owner cannot break the session with a partial row, nor overflow every sum's bound
    by sending more rows than max_rows (the field size assumes at most that many)."""
    p = TaskParams("mpc.covariance", OWNER, columns=(AGE, PRICE), max_rows=10)
    assert p.contribution_error(8) is None
    assert "not whole rows of 2" in str(p.contribution_error(7))
    assert "max_rows=10" in str(p.contribution_error(8, other_rows=7))
    h = TaskParams("mpc.histogram", OWNER, columns=(REGION,))
    assert h.contribution_error(8) is None and h.contribution_error(6) is not None  # one-hot 4

"""The PSI family's specs (no MPC): refusals before posting, owner columns, the encoded rows."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.psi import tokens as T

A = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
ID = Column("id", "id")
X = Column("x", "int", 0, Fraction(-5), Fraction(5))
Y = Column("y", "fixed", 2, Fraction(0), Fraction(100))
KEY = "ab" * 32
PLAN = {"tables": [["x"], ["y"]], "aggregates": [["count"], ["corr", "x", "y"]]}


def test_intersection_and_labels_need_a_private_result() -> None:
    with pytest.raises(InvalidTaskParams, match="delivers only to the requester"):
        TaskParams("psi.intersection", A[:2], columns=(ID,))
    TaskParams("psi.intersection", A[:2], columns=(ID,), result_key=KEY)
    with pytest.raises(InvalidTaskParams, match="1\\+ label columns"):
        TaskParams("psi.label", A[:2], columns=(ID,), result_key=KEY)


@pytest.mark.parametrize(
    ("program", "owners", "cols", "args", "match"),
    [
        ("psi.cardinality", A[:1], (ID,), {}, "takes 2..16 data owners"),
        ("psi.cardinality", A[:2], (X,), {}, "cannot take column .x. of type int"),
        ("psi.cardinality", A[:2], (ID, Column("id2", "id")), {}, "takes 1..1 column"),
        ("query.join", A, (ID, X, Y), {"plan": PLAN}, "takes 2 data owners"),
        ("query.join", A[:2], (X, Y), {"plan": PLAN}, "exactly one id column"),  # not on id
        ("query.join", A[:2], (ID, X, Y), {"plan": {"tables": [["x"], []],
                                                    "aggregates": [["count"]]}}, "split"),
        ("query.join", A[:2], (ID, X, Y), {"plan": {**PLAN, "aggregates": [["median", "x"]]}},
         "unsupported aggregate 'median'"),
        ("query.join", A[:2], (ID, X, Y), {"plan": {**PLAN, "aggregates": [["corr", "x"]]}},
         "corr takes 2"),
        ("query.join", A[:2], (ID, X, Y), {"plan": {**PLAN, "aggregates": [["sum", "z"]]}},
         "unknown column 'z'"),
        ("query.join", A[:2], (ID, X, Y), {"plan": "SELECT 1"}, "plan must be a JSON object"),
    ],
)  # fmt: skip
def test_refused_before_posting(program, owners, cols, args, match) -> None:
    with pytest.raises(InvalidTaskParams, match=match):
        TaskParams(program, owners, args=args, columns=cols)


def test_join_owner_columns_and_encoded_rows(tmp_path: Path) -> None:
    p = TaskParams("query.join", A[:2], args={"plan": PLAN}, columns=(ID, X, Y))
    assert [c.name for c in p.spec.owner_columns(p, 0)] == ["id", "x"]
    assert [c.name for c in p.spec.owner_columns(p, 1)] == ["id", "y"]
    f = tmp_path / "b.csv"
    f.write_text("id,y\nsecret-id-1,12.5\nsecret-id-2,0\n")  # owner 1's file: no x at all
    enc = p.encode_table(f, A[1])
    w = p.spec.width(p)
    assert w == 4 and len(enc) == 3 * w
    rho = enc[0]
    assert 0 < rho < T.ORDER and enc[1:w] == [0, 0, 0]  # the header row: rho only
    for row, y in zip((enc[w : 2 * w], enc[2 * w :]), (1250, 0), strict=True):
        pt = T.join(row[0], row[1])
        assert pt != T.hash_to_point(b"", "secret-id-1")  # blinded, not the plain hash
        assert row[2:] == [0, y]  # x (not held) is 0, y scaled
    assert p.field_prime == T.ORDER


def test_blinding_is_fresh_per_encoding(tmp_path: Path) -> None:
    p = TaskParams("psi.cardinality", A[:2], columns=(ID,))
    f = tmp_path / "a.csv"
    f.write_text("id\nx\n")
    assert p.encode_table(f, A[0]) != p.encode_table(f, A[0])

"""An owner's CSV file against the task's schema: one-line errors naming file, row and column,
and the parser's speed trick (no cyclic GC while parsing) leaves the collector as it was."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from dnode.scheduler.programs import Column
from dnode.scheduler.programs.tables import TableError, read_table

A, B = Column.parse_flag("a:int:-5:5"), Column.parse_flag("b:fixed:1:0:100")


def _file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.csv"
    p.write_text(text)
    return p


def test_values_and_the_first_bad_cell_in_row_order(tmp_path: Path) -> None:
    ok = read_table(_file(tmp_path, "b,a\n# a comment\n1.5,-2\n\n0,5\n"), (A, B))
    assert ok.data == ((-2, 5), (15, 0))
    # row 3's b and row 4's a are both bad: row 3 is named (not the first bad column's row)
    with pytest.raises(TableError) as e:
        read_table(_file(tmp_path, "a,b\n1,2\n2,100.5\n9,3\n"), (A, B))
    assert (e.value.row, e.value.column) == (3, "b")
    assert "outside the declared range [0, 100]" in str(e.value)
    with pytest.raises(TableError, match=r"row 2, column 'a': '1.5' is not an integer"):
        read_table(_file(tmp_path, "a\n1.5\n"), (A,))
    with pytest.raises(TableError, match=r"row 3: has 1 cells, the header 2"):
        read_table(_file(tmp_path, "a,b\n1,2\n3\n"), (A, B))


def test_an_unterminated_quote_is_a_one_line_error(tmp_path: Path) -> None:
    # (it was an untyped ValueError from zip: a traceback for the owner)
    with pytest.raises(TableError, match="bad CSV: a quoted cell spans lines"):
        read_table(_file(tmp_path, 'a\n"1\n2\n'), (A,))


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(tmp_path: Path, enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        read_table(_file(tmp_path, "a\n1\n2\n"), (A,))
        assert gc.isenabled() is enabled
        with pytest.raises(TableError):
            read_table(_file(tmp_path, "a\n9\n"), (A,))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()

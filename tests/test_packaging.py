"""`pip install .` installs one package, `dnode` (issue 14): nothing named `node`, `cli`,
`contracts`, `oracle` or `scheduler` lands in site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_only_the_dnode_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("dnode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"dnode", next(t for t in tops if t.endswith(".dist-info"))}, tops
    # the mapped layers, their sub-packages and the contract sources are all inside it
    for need in (
        "dnode/node/daemon.py",
        "dnode/node/task/worker.py",
        "dnode/cli/main.py",
        "dnode/contracts/vyper/dnode.vy",
        "dnode/scheduler/sortition.py",
        "dnode/oracle/reader.py",
    ):
        assert need in names, need
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dnode = dnode.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()

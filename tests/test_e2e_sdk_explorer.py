"""The SDK, the explorer and the quickstart notebook against one running devnet cluster
(issue 20): separate OS processes for the chain, 3 nodes and the explorer; owner agents run
in-process through the SDK; a real headless Chromium (Debian's package, driven by selenium)
loads the explorer's pages.

- the notebook (docs/quickstart.ipynb, executed by nbclient in its own kernel, while the rest
  runs) publishes two datasets, runs the owners' agents and gets a joint SQL answer;
- the SDK posts a histogram, from inside a running asyncio loop as a notebook cell would; the
  browser shows its timeline advance (live, without a reload) as the agents contribute and the
  committee reports, then its chart; a task refunded for unfilled seats shows the reason;
- screenshots of the main pages go to build/screenshots (or $DNODE_SCREENSHOTS).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dnode
from dnode.cli.devcluster import DEV_PASSWORD, DevCluster, Member, NodeProc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("DNODE_SCREENSHOTS", ROOT / "build" / "screenshots"))
WAIT = 240  # seconds a page may take to show what the chain says (a generous bound)

# each owner's ages, and the histogram over bins [0,30) [30,50) [50,70) [70,100]
AGES = {"owner-a": [23, 35, 47, 51, 62], "owner-b": [29, 33, 58, 71]}
BINS = "0,30,50,70,100"
HISTOGRAM = {"[0,30)": 2.0, "[30,50)": 3.0, "[50,70)": 3.0, "[70,100]": 1.0}


@dataclass
class Net:
    cluster: DevCluster
    nodes: list[NodeProc]
    requester: Member
    owners: list[Member]
    explorer_url: str
    notebook: subprocess.Popen[bytes]  # the quickstart notebook, running meanwhile
    notebook_out: Path

    def connect(self, m: Member) -> dnode.Client:
        c = self.cluster
        return dnode.connect(c.rpc_url, c.manifest, home=m.home, password=DEV_PASSWORD,
                             bootstrap=c.bootstrap(3))  # fmt: skip


def _start_explorer(cluster: DevCluster, requester: Member, nodes: list[NodeProc]) -> str:
    args = ["--json", "--rpc-url", cluster.rpc_url, "--manifest", str(cluster.manifest),
            "--home", str(requester.home), "explorer", "--port", "0", "--poll", "0.3"]  # fmt: skip
    for b in cluster.bootstrap(3):
        args += ["--bootstrap", b]
    for n in nodes:
        if n.metrics:
            args += ["--status-url", n.metrics]
    proc, log_path = cluster._spawn(args, "explorer")
    ex = NodeProc(requester, proc, log_path, args=args)
    cluster.agents.append(ex)  # stopped with the cluster
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, log_path.read_text()
    ready = json.loads(line)
    assert ready["url"].startswith("http://127.0.0.1:")  # local by default
    return str(ready["url"])


#: runs the notebook with nbclient in its own process (and so its own kernel), writing the
#: executed notebook (outputs, or the error) to argv[2]
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(nb, timeout=400, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
finally:
    nbformat.write(nb, sys.argv[2])
"""


def _start_notebook(cluster: DevCluster, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The quickstart notebook against this cluster (DNODE_DEVNET), with three dev keys of
    its own; it runs while the browser test does (both mostly wait on blocks)."""
    workdir.mkdir()
    keys = [cluster.dev_key() for _ in range(3)]  # the notebook's researcher and hospitals
    devnet = {"rpc_url": cluster.rpc_url, "manifest": str(cluster.manifest),
              "bootstrap": cluster.bootstrap(3), "workdir": str(workdir), "keys": keys}  # fmt: skip
    env = dict(os.environ, DNODE_DEVNET=json.dumps(devnet), PYTHONPATH=dnode.IMPORT_ROOT)
    out = workdir / "quickstart.out.ipynb"
    log = open(workdir / "notebook.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_NOTEBOOK, str(ROOT / "docs" / "quickstart.ipynb"), str(out),
         str(workdir)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    log.close()
    return proc, out


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    work = tmp_path_factory.mktemp("sdk-explorer")
    cluster = DevCluster(work / "cluster", challenge_period=4, accounts=16)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        requester = cluster.member("requester")
        owners = [cluster.member(n) for n in AGES]
        url = _start_explorer(cluster, requester, nodes)
        notebook, out = _start_notebook(cluster, work / "notebook")
        try:
            yield Net(cluster, nodes, requester, owners, url, notebook, out)
        finally:
            if notebook.poll() is None:
                os.killpg(notebook.pid, signal.SIGKILL)
                notebook.wait(10)


def _notebook_done(net: Net) -> Any:
    """The executed notebook, once its process ended (raising with its log if it failed)."""
    import nbformat

    rc = net.notebook.wait(450)
    log = (net.notebook_out.parent / "notebook.log").read_text(errors="replace")
    assert rc == 0, log[-3000:] + _notebook_diagnosis(net)
    return nbformat.read(net.notebook_out, as_version=4)


def _notebook_diagnosis(net: Net) -> str:
    """What a failed notebook run leaves to read: its cells' stderr (the in-kernel agents'
    warnings), the agents' decisions and deliveries (their state dbs), the nodes' warnings."""
    import sqlite3

    out = ["", "---- notebook stderr"]
    try:
        nb = json.loads(net.notebook_out.read_text())
        for cell in nb["cells"]:
            for o in cell.get("outputs", []):
                if o.get("name") == "stderr":
                    out.append("".join(o.get("text", ""))[-1500:])
    except (OSError, ValueError, KeyError) as e:
        out.append(f"(no executed notebook: {e})")
    for db in sorted(net.notebook_out.parent.glob("*/owner-state/owner.db")):
        out.append(f"---- {db.parent.parent.name}")
        with sqlite3.connect(db) as c:
            for row in c.execute("SELECT task_id, dataset, state, reason FROM decisions"):
                out.append(f"decision {row}")
            for row in c.execute(
                "SELECT task_id, round, seat, acked_at, attempts, last_error FROM sharings"
            ):
                out.append(f"sharing {row}")
    for n in net.nodes:
        lines = n.log_path.read_text(errors="replace").splitlines()
        bad = [x for x in lines if " WARNING dnode" in x or " ERROR dnode" in x]
        out.append(f"---- {n.member.name}: last warnings")
        out.extend(x[:300] for x in bad[-25:])
    return "\n".join(out)


def _browser(tmp: Path) -> Any:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is not installed: run scripts/install_browser.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={tmp / 'chromium-profile'}"):  # fmt: skip
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _step(driver: Any, name: str) -> str:
    """A timeline step's state as the page shows it now (read in one script: the page
    re-renders on every block, so element handles go stale)."""
    js = 'const e = document.querySelector(`#timeline li[data-step="${arguments[0]}"]`);'
    return str(driver.execute_script(js + ' return e ? e.dataset.state : "";', name))


def _page(driver: Any, page: str) -> str:
    """The view's text once the page named ``page`` has rendered, else ""."""
    js = 'const v = document.getElementById("view");'
    return str(driver.execute_script(
        js + " return v.dataset.page === arguments[0] && v.querySelector('table') ? "
        "v.innerText : '';", page))  # fmt: skip


def _shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


def test_sdk_task_timeline_chart_and_refund_in_the_explorer(net: Net, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    requester = net.connect(net.requester)
    owners = [net.connect(m) for m in net.owners]
    files = {}
    for name, ages in AGES.items():
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text("age\n" + "".join(f"{a}\n" for a in ages))

    async def cell() -> dnode.Task:  # as in a Jupyter cell: an asyncio loop runs in the thread
        return requester.post("mpc.histogram", owners=[m.address for m in net.owners],
                              columns=["age:int:0:100"], args={"bins": BINS},
                              input_timeout=300)  # fmt: skip

    task = asyncio.run(cell())
    assert task.announced_to >= 1

    driver = _browser(tmp_path)
    try:
        wait = WebDriverWait(driver, WAIT, poll_frequency=0.3)
        driver.get(net.explorer_url + f"#/task/{task.id}")
        wait.until(lambda d: _step(d, "posted") == "done")
        # no owner agent runs yet: nothing can be reported
        assert _step(driver, "reported") != "done"
        assert _step(driver, "final") != "done"
        driver.execute_script("window.__sameLoad = 42")  # a reload would drop it
        _shot(driver, "task-waiting")

        agents = [
            o.owner_agent([{"name": "ages", "file": files[n]}], confirmations=0, poll_interval=0.5)
            for o, n in zip(owners, AGES, strict=True)
        ]
        try:
            result = asyncio.run(task.result_async(wait=WAIT, progress=True))
            assert result.named == HISTOGRAM, result
            assert result.count == sum(len(a) for a in AGES.values())
            # the page follows live: reported, then final, without a reload; then the chart
            wait.until(lambda d: _step(d, "seated") == "done" and _step(d, "reported") == "done")
            wait.until(lambda d: _step(d, "final") == "done")
            # the inputs step comes from the owners' signed notices, served by the nodes
            wait.until(lambda d: _step(d, "inputs") == "done")
            assert driver.execute_script("return window.__sameLoad") == 42
            bars = 'return document.querySelectorAll("#chart svg .mark-rect path").length'
            wait.until(lambda d: d.execute_script(bars) > 0)
            assert driver.execute_script(bars) == len(HISTOGRAM)  # one bar per bin
            table = driver.execute_script(
                'return document.getElementById("result-table").innerText'
            )
            assert "[30,50)" in table and "[70,100]" in table
            _shot(driver, "task-result")

            # a dApp backend's read: attested, digest-checked, final
            attested = requester.read(task.id)
            assert attested.final and attested.value is not None
        finally:
            for a in agents:
                a.stop()

        # a task the network cannot seat (5 seats, 3 nodes): the page says why it waits, then
        # (live) why it was refunded
        bad = requester.post("mpc.mean", owners=[m.address for m in net.owners],
                             columns=["age:int:0:100"], committee=5, seat_timeout=3,
                             report_timeout=60)  # fmt: skip
        driver.get(net.explorer_url + f"#/task/{bad.id}")
        waits = 'const w = document.getElementById("waiting"); return w ? w.innerText : ""'
        # first the sortition seed is not mined yet; once it is, the candidates drawn
        why_open = wait.until(lambda d: "eligible candidate" in d.execute_script(waits)
                              and d.execute_script(waits))  # fmt: skip
        assert "of 5 seats" in why_open, why_open
        assert "of 5 seats" in bad.why_waiting()  # the SDK says the same
        info = bad.info()
        net.cluster.watch(lambda: requester.chain.block_timestamp() > info.seat_deadline,
                          "the seat deadline to pass", 60)  # fmt: skip
        assert bad.cancel() == "sortition: seats not filled"
        with pytest.raises(dnode.SdkError, match="refunded: not enough eligible candidates"):
            bad.result()
        driver.execute_script("window.__sameLoad = 43")
        why = 'const r = document.getElementById("refund-reason"); return r ? r.innerText : ""'
        reason = wait.until(lambda d: d.execute_script(why))
        assert driver.execute_script("return window.__sameLoad") == 43  # no reload
        assert "not enough eligible candidates joined before the seat deadline" in reason
        assert _step(driver, "final") == "done" and _step(driver, "reported") != "done"
        _shot(driver, "task-refunded")

        # the other pages: tasks (both listed), datasets (the notebook's, with their ledger
        # when it ran first), nodes (stake, seats, terms)
        driver.get(net.explorer_url + "#/tasks")
        listed = 'return [...document.querySelectorAll("a[data-task]")].map(a => +a.dataset.task)'
        wait.until(lambda d: bad.id in d.execute_script(listed))
        assert task.id in driver.execute_script(listed)
        _shot(driver, "tasks")
        driver.get(net.explorer_url + "#/nodes")
        text = wait.until(lambda d: _page(d, "nodes"))
        assert all(n.member.address in text for n in net.nodes), text
        _shot(driver, "nodes")
        # the notebook (running meanwhile) published two datasets and spent 0.1 of each
        # one's budget on its query: the catalogue and its ledger show it
        _notebook_done(net)
        driver.get(net.explorer_url + "#/datasets")
        text = wait.until(lambda d: "Privacy budget ledger of dataset 2" in _page(d, "datasets")
                          and _page(d, "datasets"))  # fmt: skip
        assert "0.9" in text, text  # ε left of 1 after the query's 0.1
        _shot(driver, "datasets")
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_quickstart_notebook_reaches_a_joint_query_result(net: Net) -> None:
    nb = _notebook_done(net)
    # the notebook asserts the answer against the plaintext itself; check what it printed
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # COUNT(*) of the 5 patients aged 40 or more, of the 7 rows both hospitals hold
    assert "all/count(*) 5," in text and "(over 7 rows;" in text, text
    assert not [o for o in outputs if o.output_type == "error"]

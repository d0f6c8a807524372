"""User mistakes get one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dnode.cli.devcluster import DevCluster, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = DevCluster(tmp_path_factory.mktemp("cli"))
    with c.running():
        c.member("alice")
        yield c


def run(
    c: DevCluster,
    home: Path | None,
    *args: str,
    password: Path | None = None,
    rpc: str | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [
        "--rpc-url",
        rpc or c.rpc_url,
        "--manifest",
        str(c.manifest),
        "--password-file",
        str(password or c.password_file),
    ]
    if home:
        cmd += ["--home", str(home)]
    # each command is its own process, forked from the cluster's warm fork server (the
    # output and exit code are those of a fresh `python -m dnode.cli`: test_forkserver.py)
    r = c._run_cli([*cmd, *args], 120)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], lines[0]


def post(c: DevCluster, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
    alice = c.members["alice"]
    args = ("task", "post", "--owner", alice.address, "--allow-single-owner")
    return run(c, alice.home, *args, *extra, **kw)  # type: ignore[arg-type]


def test_unknown_program(cluster: DevCluster) -> None:
    one_line_error(
        post(cluster, "--program", "mpc.nosuch", "--reward", "1ether"),
        "unknown program 'mpc.nosuch'",
    )


def test_committee_below_three(cluster: DevCluster) -> None:
    one_line_error(
        post(cluster, "--program", "mpc.mean", "--reward", "1ether", "--committee", "2"),
        "committee size must be between 3 and 16",
    )


def test_reward_the_account_cannot_pay(cluster: DevCluster) -> None:
    one_line_error(post(cluster, "--program", "mpc.mean", "--reward", "1000000ether"), "cannot pay")


def test_bad_reward_amount(cluster: DevCluster) -> None:
    one_line_error(post(cluster, "--program", "mpc.mean", "--reward", "lots"), "not an amount")


def test_unreachable_rpc(cluster: DevCluster) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    one_line_error(
        post(cluster, "--program", "mpc.mean", "--reward", "1ether", rpc=dead),
        f"cannot reach the chain at {dead}",
    )


def test_wrong_keystore_password(cluster: DevCluster, tmp_path: Path) -> None:
    bad = tmp_path / "pw"
    bad.write_text("not-the-password")
    one_line_error(
        post(cluster, "--program", "mpc.mean", "--reward", "1ether", password=bad), "wrong password"
    )


def test_malformed_inputs_file(cluster: DevCluster, tmp_path: Path) -> None:
    alice = cluster.members["alice"]
    out = cluster.dnode(
        alice,
        "task",
        "post",
        "--program",
        "mpc.mean",
        "--reward",
        "0.1ether",
        "--owner",
        alice.address,
        "--allow-single-owner",
    )
    task_id = str(out["task_id"])
    bad = tmp_path / "inputs.csv"
    bad.write_text("12\n13\nabc\n")
    r = run(
        cluster,
        alice.home,
        "task",
        "contribute",
        task_id,
        "--inputs",
        str(bad),
        "--bootstrap",
        "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
    )
    one_line_error(r, "row 3, column 'value'")


def _cli_at_home(cluster: DevCluster, home: Path, user_home: Path, *args: str) -> Any:
    env = {**os.environ, "HOME": str(user_home)}  # the default home is $HOME/.dnode
    env.pop("DNODE_HOME", None)
    cmd = [sys.executable, "-m", "dnode.cli", "--rpc-url", cluster.rpc_url, "--home", str(home)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env)


def test_missing_manifest(cluster: DevCluster, tmp_path: Path) -> None:
    r = _cli_at_home(cluster, tmp_path / "req", tmp_path, "task", "status", "1")
    one_line_error(r, "run `dnode deploy`")


def test_a_home_without_a_manifest_uses_the_one_deploy_wrote(
    cluster: DevCluster, tmp_path: Path
) -> None:
    # README, by hand: `dnode deploy` writes ~/.dnode/deployment.json, then
    # `dnode --home ~/req task ...` must find it (it looked for ~/req/deployment.json only)
    (tmp_path / ".dnode").mkdir()
    shutil.copy(cluster.manifest, tmp_path / ".dnode" / "deployment.json")
    r = _cli_at_home(cluster, tmp_path / "req", tmp_path, "--json", "task", "status", "999")
    assert "manifest" not in r.stderr and "deploy" not in r.stderr, r.stderr
    assert "999" in r.stderr + r.stdout  # got as far as asking the chain about task 999


BOOT = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--data", "{bad}"], "line 2: not a number"),
        (["--data", "{good}", "--owner", "0x" + "11" * 20], "takes no --owner"),
        (["--data", "{good}", "--arg", "matrix=notjson"], "--arg matrix: 'notjson' is not JSON"),
        (["--data", "{good}", "--args", "[1, 2]"], "--args"),
        (["--data", "{good}", "--program", "he.matmul"], "matrix"),
    ],
)
def test_he_post_bad_input(cluster: DevCluster, tmp_path: Path, extra: list[str], needle: str):
    alice = cluster.members["alice"]
    (tmp_path / "bad.csv").write_text("1.5\n2,x\n")
    (tmp_path / "good.csv").write_text("1.5\n2.5\n")
    extra = [e.format(bad=tmp_path / "bad.csv", good=tmp_path / "good.csv") for e in extra]
    if "--program" not in extra:
        extra = ["--program", "he.mean", *extra]
    r = run(cluster, alice.home, "task", "post", "--reward", "1ether", "--bootstrap", BOOT, *extra)
    one_line_error(r, needle)


def test_oracle_and_announce_bad_input(cluster: DevCluster, tmp_path: Path) -> None:
    home = cluster.members["alice"].home
    alice = cluster.members["alice"].address
    one_line_error(run(cluster, home, "oracle", "get", "0"), "0 is not in the range")
    one_line_error(run(cluster, home, "oracle", "get", "99"), "task 99 does not exist")
    watch = ["oracle", "watch", "--from-block", "99999999"]
    one_line_error(run(cluster, home, *watch), "past the chain head")
    params = tmp_path / "p.json"
    make = ["task", "params", "--program", "mpc.mean", "--out", str(params)]
    r = run(cluster, home, "--json", *make, "--owner", alice, "--allow-single-owner")
    assert r.returncode == 0, r.stderr
    one_line_error(run(cluster, home, *make), "needs at least one --owner")
    (tmp_path / "junk.json").write_text("{not json")
    announce = ["task", "announce", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWAbc"]
    for task_id, file, needle in [
        ("1", tmp_path / "none.json", "cannot read"),
        ("7", params, "task 7 does not exist"),
        ("1", tmp_path / "junk.json", "malformed params"),
    ]:
        one_line_error(run(cluster, home, *announce, task_id, "--params", str(file)), needle)

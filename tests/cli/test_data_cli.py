"""``dnode data publish|update|retire|list|show`` against a real devnet, as separate users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_errors import one_line_error, run

from dnode.cli.devcluster import DevCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = DevCluster(tmp_path_factory.mktemp("data-cli"))
    with c.running():
        c.member("alice")
        c.member("bob")
        yield c


def data(c: DevCluster, who: str, *args: str) -> dict:
    r = run(c, c.members[who].home, "--json", "data", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_publish_list_show_update_retire(cluster: DevCluster, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{"columns": ["age", "income"]}')
    pub = data(
        cluster, "alice", "publish", "--schema", str(schema), "--rows", "120",
        "--price", "0.01ether", "--expires-in", "2d", "--family", "stats",
        "--epsilon", "1.5", "--sample", "https://example.org/alice.csv",
    )  # fmt: skip
    ds = pub["dataset_id"]
    assert pub["owner"] == cluster.members["alice"].address
    assert (pub["rows"], pub["price"], pub["budget"], pub["budget_kind"]) == (
        120,
        10**16,
        1.5,
        "epsilon",
    )
    assert "mpc.mean" in pub["programs"] and pub["state"] == "live"
    listed = data(cluster, "bob", "list")["datasets"]
    assert [d["dataset_id"] for d in listed] == [ds]
    upd = data(cluster, "alice", "update", str(ds), "--price", "0.02ether", "--program", "mpc.sum")
    assert upd["price"] == 2 * 10**16 and upd["programs"] == ["mpc.sum"]
    assert upd["budget_left"] == 1.5  # untouched
    shown = data(cluster, "bob", "show", str(ds))
    assert shown == {**upd, "spent": 0.0, "ledger": []}  # the budget ledger: no task yet
    # bob is not the owner: one line, the contract's reason
    r = run(cluster, cluster.members["bob"].home, "data", "retire", str(ds))
    one_line_error(r, "datasets: not the owner")
    assert data(cluster, "alice", "retire", str(ds))["state"] == "retired"
    assert data(cluster, "bob", "list")["datasets"] == []
    assert data(cluster, "bob", "list", "--all")["datasets"][0]["state"] == "retired"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rows", "1", "--price", "1wei", "--program", "mpc.mean"], "one privacy budget"),
        (
            ["--rows", "1", "--price", "1wei", "--epsilon", "1", "--family", "nosuch"],
            "unknown program family 'nosuch'",
        ),
        (["--rows", "1", "--price", "1wei", "--epsilon", "1"], "at least one --program"),
        (
            [
                "--rows",
                "1",
                "--price",
                "1wei",
                "--epsilon",
                "1",
                "--program",
                "mpc.mean",
                "--expires-in",
                "soon",
            ],
            "is not a duration",
        ),  # fmt: skip
    ],
)
def test_publish_mistakes_are_one_line(cluster: DevCluster, args: list[str], needle: str) -> None:
    digest = "0x" + "11" * 32
    r = run(
        cluster, cluster.members["alice"].home, "data", "publish", "--schema-digest", digest, *args
    )
    one_line_error(r, needle)


def test_show_unknown(cluster: DevCluster) -> None:
    one_line_error(run(cluster, None, "data", "show", "999"), "dataset 999 does not exist")


def test_settle_unknown_or_unsettleable(cluster: DevCluster) -> None:
    alice = cluster.members["alice"].home
    one_line_error(run(cluster, alice, "data", "settle", "999"), "market: unknown task")


def test_sample_fetches_the_public_mock_data(cluster: DevCluster, tmp_path: Path) -> None:
    mock = tmp_path / "mock.csv"
    mock.write_text("age,income\n41,52000.00\n29,31000.50\n")
    pub = data(
        cluster, "alice", "publish", "--schema-digest", "0x" + "11" * 32, "--rows", "3",
        "--price", "0.01ether", "--program", "mpc.mean", "--epsilon", "1",
        "--sample", mock.as_uri(),
    )  # fmt: skip
    out = tmp_path / "got.csv"
    got = data(cluster, "bob", "sample", str(pub["dataset_id"]), "--out", str(out))
    assert out.read_text() == mock.read_text() and got["bytes"] == len(mock.read_bytes())
    # a dataset without a sample, and an unreachable one: one line each
    none = data(
        cluster, "alice", "publish", "--schema-digest", "0x" + "22" * 32, "--rows", "3",
        "--price", "0.01ether", "--program", "mpc.mean", "--epsilon", "1",
    )  # fmt: skip
    r = run(cluster, cluster.members["bob"].home, "data", "sample", str(none["dataset_id"]))
    one_line_error(r, "publishes no sample")
    mock.unlink()
    r = run(cluster, cluster.members["bob"].home, "data", "sample", str(pub["dataset_id"]))
    one_line_error(r, "cannot read the sample")


def test_a_task_over_datasets_pays_their_prices_and_names_their_owners(
    cluster: DevCluster, tmp_path: Path
) -> None:
    if "carol" not in cluster.members:
        cluster.member("carol")
    ids = []
    for who in ("alice", "bob"):
        pub = data(
            cluster, who, "publish", "--schema-digest", "0x" + "33" * 32, "--rows", "10",
            "--price", "0.02ether", "--program", "mpc.mean", "--epsilon", "1",
        )  # fmt: skip
        ids.append(str(pub["dataset_id"]))
    carol = cluster.members["carol"].home
    common = ["--json", "task", "post", "--reward", "0.3ether"]
    sets = [a for i in ids for a in ("--dataset", i)]
    r = run(cluster, carol, *common, "--program", "mpc.mean", *sets, "--privacy-cost", "0.25")
    assert r.returncode == 0, r.stderr
    posted = json.loads(r.stdout)
    owners = {cluster.members[w].address for w in ("alice", "bob")}
    assert set(posted["params"]["owners"]) == owners and posted["datasets"] == [int(i) for i in ids]
    assert data(cluster, "carol", "show", ids[0])["budget_left"] == 0.75
    # refusals, each one line with its reason, nothing paid
    r = run(cluster, carol, *common, "--program", "mpc.sum", *sets, "--privacy-cost", "0.25")
    one_line_error(r, "program not allowed")
    r = run(cluster, carol, *common, "--program", "mpc.mean", *sets, "--privacy-cost", "0.9")
    one_line_error(r, "privacy budget left")
    r = run(cluster, carol, *common, "--program", "mpc.mean", *sets)
    one_line_error(r, "--privacy-cost")


def test_a_task_over_an_expired_dataset_is_refused(cluster: DevCluster) -> None:
    pub = data(
        cluster, "alice", "publish", "--schema-digest", "0x" + "44" * 32, "--rows", "10",
        "--price", "0.02ether", "--program", "mpc.mean", "--epsilon", "1", "--expires-in", "2",
    )  # fmt: skip
    ds = str(pub["dataset_id"])
    carol = cluster.members.get("carol") or cluster.member("carol")
    reader = cluster.reader()
    cluster.watch(lambda: reader.block_timestamp() >= pub["expiry"] + 1, "the expiry", 60)
    r = run(
        cluster, carol.home, "task", "post", "--reward", "0.3ether",
        "--program", "mpc.mean", "--dataset", ds, "--privacy-cost", "0.1",
    )  # fmt: skip
    one_line_error(r, f"dataset {ds} expired")
    assert data(cluster, "bob", "show", ds)["state"] == "expired"

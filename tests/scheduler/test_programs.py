from __future__ import annotations

import pytest

from dnode.scheduler.errors import InvalidTaskParams, UnknownProgram
from dnode.scheduler.programs import TaskParams, get_program, program_by_id, threshold_for

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
)


def test_digest_is_canonical_and_roundtrips() -> None:
    p = TaskParams("mpc.mean", OWNERS)
    q = TaskParams.from_bytes(p.canonical())
    assert q == p and q.digest == p.digest
    # a lower-case owner is the same task: the digest uses checksummed addresses
    assert TaskParams("mpc.mean", tuple(o.lower() for o in OWNERS)).digest == p.digest
    assert TaskParams("mpc.sum", OWNERS).digest != p.digest


def test_program_lookup() -> None:
    prog = get_program("mpc.sum")
    assert program_by_id(prog.program_id) is prog
    with pytest.raises(UnknownProgram, match="unknown program 'mpc.median'"):
        get_program("mpc.median")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"kind": "float"}, "kind must be"),
        ({"kind": "int", "frac_bits": 8}, "frac_bits must be 0"),
        ({"kind": "fixed", "frac_bits": 0}, "between 1 and 32"),
        ({"owners": ()}, "between 1 and"),
        ({"owners": (OWNERS[0], OWNERS[0].lower())}, "distinct"),
        ({"owners": ("0x1234",)}, "not an address"),
        ({"input_timeout": 1}, "input_timeout"),
    ],
)
def test_invalid_params_are_refused(kwargs: dict, needle: str) -> None:
    args = {"program": "mpc.mean", "owners": OWNERS, **kwargs}
    with pytest.raises(InvalidTaskParams, match=needle):
        TaskParams(**args)


@pytest.mark.parametrize("junk", [b"", b"[]", b'{"v": 2}', b'{"v": 1, "program": "mpc.mean"}'])
def test_malformed_params_bytes(junk: bytes) -> None:
    with pytest.raises(InvalidTaskParams):
        TaskParams.from_bytes(junk)


def test_threshold_is_an_honest_minority() -> None:
    for m in range(3, 17):
        t = threshold_for(m)
        assert 2 * t < m and 2 * (t + 1) >= m

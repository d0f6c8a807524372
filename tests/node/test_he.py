"""node.he: every program against numpy, parameter refusals, public contexts, hostile blobs,
the child-process runner and cross-process determinism of result bytes."""

from __future__ import annotations

import contextlib
import os
import random
import stat

import numpy as np
import pytest

from dnode.node.he import (
    HeParams,
    HeTask,
    TensorSpec,
    create_keys,
    decode_report,
    decrypt_blob,
    decrypt_result,
    encode_report,
    encrypt_array,
    evaluate,
    evaluate_subprocess,
    job_spec,
    keccak256,
    load_secret_context,
    prepare_task,
    read_data_file,
    report_for_blob,
    save_keys,
    verify_result,
)
from dnode.node.he.encode import TensorBlob
from dnode.node.he.errors import (
    BlobTooLarge,
    ContextNotPublic,
    DigestMismatch,
    EvaluationFailed,
    HeDataError,
    HeError,
    InsecureParams,
    InsufficientDepth,
    InvalidProgramArgs,
    KeyDirError,
    MalformedBlob,
    ParamsMismatch,
    UnsupportedOperation,
)
from dnode.node.he.params import CKKS_RTOL_ATOL, bfv_depth, check_program, default_params
from dnode.node.he.validate import load_public_context, load_tensor
from dnode.scheduler.programs import TaskParams

pytestmark = pytest.mark.timeout(120)

CKKS = HeParams("ckks", 8192, (60, 40, 40, 60), scale_bits=40)
BFV = HeParams("bfv", 8192, (43, 43, 44, 44, 44), plain_modulus=1032193)
RTOL, ATOL = CKKS_RTOL_ATOL
OWNER = "0x" + "11" * 20


@pytest.fixture(scope="module")
def ckks_keys():
    return create_keys(CKKS, galois=True)


@pytest.fixture(scope="module")
def bfv_keys():
    return create_keys(BFV, galois=True)


def run(keys, program, args, arrays, order="C"):
    specs, blobs = {}, {}
    for name, a in arrays.items():
        a = np.asarray(a)
        specs[name] = TensorSpec(a.shape, order if a.ndim == 2 else "C")
        blobs[name] = encrypt_array(keys.secret_context, keys.params, a, order=order)
    out = evaluate(program, args, keys.params, keys.public_context, blobs, specs)
    return decrypt_blob(keys.secret_context, out), out


rng = np.random.default_rng(4)
X = rng.normal(3, 2, size=(6, 9))
Y = rng.normal(-1, 1, size=(6, 9))
V = rng.normal(50, 10, size=10_000)  # 3 ciphertexts of 4096 slots, last one padded


CKKS_CASES = [
    ("he.sum", {}, {"x": V}, V.sum()),
    ("he.mean", {}, {"x": V}, V.mean()),
    ("he.mean", {}, {"x": X}, X.mean()),
    ("he.mean", {"axis": 0}, {"x": X}, X.mean(0)),
    ("he.mean", {"axis": 1}, {"x": X}, X.mean(1)),
    ("he.dot", {"weights": (V / 100).tolist()}, {"x": V}, V @ (V / 100)),
    ("he.poly", {"coeffs": [0.5, 0.197, 0, -0.004]}, {"x": X}, 0.5 + 0.197 * X - 0.004 * X**3),
    ("he.add", {"operand": {"scalar": 2.5}}, {"x": X}, X + 2.5),
    ("he.add", {"operand": {"input": "y"}}, {"x": X, "y": Y}, X + Y),
    ("he.sub", {"operand": {"plain": Y.tolist()}}, {"x": X}, X - Y),
    ("he.sub", {"operand": {"input": "y"}}, {"x": X, "y": Y}, X - Y),
    ("he.mul", {"operand": {"scalar": -3}}, {"x": X}, -3 * X),
    ("he.mul", {"operand": {"plain": Y.tolist()}}, {"x": X}, X * Y),
    ("he.mul", {"operand": {"input": "y"}}, {"x": X, "y": Y}, X * Y),
    ("he.div", {"operand": {"scalar": 4}}, {"x": X}, X / 4),
    ("he.div", {"operand": {"plain": (Y + 5).tolist()}}, {"x": X}, X / (Y + 5)),
    ("he.transpose", {}, {"x": X}, X.T),
    ("he.matmul", {"matrix": Y[:3, :3].T.tolist()}, {"x": X[:, :3]}, X[:, :3] @ Y[:3, :3].T),
]


@pytest.mark.parametrize("program,args,arrays,expected", CKKS_CASES)
def test_ckks_programs_match_numpy(ckks_keys, program, args, arrays, expected):
    got, _ = run(ckks_keys, program, args, arrays)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_transposed_layout_ops(ckks_keys):
    # a tensor stored column-major: mean along each logical axis, element-wise ops
    got, _ = run(ckks_keys, "he.mean", {"axis": 0}, {"x": X}, order="F")
    np.testing.assert_allclose(got, X.mean(0), rtol=RTOL, atol=ATOL)
    got, _ = run(ckks_keys, "he.mean", {"axis": 1}, {"x": X}, order="F")
    np.testing.assert_allclose(got, X.mean(1), rtol=RTOL, atol=ATOL)
    got, _ = run(ckks_keys, "he.mul", {"operand": {"plain": Y.tolist()}}, {"x": X}, order="F")
    np.testing.assert_allclose(got, X * Y, rtol=RTOL, atol=ATOL)


def test_linear_model_with_sigmoid(tmp_path):
    # logistic scoring: sigmoid(x W + b), degree-3 approximation: depth 3 -> N=8192, scale 2^35
    feats = rng.normal(0, 1, size=(20, 5))
    w, b = rng.normal(0, 0.5, size=(5, 2)), [0.1, -0.2]
    coeffs = [0.5, 0.197, 0, -0.004]
    args = {"matrix": w.tolist(), "bias": b, "poly": coeffs}
    prep = prepare_task("he.matmul", args, {"x": feats}, tmp_path)
    assert prep.task.params.poly_modulus_degree == 8192 and prep.task.depth == 3
    out = evaluate(
        "he.matmul",
        args,
        prep.task.params,
        prep.blobs[prep.task.context.digest],
        {"x": prep.blobs[prep.task.inputs["x"].blob.digest]},
        prep.task.specs,
    )
    z = feats @ w + b
    expected = 0.5 + 0.197 * z - 0.004 * z**3
    got = decrypt_result(
        report_for_blob(out), out, key_dir=tmp_path, context_digest=prep.task.context.digest
    )
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


BI = np.arange(-20, 40).reshape(6, 10)
BJ = (np.arange(60) % 7 - 3).reshape(6, 10)


@pytest.mark.parametrize(
    "program,args,arrays,expected",
    [
        ("he.sum", {}, {"x": BI}, BI.sum()),
        ("he.mean", {}, {"x": BI}, BI.mean()),
        ("he.mean", {"axis": 1}, {"x": BI}, BI.mean(1)),
        ("he.dot", {"weights": BJ.tolist()}, {"x": BI}, (BI * BJ).sum()),
        ("he.poly", {"coeffs": [1, -2, 3]}, {"x": BI}, 1 - 2 * BI + 3 * BI**2),
        ("he.mul", {"operand": {"input": "y"}}, {"x": BI, "y": BJ}, BI * BJ),
        ("he.sub", {"operand": {"scalar": 7}}, {"x": BI}, BI - 7),
    ],
)
def test_bfv_programs_exact(bfv_keys, program, args, arrays, expected):
    got, _ = run(bfv_keys, program, args, arrays)
    np.testing.assert_array_equal(got, expected)


def test_bfv_depth_formula_is_conservative(bfv_keys):
    # BFV (N=8192, 218-bit q, 20-bit t): the formula promises `depth` multiplications
    assert BFV.depth == bfv_depth(8192, 174, 20) == 3
    import tenseal as ts

    v = ts.bfv_vector(bfv_keys.secret_context, [1, -1, 1])
    r = v
    for _ in range(BFV.depth):  # `depth` sequential multiplications still decrypt exactly
        r = r.mul(v)
    assert r.decrypt() == [1, 1, 1]


# -- parameters ------------------------------------------------------------------------


def test_security_and_depth_refusals():
    with pytest.raises(InsecureParams, match="128-bit"):
        HeParams("ckks", 8192, (60, 60, 60, 60), scale_bits=60 - 20)
    with pytest.raises(InsecureParams, match="128-bit"):
        HeParams("ckks", 4096, (40, 30, 40), scale_bits=30)  # 110 > 109
    with pytest.raises(InsecureParams, match="poly_modulus_degree"):
        HeParams("ckks", 2048, (30, 20, 30), scale_bits=20)
    with pytest.raises(InsecureParams, match="middle primes"):
        HeParams("ckks", 8192, (60, 40, 30, 60), scale_bits=40)
    with pytest.raises(InsecureParams, match="prime"):
        HeParams("bfv", 8192, (43, 43, 44, 44, 44), plain_modulus=1032192)
    with pytest.raises(InsecureParams, match="mod 2N"):
        HeParams("bfv", 8192, (43, 43, 44, 44, 44), plain_modulus=1000003)
    with pytest.raises(InsecureParams, match="malformed"):
        HeParams.from_dict({"scheme": "ckks", "poly_modulus_degree": "8192"})
    assert HeParams("ckks", 8192, (60, 49, 49, 60), scale_bits=49).total_bits == 218  # the bound
    spec = {"x": TensorSpec((10,))}
    with pytest.raises(InsufficientDepth, match="depth 3"):
        check_program(CKKS, "he.poly", {"coeffs": [0, 1, 0, 0, 0, 1]}, spec)
    with pytest.raises(InsufficientDepth):
        check_program(
            HeParams("ckks", 8192, (60, 40, 60), scale_bits=40),
            "he.matmul",
            {"matrix": [[1.0]] * 10, "poly": [0, 1, 1]},
            spec,
        )
    with pytest.raises(UnsupportedOperation):
        check_program(BFV, "he.div", {"operand": {"scalar": 2}}, spec)
    with pytest.raises(InvalidProgramArgs, match="integer"):
        check_program(BFV, "he.mul", {"operand": {"scalar": 2.5}}, spec)
    with pytest.raises(InvalidProgramArgs, match="finite"):
        check_program(CKKS, "he.add", {"operand": {"scalar": float("nan")}}, spec)
    with pytest.raises(InvalidProgramArgs, match="shape"):
        check_program(CKKS, "he.dot", {"weights": [1.0] * 9}, spec)
    with pytest.raises(InvalidProgramArgs, match="unknown arguments"):
        check_program(CKKS, "he.sum", {"evil": 1}, spec)
    assert default_params("ckks", 2).poly_modulus_degree == 8192
    assert default_params("ckks", 3).coeff_mod_bit_sizes == (55, 35, 35, 35, 55)
    assert default_params("ckks", 4).poly_modulus_degree == 16384


def test_task_params_roundtrip_and_digest(tmp_path):
    prep = prepare_task("he.mean", {}, {"x": V}, tmp_path)
    tp = TaskParams(program="he.mean", owners=(OWNER,), extra=prep.task.to_extra())
    again = TaskParams.from_bytes(tp.canonical())
    assert again.digest == tp.digest and again.canonical() == tp.canonical()
    task = HeTask.from_task_params(again)
    assert task == prep.task and task.galois
    assert set(task.blobs()) == {task.context.digest, task.inputs["x"].blob.digest}
    bad = tp.to_dict()["extra"]
    bad["he"]["params"]["coeff_mod_bit_sizes"] = [60, 60, 60, 60]
    with pytest.raises(InsecureParams):
        HeTask.from_extra("he.mean", bad)
    with pytest.raises(InvalidProgramArgs):
        HeTask.from_extra("he.mean", {"he": {"params": {}}})


# -- keys ----------------------------------------------------------------------------------


def test_public_context_has_no_secret_key_and_key_dir(tmp_path, ckks_keys):
    import tenseal as ts

    pub = ts.context_from(ckks_keys.public_context)
    assert not pub.is_private() and not pub.has_secret_key() and pub.has_galois_keys()
    private = ckks_keys.secret_context.serialize(save_secret_key=True, save_galois_keys=False)
    with pytest.raises(ContextNotPublic):
        load_public_context(private, CKKS, need_galois=False)
    path = save_keys(ckks_keys, tmp_path / "keys")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    ctx = load_secret_context(tmp_path / "keys", ckks_keys.context_digest)
    assert ctx.is_private()
    os.chmod(path, 0o644)
    with pytest.raises(KeyDirError, match="readable by others"):
        load_secret_context(tmp_path / "keys", ckks_keys.context_digest)
    with pytest.raises(KeyDirError, match="no HE secret key"):
        load_secret_context(tmp_path / "keys", b"\0" * 32)


def test_read_data_file(tmp_path):
    (tmp_path / "v.csv").write_text("value\n1\n2.5\n-3\n")
    np.testing.assert_array_equal(read_data_file(tmp_path / "v.csv"), [1, 2.5, -3])
    (tmp_path / "m.csv").write_text("1,2,3\n4,5,6\n")
    assert read_data_file(tmp_path / "m.csv").shape == (2, 3)
    (tmp_path / "bad.csv").write_text("1,2\n3\n")
    with pytest.raises(HeDataError, match="columns"):
        read_data_file(tmp_path / "bad.csv")
    (tmp_path / "nan.csv").write_text("1\nnan\n")
    with pytest.raises(HeDataError, match="NaN"):
        read_data_file(tmp_path / "nan.csv")


# -- hostile blobs -------------------------------------------------------------------------


def test_malformed_and_forged_blobs_rejected(ckks_keys, bfv_keys):
    spec = TensorSpec((6, 9))
    x = encrypt_array(ckks_keys.secret_context, CKKS, X)
    ok = {"x": x}, {"x": spec}

    def ev(ctx=ckks_keys.public_context, inputs=ok[0], specs=ok[1], params=CKKS, **kw):
        return evaluate("he.mean", {}, params, ctx, inputs, specs, **kw)

    with pytest.raises(MalformedBlob):
        ev(ctx=os.urandom(5000))
    with pytest.raises(MalformedBlob):
        ev(ctx=ckks_keys.public_context[: len(ckks_keys.public_context) // 2])
    with pytest.raises(BlobTooLarge):
        ev(max_context=1000)
    with pytest.raises(BlobTooLarge):
        ev(max_tensor=1000)
    # a context with other parameters than declared (BFV context for a CKKS task)
    with pytest.raises(ParamsMismatch):
        ev(ctx=bfv_keys.public_context)
    other = HeParams("ckks", 8192, (60, 40, 40, 60), scale_bits=40)
    no_galois = create_keys(other, galois=False)
    with pytest.raises(MalformedBlob, match="Galois"):
        ev(ctx=no_galois.public_context)
    deeper = HeParams("ckks", 8192, (50, 30, 30, 30, 50), scale_bits=30)
    with pytest.raises(ParamsMismatch):
        ev(params=deeper)
    # declared shape differs from the blob
    with pytest.raises(ParamsMismatch):
        ev(specs={"x": TensorSpec((9, 6))})
    # not a tensor blob / truncated / trailing bytes / forged header
    for bad in (b"", b"DNHE", os.urandom(300), x[:-1], x + b"\0", x.replace(b'"C"', b'"F"')):
        with pytest.raises(MalformedBlob):
            ev(inputs={"x": bad})
    # a ciphertext made under a context of other parameters
    foreign = encrypt_array(create_keys(deeper, galois=False).secret_context, deeper, X)
    with pytest.raises(MalformedBlob):
        ev(inputs={"x": foreign})
    # random corruption of ciphertext bytes: always a typed error or a (garbage) result
    t = TensorBlob.unpack(x)
    r = random.Random(1)
    for _ in range(60):
        c = bytearray(t.ciphertexts[0])
        for _ in range(r.randrange(1, 8)):
            c[r.randrange(len(c))] = r.randrange(256)
        blob = TensorBlob(t.header, [bytes(c), *t.ciphertexts[1:]]).pack()
        with contextlib.suppress(HeError):
            ev(inputs={"x": blob})


def test_fresh_ciphertext_checks(ckks_keys):
    import tenseal as ts

    spec = TensorSpec((3,))
    v = ts.ckks_vector(ckks_keys.secret_context, [1.0, 2.0, 3.0])
    from dnode.node.he.encode import TensorHeader

    h = TensorHeader("ckks", (3,), "C", 1, 1, 3)
    deep = TensorBlob(h, [(v * 2.0).serialize()]).pack()  # one level down, other scale
    pub = load_public_context(ckks_keys.public_context, CKKS, need_galois=True)
    with pytest.raises(MalformedBlob, match="top level|scale"):
        load_tensor(pub, deep, CKKS, spec)
    squared = TensorBlob(h, [v.mul(v).serialize()]).pack()
    with pytest.raises(MalformedBlob):
        load_tensor(pub, squared, CKKS, spec)


def test_report_encoding_and_verification(ckks_keys):
    _, blob = run(ckks_keys, "he.sum", {}, {"x": X})
    report = report_for_blob(blob)
    digest, locator = decode_report(report)
    assert digest == keccak256(blob) and locator == "dnode-blob:0x" + digest.hex()
    assert len(report) <= 1024 and encode_report(digest) == report
    assert verify_result(report, blob) == digest
    with pytest.raises(DigestMismatch):
        verify_result(report, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(MalformedBlob):
        decode_report(b"\x01" * 40)


# -- child process runner and determinism --------------------------------------------------


DETERMINISM_CASES = [
    ("he.sum", {}),
    ("he.mean", {"axis": 1}),
    ("he.dot", {"weights": [[0.5, -1.0, 2.0, 0.25]] * 8}),
    ("he.matmul", {"matrix": [[1.0, 2.0, 0.5]] * 4, "bias": [1.0, 0.0, 2.0]}),
    ("he.poly", {"coeffs": [0.5, 0.197, 0, -0.004]}),
    ("he.add", {"operand": {"plain": [[1.0, 2.0, 3.0, 4.0]] * 8}}),
    ("he.mul", {"operand": {"input": "y"}}),
    ("he.div", {"operand": {"scalar": 3.0}}),
]


def test_every_program_is_deterministic_across_processes(tmp_path, ckks_keys):
    (tmp_path / "ctx").write_bytes(ckks_keys.public_context)
    for name in ("x", "y"):
        a = rng.normal(0, 1, size=(8, 4))
        (tmp_path / name).write_bytes(encrypt_array(ckks_keys.secret_context, CKKS, a))
    jobs = []
    for k, (program, args) in enumerate(DETERMINISM_CASES):
        names = ["x", "y"] if "input" in args.get("operand", {}) else ["x"]
        for i in range(2):
            jobs.append(
                (
                    k,
                    job_spec(
                        program,
                        args,
                        CKKS,
                        tmp_path / "ctx",
                        {n: tmp_path / n for n in names},
                        {n: TensorSpec((8, 4)) for n in names},
                        tmp_path / f"out-{k}-{i}",
                    ),
                )
            )
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(lambda kj: (kj[0], evaluate_subprocess(kj[1])), jobs))
    for k in range(len(DETERMINISM_CASES)):
        a, b = (d for kk, d in digests if kk == k)
        assert a == b, f"{DETERMINISM_CASES[k][0]} is not deterministic"


def test_subprocess_runner_and_cross_process_determinism(tmp_path, ckks_keys):
    feats = rng.normal(0, 1, size=(8, 4))
    w = rng.normal(0, 1, size=(4, 3)).tolist()
    (tmp_path / "ctx").write_bytes(ckks_keys.public_context)
    (tmp_path / "x").write_bytes(encrypt_array(ckks_keys.secret_context, CKKS, feats))
    specs = {"x": TensorSpec((8, 4))}
    args = {"matrix": w, "bias": [1.0, 2.0, 3.0]}
    digests = []
    for i in range(2):
        job = job_spec(
            "he.matmul",
            args,
            CKKS,
            tmp_path / "ctx",
            {"x": tmp_path / "x"},
            specs,
            tmp_path / f"out{i}",
        )
        digests.append(evaluate_subprocess(job, timeout=60))
    in_process = evaluate(
        "he.matmul",
        args,
        CKKS,
        ckks_keys.public_context,
        {"x": (tmp_path / "x").read_bytes()},
        specs,
    )
    assert digests[0] == digests[1] == keccak256(in_process)
    assert (tmp_path / "out0").read_bytes() == (tmp_path / "out1").read_bytes() == in_process
    got = decrypt_blob(ckks_keys.secret_context, in_process)
    np.testing.assert_allclose(got, feats @ np.array(w) + [1, 2, 3], rtol=RTOL, atol=ATOL)
    # typed errors cross the process boundary; the caller keeps running
    (tmp_path / "garbage").write_bytes(os.urandom(1000))
    job = job_spec(
        "he.sum", {}, CKKS, tmp_path / "garbage", {"x": tmp_path / "x"}, specs, tmp_path / "o"
    )
    with pytest.raises(MalformedBlob):
        evaluate_subprocess(job, timeout=60)
    job["inputs"]["x"]["path"] = str(tmp_path / "missing")
    with pytest.raises(EvaluationFailed):
        evaluate_subprocess(job, timeout=60)
    assert not (tmp_path / "o").exists()


def test_evaluator_sets_its_own_memory_limit():
    """The limit is applied inside the child (no preexec_fn: unsafe with threads)."""
    import subprocess
    import sys

    code = (
        "import resource, sys\n"
        "sys.argv = ['runner', '300000000']\n"
        "sys.stdin = open('/dev/null')\n"
        "import node.he.runner as r\n"
        "r._main()\n"
        "print(resource.getrlimit(resource.RLIMIT_AS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "(300000000, 300000000)"

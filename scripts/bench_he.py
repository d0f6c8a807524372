#!/usr/bin/env python
"""HE benchmarks for docs/benchmarks.md (one run, same data for every contender).

(a) node-side evaluation: dnode (``node.he.programs.evaluate``: size caps, context/ciphertext
    validation, evaluation, result serialization) vs bare TenSEAL doing the same steps
    (deserialize, same operations, serialize) with no checks, for he.mean over 100,000 values
    and a logistic-scoring linear model (he.matmul + degree-3 sigmoid). Also reported: the
    same dnode evaluation in its isolated child process (what the daemon runs), and TenSEAL's
    own CKKSVector.matmul/polyval (faster but randomized: not attestable, see node.he.programs).
(b) encrypted mean of 100,000 values end to end (client: keys + encryption + decryption; node:
    evaluation): python-paillier (2048-bit key, per-element encryption, fixed point 1e-6)
    vs dnode CKKS. Paillier is timed on a sample (--paillier-sample values) and scaled
    linearly to 100,000 (encryption and additions are per element; this is stated in the
    output).

    python scripts/bench_he.py --json            # machine-readable
    python scripts/bench_he.py                   # table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import machine_info  # noqa: E402

from dnode.node.he import (  # noqa: E402
    evaluate,
    evaluate_subprocess,
    job_spec,
    prepare_task,
)
from dnode.node.he.encode import decrypt_blob  # noqa: E402
from dnode.node.he.keys import load_secret_context  # noqa: E402

N_VALUES = 100_000


def timed(fn, repeat: int):  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def machine() -> dict:
    import tenseal

    return machine_info(tenseal=tenseal.__version__)


# ------------------------------------------------------------------------------------------
# (a)


def bare_mean(ctx_bytes: bytes, cts: list[bytes], n: int) -> bytes:
    import tenseal as ts

    ctx = ts.context_from(ctx_bytes)
    vs = [ts.ckks_vector_from(ctx, c) for c in cts]
    acc = vs[0].add(vs[1])
    for v in vs[2:]:
        acc.add_(v)
    return acc.sum().mul(1.0 / n).serialize()


def bare_linear(ctx_bytes: bytes, cts: list[bytes], w: np.ndarray, b, poly, native: bool):
    import tenseal as ts

    from dnode.node.he.programs import _polyval

    ctx = ts.context_from(ctx_bytes)
    out = []
    cols = w.T.tolist()
    for c in cts:
        v = ts.ckks_vector_from(ctx, c)
        if native:  # TenSEAL's own (randomized) matmul + polyval
            out.append(v.matmul(w.tolist()).add(b).polyval(poly).serialize())
        else:  # the same deterministic formulation dnode uses
            for j, col in enumerate(cols):
                out.append(_polyval(v.dot(col).add(float(b[j])), poly).serialize())
    return out


def bench_eval(repeat: int, tmp: Path) -> dict:
    from dnode.node.he.encode import TensorBlob

    rng = np.random.default_rng(7)
    results = {}
    # he.mean over 100k values
    values = rng.normal(50, 10, N_VALUES)
    prep = prepare_task("he.mean", {}, {"x": values}, tmp / "keys-a1")
    ctx = prep.blobs[prep.task.context.digest]
    xblob = prep.blobs[prep.task.inputs["x"].blob.digest]
    cts = TensorBlob.unpack(xblob).ciphertexts
    t_dnode, out = timed(
        lambda: evaluate("he.mean", {}, prep.task.params, ctx, {"x": xblob}, prep.task.specs),
        repeat,
    )
    t_bare, _ = timed(lambda: bare_mean(ctx, cts, N_VALUES), repeat)
    (tmp / "ctx-mean").write_bytes(ctx)
    (tmp / "x-mean").write_bytes(xblob)
    job = job_spec(
        "he.mean",
        {},
        prep.task.params,
        tmp / "ctx-mean",
        {"x": tmp / "x-mean"},
        prep.task.specs,
        tmp / "out-mean",
    )
    t_child, _ = timed(lambda: evaluate_subprocess(job), repeat)
    secret = load_secret_context(tmp / "keys-a1", prep.task.context.digest)
    err = abs(float(decrypt_blob(secret, out)) - values.mean())
    results["he.mean_100k"] = {
        "params": prep.task.params.to_dict(),
        "dnode_s": t_dnode,
        "bare_tenseal_s": t_bare,
        "ratio": t_dnode / t_bare,
        "dnode_child_process_s": t_child,
        "abs_error": err,
        "context_bytes": len(ctx),
        "input_bytes": len(xblob),
        "result_bytes": len(out),
    }
    # linear model + sigmoid (logistic scoring)
    feats = rng.normal(0, 1, size=(64, 16))
    w = rng.normal(0, 0.3, size=(16, 2))
    b = [0.1, -0.2]
    poly = [0.5, 0.197, 0.0, -0.004]
    args = {"matrix": w.tolist(), "bias": b, "poly": poly}
    prep = prepare_task("he.matmul", args, {"x": feats}, tmp / "keys-a2")
    ctx = prep.blobs[prep.task.context.digest]
    xblob = prep.blobs[prep.task.inputs["x"].blob.digest]
    cts = TensorBlob.unpack(xblob).ciphertexts
    t_dnode, out = timed(
        lambda: evaluate("he.matmul", args, prep.task.params, ctx, {"x": xblob}, prep.task.specs),
        repeat,
    )
    t_bare, _ = timed(lambda: bare_linear(ctx, cts, w, b, poly, native=False), repeat)
    t_native, _ = timed(lambda: bare_linear(ctx, cts, w, b, poly, native=True), repeat)
    secret = load_secret_context(tmp / "keys-a2", prep.task.context.digest)
    z = feats @ w + b
    err = float(np.max(np.abs(decrypt_blob(secret, out) - (0.5 + 0.197 * z - 0.004 * z**3))))
    results["he.matmul_logistic_64x16x2"] = {
        "params": prep.task.params.to_dict(),
        "dnode_s": t_dnode,
        "bare_tenseal_s": t_bare,
        "ratio": t_dnode / t_bare,
        "bare_tenseal_native_matmul_polyval_s": t_native,
        "abs_error": err,
        "context_bytes": len(ctx),
        "input_bytes": len(xblob),
        "result_bytes": len(out),
    }
    return results


# ------------------------------------------------------------------------------------------
# (b)


def bench_paillier_vs_dnode(sample: int, tmp: Path) -> dict:
    from phe import paillier

    rng = np.random.default_rng(11)
    values = rng.normal(50, 10, N_VALUES)
    scale = N_VALUES / sample

    # -- Paillier (python-paillier), fixed point with 6 decimals, timed on a sample --------
    t = time.perf_counter()
    pub, priv = paillier.generate_paillier_keypair(n_length=2048)
    t_keygen = time.perf_counter() - t
    fixed = [int(round(v * 1e6)) for v in values[:sample]]
    t = time.perf_counter()
    enc = [pub.encrypt(v) for v in fixed]
    t_enc_sample = time.perf_counter() - t
    t = time.perf_counter()
    acc = enc[0]
    for c in enc[1:]:
        acc = acc + c
    t_add_sample = time.perf_counter() - t
    t = time.perf_counter()
    total = priv.decrypt(acc)
    t_dec = time.perf_counter() - t
    assert abs(total / 1e6 - values[:sample].sum()) < 1e-3 * sample
    ct_bytes = (pub.nsquare.bit_length() + 7) // 8
    paillier_client = t_keygen + t_enc_sample * scale + t_dec
    paillier_node = t_add_sample * scale
    paillier = {
        "key_bits": 2048,
        "sample_values": sample,
        "scaled_linearly_to": N_VALUES,
        "keygen_s": t_keygen,
        "encrypt_s": t_enc_sample * scale,
        "decrypt_s": t_dec,
        "client_s": paillier_client,
        "node_s": paillier_node,
        "total_s": paillier_client + paillier_node,
        "ciphertext_bytes_total": ct_bytes * N_VALUES,
    }

    # -- dnode CKKS, all 100,000 values ----------------------------------------------------
    t = time.perf_counter()
    prep = prepare_task("he.mean", {}, {"x": values}, tmp / "keys-b")
    t_client_prep = time.perf_counter() - t
    ctx = prep.blobs[prep.task.context.digest]
    xblob = prep.blobs[prep.task.inputs["x"].blob.digest]
    t = time.perf_counter()
    out = evaluate("he.mean", {}, prep.task.params, ctx, {"x": xblob}, prep.task.specs)
    t_node = time.perf_counter() - t
    (tmp / "ctx-b").write_bytes(ctx)
    (tmp / "x-b").write_bytes(xblob)
    job = job_spec(
        "he.mean",
        {},
        prep.task.params,
        tmp / "ctx-b",
        {"x": tmp / "x-b"},
        prep.task.specs,
        tmp / "out-b",
    )
    t = time.perf_counter()
    evaluate_subprocess(job)
    t_node_child = time.perf_counter() - t
    t = time.perf_counter()
    secret = load_secret_context(tmp / "keys-b", prep.task.context.digest)
    mean = float(decrypt_blob(secret, out))
    t_dec = time.perf_counter() - t
    dnode = {
        "params": prep.task.params.to_dict(),
        "client_keys_encrypt_s": t_client_prep,
        "client_decrypt_s": t_dec,
        "client_s": t_client_prep + t_dec,
        "node_s": t_node,
        "node_child_process_s": t_node_child,
        "total_s": t_client_prep + t_dec + t_node,
        "abs_error": abs(mean - values.mean()),
        "context_bytes": len(ctx),
        "input_bytes": len(xblob),
        "result_bytes": len(out),
    }
    return {
        "paillier": paillier,
        "dnode": dnode,
        "speedup_total": paillier["total_s"] / dnode["total_s"],
        "speedup_client": paillier_client / dnode["client_s"],
        "speedup_node": paillier_node / dnode["node_s"],
        "note": f"Paillier timed on {sample} values and scaled linearly to {N_VALUES}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--repeat", type=int, default=3, help="median of this many runs in (a)")
    ap.add_argument("--paillier-sample", type=int, default=2000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = {"machine": machine(), "command": " ".join(["python", *sys.argv])}
        out["a_node_eval_vs_bare_tenseal"] = bench_eval(a.repeat, tmp)
        out["b_mean_100k_paillier_vs_dnode"] = bench_paillier_vs_dnode(a.paillier_sample, tmp)
        out["machine"]["loadavg_at_end"] = list(os.getloadavg())
    if a.json:
        print(json.dumps(out, indent=2))
        return
    for name, r in out["a_node_eval_vs_bare_tenseal"].items():
        print(
            f"(a) {name}: dnode {r['dnode_s']:.3f}s  bare TenSEAL {r['bare_tenseal_s']:.3f}s"
            f"  ratio {r['ratio']:.2f}x  (child process {r.get('dnode_child_process_s', 0):.3f}s)"
        )
    b = out["b_mean_100k_paillier_vs_dnode"]
    print(
        f"(b) mean of {N_VALUES}: Paillier {b['paillier']['total_s']:.1f}s vs dnode "
        f"{b['dnode']['total_s']:.2f}s -> {b['speedup_total']:.0f}x ({b['note']})"
    )


if __name__ == "__main__":
    main()

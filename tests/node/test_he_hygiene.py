"""Issue 13, finding 7: a requester never sees a full-precision CKKS decryption (IND-CPA^D,
Li-Micciancio): results come back flooded and rounded to the documented precision."""

from __future__ import annotations

import numpy as np

from dnode.node.he import decrypt_result, prepare_task, report_for_blob
from dnode.node.he.hygiene import grid_step
from dnode.node.he.params import CKKS_RTOL_ATOL
from dnode.node.he.programs import evaluate

RTOL, ATOL = CKKS_RTOL_ATOL


def test_ckks_results_are_rounded_to_the_documented_precision(tmp_path):
    x = np.random.default_rng(7).normal(0, 100, size=40)
    prep = prepare_task("he.mean", {}, {"x": x}, tmp_path)
    out = evaluate(
        "he.mean",
        {},
        prep.task.params,
        prep.blobs[prep.task.context.digest],
        {"x": prep.blobs[prep.task.inputs["x"].blob.digest]},
        prep.task.specs,
    )
    got = np.asarray(
        decrypt_result(
            report_for_blob(out), out, key_dir=tmp_path, context_digest=prep.task.context.digest
        )
    )
    np.testing.assert_allclose(got, x.mean(), rtol=RTOL, atol=ATOL)
    step = grid_step(got)
    # every value sits on its grid: the digits below it (where the noise lives) are gone
    on_grid = np.abs(got / step - np.round(got / step))
    assert np.all(on_grid < 1e-6), (got, step)

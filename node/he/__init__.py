"""Homomorphic-encryption tasks: outsourced compute on encrypted data (TenSEAL: CKKS, BFV).

Requester::

    prep = prepare_task("he.mean", {}, {"x": "values.csv"}, key_dir)   # keys stay in key_dir
    TaskParams(program="he.mean", owners=(me,), extra=prep.task.to_extra())   # post it
    # hand prep.blobs (public context + ciphertexts) to the committee over /dnode/blob/1.0.0
    ...
    values = decrypt_result(report_bytes, result_blob, key_dir=key_dir,
                            context_digest=prep.task.context.digest)

Node::

    task = HeTask.from_task_params(params)                   # validated, HeError on refusal
    # fetch task.blobs() (digest -> declared size) with node.blobs.fetch_blob
    digest = await evaluate_isolated(job_spec(...))          # child process, digest of result
    report = encode_report(digest)                           # sign keccak(report) as for MPC

Modules: params (security/depth), keys, encode (tensor blobs), validate (untrusted input),
programs (evaluation), runner (child process), result (report encoding, decryption), task
(TaskParams.extra schema).
"""

from dnode.node.he.encode import TensorBlob, decrypt_blob, encrypt_array, keccak256, read_data_file
from dnode.node.he.errors import HeError
from dnode.node.he.keys import HeKeys, create_keys, load_secret_context, save_keys
from dnode.node.he.params import HE_PROGRAMS, HeParams, TensorSpec, check_program, default_params
from dnode.node.he.programs import evaluate
from dnode.node.he.result import (
    decode_report,
    decrypt_result,
    encode_report,
    report_for_blob,
    verify_result,
)
from dnode.node.he.runner import evaluate_isolated, evaluate_subprocess, job_spec
from dnode.node.he.task import HeTask, PreparedTask, prepare_task

__all__ = [
    "HE_PROGRAMS",
    "HeError",
    "HeKeys",
    "HeParams",
    "HeTask",
    "PreparedTask",
    "TensorBlob",
    "TensorSpec",
    "check_program",
    "create_keys",
    "decode_report",
    "decrypt_blob",
    "decrypt_result",
    "default_params",
    "encode_report",
    "encrypt_array",
    "evaluate",
    "evaluate_isolated",
    "evaluate_subprocess",
    "job_spec",
    "keccak256",
    "load_secret_context",
    "prepare_task",
    "read_data_file",
    "report_for_blob",
    "save_keys",
    "verify_result",
]

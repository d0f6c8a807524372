"""Run an HE evaluation in a child process (the daemon's entry point to node.he).

Why a child: evaluation is CPU-bound (it would stall trio), it parses untrusted bytes in
native code (a crash, a hang or a memory blow-up must cost only that task), and it gets a
wall-clock timeout and an address-space limit. The child reads the context and inputs from
files (the node's blob store), writes the result blob to a file and reports one JSON line::

    python -m node.he.runner < job.json
    job = {"program", "args", "params", "context": path,
           "inputs": {name: {"path", "shape", "order"}}, "out": path}
    stdout: {"ok": true, "digest": "0x.."} | {"ok": false, "error": "<HeError class>",
                                              "message": "..."}
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dnode import IMPORT_ROOT
from dnode.node.he import errors as he_errors
from dnode.node.he.errors import EvaluationFailed, HeError
from dnode.node.he.params import HeParams, TensorSpec

DEFAULT_TIMEOUT = 600.0
DEFAULT_MEMORY_LIMIT = 16 * 1024**3  # address space of the child, bytes


def job_spec(
    program: str,
    args: Mapping[str, Any],
    params: HeParams,
    context_path: str | Path,
    input_paths: Mapping[str, str | Path],
    specs: Mapping[str, TensorSpec],
    out_path: str | Path,
) -> dict[str, Any]:
    return {
        "program": program,
        "args": dict(args),
        "params": params.to_dict(),
        "context": str(context_path),
        "inputs": {
            k: {"path": str(p), "shape": list(specs[k].shape), "order": specs[k].order}
            for k, p in input_paths.items()
        },
        "out": str(out_path),
    }


def _command(memory_limit: int | None) -> list[str]:
    # the child applies the limit itself: a preexec_fn would run Python between fork and exec,
    # which can crash in a process with other threads (the node has worker threads; a
    # GC in the forked child segfaulted once in CI)
    return [sys.executable, "-m", "dnode.node.he.runner", str(memory_limit or 0)]


def _env() -> dict[str, str]:
    root = IMPORT_ROOT
    pp = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + pp if pp else ""))


def _outcome(returncode: int, stdout: bytes, stderr: bytes) -> bytes:
    line = stdout.decode(errors="replace").strip().splitlines()[-1:] or [""]
    try:
        msg = json.loads(line[0])
    except ValueError:
        msg = None
    if returncode < 0:
        name = (
            signal.Signals(-returncode).name
            if -returncode in signal.Signals._value2member_map_
            else returncode
        )
        raise EvaluationFailed(f"HE evaluator crashed ({name}); nothing reported")
    if isinstance(msg, dict) and msg.get("ok") is True and returncode == 0:
        return bytes.fromhex(msg["digest"][2:])
    if isinstance(msg, dict) and msg.get("ok") is False:
        cls = getattr(he_errors, str(msg.get("error")), None)
        if not (isinstance(cls, type) and issubclass(cls, HeError)) or cls is he_errors.HeDataError:
            cls = EvaluationFailed
        raise cls(str(msg.get("message")))
    tail = stderr.decode(errors="replace")[-500:]
    raise EvaluationFailed(f"HE evaluator exited with {returncode}: {tail}")


def evaluate_subprocess(
    job: Mapping[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> bytes:
    """Blocking: run ``job`` in a child; returns the result digest (blob at ``job["out"]``)."""
    try:
        p = subprocess.run(
            _command(memory_limit),
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=timeout,
            env=_env(),
        )
    except subprocess.TimeoutExpired:
        raise EvaluationFailed(f"HE evaluation timed out after {timeout}s") from None
    return _outcome(p.returncode, p.stdout, p.stderr)


async def evaluate_isolated(
    job: Mapping[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> bytes:
    """trio: like :func:`evaluate_subprocess`; the child is killed on timeout or cancel."""
    import trio

    try:
        with trio.fail_after(timeout):
            p = await trio.run_process(
                _command(memory_limit),
                stdin=json.dumps(job).encode(),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=_env(),
            )
    except trio.TooSlowError:
        raise EvaluationFailed(f"HE evaluation timed out after {timeout}s") from None
    return _outcome(p.returncode, p.stdout, p.stderr)


def _main() -> int:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if limit:  # before anything large is loaded
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from dnode.node.he.encode import keccak256
    from dnode.node.he.programs import evaluate

    try:
        job = json.loads(sys.stdin.buffer.read())
        specs = {k: TensorSpec(tuple(v["shape"]), v["order"]) for k, v in job["inputs"].items()}
        result = evaluate(
            job["program"],
            job["args"],
            HeParams.from_dict(job["params"]),
            Path(job["context"]).read_bytes(),
            {k: Path(v["path"]).read_bytes() for k, v in job["inputs"].items()},
            specs,
        )
        out = Path(job["out"])
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(result)
        os.replace(tmp, out)
        print(json.dumps({"ok": True, "digest": "0x" + keccak256(result).hex()}), flush=True)
        return 0
    except HeError as e:
        print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e)}), flush=True)
        return 3
    except MemoryError:
        print(json.dumps({"ok": False, "error": "EvaluationFailed", "message": "out of memory"}))
        return 3
    except (OSError, KeyError, TypeError, ValueError) as e:
        msg = f"bad job: {e!r}"
        print(json.dumps({"ok": False, "error": "EvaluationFailed", "message": msg}), flush=True)
        return 3


if __name__ == "__main__":
    sys.exit(_main())

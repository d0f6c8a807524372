"""The HE part of a task's canonical parameters, and the requester's "prepare a task" step.

An HE task is an ordinary :class:`scheduler.programs.TaskParams` whose program is one of the
``he.*`` programs and whose ``extra`` holds (hashed on-chain with everything else)::

    extra = {"he": {
        "params":  {"scheme", "poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits" |
                    "plain_modulus"},
        "context": {"digest": "0x<keccak256 of the public context>", "size": n, "galois": b},
        "inputs":  {"x": {"digest": "0x..", "size": n, "shape": [..], "order": "C"}, "y"?: ..},
        "args":    {program arguments, see node.he.programs},
    }}

Blobs (context, inputs) travel over ``/dnode/blob/1.0.0`` (:mod:`node.blobs`), never over
gossip; a node fetches at most the declared size and checks the digest before parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnode.node.he.encode import encrypt_array, keccak256, read_data_file
from dnode.node.he.errors import InvalidProgramArgs
from dnode.node.he.params import (
    HeParams,
    TensorSpec,
    check_program,
    default_params,
    needs_galois,
)

MAX_BLOB_DECLARED = 1 << 31


def _hex32(x: Any, what: str) -> bytes:
    if not isinstance(x, str) or not x.startswith("0x") or len(x) != 66:
        raise InvalidProgramArgs(f"{what} must be a 0x-prefixed 32-byte hex digest")
    try:
        return bytes.fromhex(x[2:])
    except ValueError:
        raise InvalidProgramArgs(f"{what} must be a 0x-prefixed 32-byte hex digest") from None


def _size(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not 0 < x <= MAX_BLOB_DECLARED:
        raise InvalidProgramArgs(f"{what} must be a positive byte count <= {MAX_BLOB_DECLARED}")
    return x


@dataclass(frozen=True)
class BlobRef:
    digest: bytes
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"digest": "0x" + self.digest.hex(), "size": self.size}


@dataclass(frozen=True)
class HeInput:
    blob: BlobRef
    spec: TensorSpec


@dataclass(frozen=True)
class HeTask:
    program: str
    params: HeParams
    context: BlobRef
    galois: bool
    inputs: dict[str, HeInput]
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.depth  # noqa: B018 - validates program, args, shapes and depth
        want = needs_galois(self.program, self.args, self.inputs["x"].spec)
        if want and not self.galois:
            raise InvalidProgramArgs(f"{self.program} rotates slots: the context needs Galois keys")

    @property
    def specs(self) -> dict[str, TensorSpec]:
        return {k: v.spec for k, v in self.inputs.items()}

    @property
    def depth(self) -> int:
        if "x" not in self.inputs:
            raise InvalidProgramArgs(f"{self.program}: needs an encrypted input named 'x'")
        return check_program(self.params, self.program, self.args, self.specs)

    def blobs(self) -> dict[bytes, int]:
        """Every blob the committee must fetch: digest -> declared size."""
        out = {self.context.digest: self.context.size}
        for i in self.inputs.values():
            out[i.blob.digest] = i.blob.size
        return out

    def to_extra(self) -> dict[str, Any]:
        return {
            "he": {
                "params": self.params.to_dict(),
                "context": {**self.context.to_dict(), "galois": self.galois},
                "inputs": {
                    name: {
                        **i.blob.to_dict(),
                        "shape": list(i.spec.shape),
                        "order": i.spec.order,
                    }
                    for name, i in sorted(self.inputs.items())
                },
                "args": self.args,
            }
        }

    @classmethod
    def from_extra(cls, program: str, extra: Mapping[str, Any]) -> HeTask:
        """Parse and fully validate ``TaskParams.extra`` of an HE task (HeError subclasses)."""
        try:
            he = extra["he"]
            if not isinstance(he, Mapping) or set(he) != {"params", "context", "inputs", "args"}:
                raise InvalidProgramArgs("extra.he must have params, context, inputs, args")
            c = he["context"]
            if not isinstance(c, Mapping) or set(c) != {"digest", "size", "galois"}:
                raise InvalidProgramArgs("extra.he.context must have digest, size, galois")
            if not isinstance(c["galois"], bool):
                raise InvalidProgramArgs("extra.he.context.galois must be a boolean")
            inputs: dict[str, HeInput] = {}
            if not isinstance(he["inputs"], Mapping) or not he["inputs"]:
                raise InvalidProgramArgs("extra.he.inputs must be a non-empty object")
            for name, d in he["inputs"].items():
                if not isinstance(d, Mapping) or set(d) != {"digest", "size", "shape", "order"}:
                    raise InvalidProgramArgs(f"input {name!r}: needs digest, size, shape, order")
                if not isinstance(d["shape"], list):
                    raise InvalidProgramArgs(f"input {name!r}: shape must be a list")
                inputs[str(name)] = HeInput(
                    BlobRef(_hex32(d["digest"], f"input {name!r} digest"), _size(d["size"], name)),
                    TensorSpec(tuple(d["shape"]), d["order"]),
                )
            if not isinstance(he["args"], Mapping):
                raise InvalidProgramArgs("extra.he.args must be an object")
            return cls(
                program=program,
                params=HeParams.from_dict(he["params"]),
                context=BlobRef(_hex32(c["digest"], "context digest"), _size(c["size"], "ctx")),
                galois=c["galois"],
                inputs=inputs,
                args=dict(he["args"]),
            )
        except (KeyError, TypeError) as e:
            raise InvalidProgramArgs(f"malformed HE task parameters: {e!r}") from None

    @classmethod
    def from_task_params(cls, tp: Any) -> HeTask:
        return cls.from_extra(tp.program, tp.extra)


@dataclass
class PreparedTask:
    """What ``dnode task post`` needs after encrypting: params + blobs to hand out."""

    task: HeTask
    blobs: dict[bytes, bytes] = field(repr=False)  # digest -> bytes (context, inputs)
    secret_key_path: Path


def prepare_task(
    program: str,
    args: Mapping[str, Any],
    data: Mapping[str, str | Path | np.ndarray],
    key_dir: str | Path,
    *,
    scheme: str = "ckks",
    params: HeParams | None = None,
    order: str = "C",
) -> PreparedTask:
    """Requester side: load data, choose (or check) parameters, make and store keys, encrypt.

    ``data`` maps input names (``"x"``, optionally ``"y"``) to a data file or an array. The
    secret key stays in ``key_dir``; the returned blobs hold only public material.
    """
    from dnode.node.he.keys import create_keys, save_keys

    arrays = {
        k: (np.asarray(v) if isinstance(v, np.ndarray) else read_data_file(v))
        for k, v in data.items()
    }
    specs = {k: TensorSpec(a.shape, order if a.ndim == 2 else "C") for k, a in arrays.items()}
    args = dict(args)
    if params is None:
        # the program's depth, measured on a deep parameter set (also validates the args)
        depth = check_program(default_params(scheme, 7), program, args, specs)
        min_slots = 1
        if program == "he.matmul":
            mat = args.get("matrix") or [[0]]
            min_slots = max(specs["x"].shape[-1], len(mat[0]) if mat and mat[0] else 1)
        params = default_params(scheme, depth=depth, min_slots=min_slots)
    check_program(params, program, args, specs)
    galois = needs_galois(program, args, specs["x"])
    keys = create_keys(params, galois=galois)
    blobs = {keccak256(keys.public_context): keys.public_context}
    inputs = {}
    for name, arr in sorted(arrays.items()):
        blob = encrypt_array(keys.secret_context, params, arr, order=specs[name].order, source=name)
        d = keccak256(blob)
        blobs[d] = blob
        inputs[name] = HeInput(BlobRef(d, len(blob)), specs[name])
    task = HeTask(
        program=program,
        params=params,
        context=BlobRef(keys.context_digest, len(keys.public_context)),
        galois=galois,
        inputs=inputs,
        args=args,
    )
    path = save_keys(keys, key_dir)
    return PreparedTask(task, blobs, path)

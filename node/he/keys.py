"""Requester-side keys: create a TenSEAL context, export its public part, keep the secret.

The secret context (secret key included, Galois keys left out: decryption does not need them)
is written to ``<key_dir>/he/<context digest hex>.seal`` with mode 0600 in a 0700 directory;
only the requester's machine ever holds it. The public context (public, relinearization and,
only when the program rotates slots, Galois keys) is what goes to the committee; its
``keccak256`` is the context digest named in the task parameters.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnode.node.he.encode import keccak256
from dnode.node.he.errors import KeyDirError
from dnode.node.he.params import HeParams


@dataclass
class HeKeys:
    params: HeParams
    secret_context: Any = field(repr=False)  # tenseal.Context holding the secret key
    public_context: bytes = field(repr=False)  # serialized, no secret key

    @property
    def context_digest(self) -> bytes:
        return keccak256(self.public_context)


def create_keys(params: HeParams, *, galois: bool) -> HeKeys:
    """Fresh keys for ``params``; ``galois`` adds rotation keys (tens of MB) to the public part."""
    import tenseal as ts

    if params.scheme == "ckks":
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            params.poly_modulus_degree,
            coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        )
        ctx.global_scale = params.scale
    else:
        ctx = ts.context(
            ts.SCHEME_TYPE.BFV,
            params.poly_modulus_degree,
            plain_modulus=params.plain_modulus,
            coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        )
    ctx.generate_relin_keys()
    if galois:
        ctx.generate_galois_keys()
    public = ctx.serialize(
        save_public_key=True,
        save_secret_key=False,
        save_galois_keys=galois,
        save_relin_keys=True,
    )
    return HeKeys(params, ctx, public)


def _he_dir(key_dir: str | Path) -> Path:
    return Path(key_dir).expanduser() / "he"


def secret_path(key_dir: str | Path, context_digest: bytes) -> Path:
    return _he_dir(key_dir) / f"{context_digest.hex()}.seal"


def save_keys(keys: HeKeys, key_dir: str | Path) -> Path:
    """Store the secret context (0600) under the key directory; returns its path."""
    d = _he_dir(key_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    path = secret_path(key_dir, keys.context_digest)
    data = keys.secret_context.serialize(
        save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def load_secret_context(key_dir: str | Path, context_digest: bytes) -> Any:
    """The requester's secret context for a task's context digest (refuses unsafe files)."""
    import tenseal as ts

    path = secret_path(key_dir, context_digest)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyDirError(
            f"no HE secret key for context {context_digest.hex()} in {path.parent} "
            "(was the task posted from this key directory?)"
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyDirError(
            f"{path} is readable by others (mode {oct(st.st_mode & 0o777)}); chmod 600"
        )
    try:
        ctx = ts.context_from(path.read_bytes())
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise KeyDirError(f"{path}: cannot load the secret context: {e}") from None
    if not ctx.is_private():
        raise KeyDirError(f"{path} holds no secret key")
    return ctx

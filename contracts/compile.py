"""Compile the dnode Vyper sources with the installed compiler (no solc/vyper binary needed)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from dnode.contracts.errors import CompileError

VYPER_DIR = Path(__file__).resolve().parent / "vyper"
# deployable contracts; modules (registry/market/court) are pulled in via imports.
# dnode_court and dnode_data are the code-only extensions dnode delegates its litigation and
# data marketplace functions to.
MAIN_CONTRACTS = ("dnode", "dnode_court", "dnode_data")
# the documented consumer interface (docs/protocol.md, "Consuming results"), in the manifest
INTERFACES = ("IDnodeConsumer", "IDnodeOracle")

_cache: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
_lock = threading.Lock()


def compile_file(path: Path, search_paths: list[Path] | None = None) -> dict[str, Any]:
    """Compile one .vy file to ``{"abi": [...], "bytecode": "0x..."}``; errors -> CompileError."""
    try:
        from vyper.compiler import compile_from_file_input
        from vyper.compiler.input_bundle import FilesystemInputBundle
    except ImportError as exc:  # pragma: no cover - environment problem
        raise CompileError(str(path), f"vyper is not installed: {exc}") from exc
    if not path.is_file():
        raise CompileError(str(path), "source file not found")
    paths = [path.parent, *(search_paths or [])]
    bundle = FilesystemInputBundle(paths)
    try:
        file_input = bundle.load_file(path.name)
        out = compile_from_file_input(
            file_input, input_bundle=bundle, output_formats=["abi", "bytecode"]
        )
    except Exception as exc:  # vyper raises many exception types; report the first line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompileError(str(path), f"{type(exc).__name__}: {detail}") from exc
    bytecode = out["bytecode"]
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return {"abi": out["abi"], "bytecode": bytecode}


def source_digest(names: tuple[str, ...] = MAIN_CONTRACTS) -> str:
    """Digest of everything a compilation depends on: every source under contracts/vyper,
    the compiler version and the contract names (any edit gives a new digest)."""
    import vyper

    h = hashlib.sha256(f"vyper {vyper.__version__}\n{','.join(names)}\n".encode())
    for path in sorted(VYPER_DIR.rglob("*.vy*")):
        h.update(path.relative_to(VYPER_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def cache_dir() -> Path | None:
    """Where compiled artifacts are kept between processes, keyed by ``source_digest``
    (``DNODE_COMPILE_CACHE=0`` turns it off; ``DNODE_COMPILE_CACHE=DIR`` moves it)."""
    setting = os.environ.get("DNODE_COMPILE_CACHE", "")
    if setting == "0":
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dnode" / "contracts"


def _load_cached(path: Path, names: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
    try:
        art = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(art, dict) or set(art) != set(names):
        return None
    return art


def _store(path: Path, art: dict[str, dict[str, Any]]) -> None:
    """Write atomically (rename), so a concurrent reader sees the old state or the new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(art))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the next process a compilation


def compile_contracts(names: tuple[str, ...] = MAIN_CONTRACTS) -> dict[str, dict[str, Any]]:
    """Compile the deployable contracts from source, once per source digest.

    Compilation takes ~3 s per contract, and every local cluster, test and demo deploys: the
    artifacts are kept in memory and on disk under the digest of the sources and compiler
    version, so an edited source is always recompiled and an unchanged one never twice."""
    key = tuple(names)
    with _lock:
        if key not in _cache:
            where = cache_dir()
            path = where / f"{source_digest(key)}.json" if where else None
            art = _load_cached(path, key) if path else None
            if art is None:
                art = {name: compile_file(VYPER_DIR / f"{name}.vy") for name in names}
                if path:
                    _store(path, art)
            _cache[key] = art
        return _cache[key]


def interface_abis() -> dict[str, list[dict[str, Any]]]:
    """ABI of each consumer interface (contracts/vyper/interfaces/*.vyi), for the manifest."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    bundle = FilesystemInputBundle([VYPER_DIR])
    out: dict[str, list[dict[str, Any]]] = {}
    for name in INTERFACES:
        path = f"interfaces/{name}.vyi"
        try:
            out[name] = compile_from_file_input(
                bundle.load_file(path), input_bundle=bundle, output_formats=["abi"]
            )["abi"]
        except Exception as exc:  # same one-line reporting as compile_file
            raise CompileError(str(VYPER_DIR / path), f"{type(exc).__name__}: {exc}") from exc
    return out

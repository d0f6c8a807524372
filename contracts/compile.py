"""Compile the dnode Vyper sources with the installed compiler (no solc/vyper binary needed)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dnode.contracts.errors import CompileError

VYPER_DIR = Path(__file__).resolve().parent / "vyper"
# deployable contracts; modules (registry/market/court) are pulled in via imports.
# dnode_court is the code-only extension dnode delegates its litigation functions to.
MAIN_CONTRACTS = ("dnode", "dnode_court")
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


def compile_contracts(names: tuple[str, ...] = MAIN_CONTRACTS) -> dict[str, dict[str, Any]]:
    """Compile the deployable contracts once per process (compilation takes ~1s each)."""
    key = tuple(names)
    with _lock:
        if key not in _cache:
            _cache[key] = {name: compile_file(VYPER_DIR / f"{name}.vy") for name in names}
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

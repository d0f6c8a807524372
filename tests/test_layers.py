"""Layers point one way and modules import no cycles (read from the source with ast).

The layers, lowest first: contracts (chain bindings) <- scheduler <- oracle <- node <- cli. A
module may import its own layer and the ones below it, never one above. Every import counts,
also one inside a function (a lazy import is still a dependency), so a cycle cannot hide there.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("contracts", "scheduler", "oracle", "node", "cli")


def module_name(path: Path) -> str:
    parts = ["dnode", *path.relative_to(ROOT).with_suffix("").parts]  # the installed name
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


def resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The project module an import refers to (its longest known prefix), or None."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in mods:
            return cand
        parts.pop()
    return None


def imports_of(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            subs = [f"{prefix}.{a.name}" for a in node.names]
            names = [n for n in subs if n in mods]
            if len(names) < len(subs):
                names.append(prefix)
        for n in names:
            target = resolve(n, mods)
            if target is not None and target != mod:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = source_modules()
    return {m: imports_of(m, p, mods) for m, p in mods.items()}


def layer(mod: str) -> int:
    return LAYERS.index(mod.split(".")[1])  # dnode.<layer>....


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer(t) > layer(m)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_checks_catch_what_they_guard() -> None:
    a, b, c = "dnode.contracts.a", "dnode.node.b", "dnode.cli.c"
    graph = {a: {b}, b: {a}, c: {b}}
    assert upward_imports(graph) == [f"{a} -> {b}"]
    assert cycles(graph) == [[a, b]]


def test_no_upward_imports_between_layers() -> None:
    bad = upward_imports(import_graph())
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)

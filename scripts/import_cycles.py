"""Import cycles between veil's modules, from the source (``ast``; nothing is imported).

An edge ``a -> b`` is any import of ``b`` that runs when ``a`` is imported or called (imports
inside functions count; ``if TYPE_CHECKING:`` blocks do not); importing a submodule also
imports its parent packages. A cycle is a strongly connected component of more than one
module. ``python scripts/import_cycles.py [--top]`` prints them (``--top``: module-level
imports only); tests/test_architecture.py fails when one comes back.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for p in (root / "veil").rglob("*.py"):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _runtime(body: list, deep: bool):
    """The statements that run (``if TYPE_CHECKING:`` blocks never do); ``deep``: also
    those in functions."""
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _runtime(node.orelse, deep)
            continue
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not deep:
            continue
        for name in ("body", "orelse", "finalbody", "handlers"):
            sub = getattr(node, name, None)
            if isinstance(sub, list):
                yield from _runtime(sub, deep)


def import_graph(root: Path = ROOT, deep: bool = True) -> dict[str, set[str]]:
    mods = modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        package = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
        for node in _runtime(ast.parse(path.read_text()).body, deep):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                if full.split(".")[0] == "veil":
                    # a submodule if there is one, else a name defined in the (package) module
                    targets = [resolve(f"{full}.{a.name}") if a.name != "*" else resolve(full) for a in node.names]
            for t in targets:
                if t and t != m:
                    graph[m].add(t)
    for m in graph:  # importing a submodule runs its parent packages first (except m's own)
        for t in list(graph[m]):
            parts = t.split(".")
            for k in range(1, len(parts)):
                parent = ".".join(parts[:k])
                if parent in mods and parent != m and not m.startswith(parent + "."):
                    graph[m].add(parent)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def main() -> None:
    graph = import_graph(deep="--top" not in sys.argv)
    found = cycles(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, {len(found)} cycles")
    for comp in found:
        print(f"  [{len(comp)}] " + ", ".join(comp))
        for a in comp:
            for b in sorted(graph[a] & set(comp)):
                print(f"      {a} -> {b}")


if __name__ == "__main__":
    main()

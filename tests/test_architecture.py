"""The shape of the package: no import cycles (scripts/import_cycles.py), annotating stages
that do not build policy rules, one vocabulary for ``Faces.data``, no attribute probes
between the pipeline and its stages."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from veil.faces import DATA_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imports():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_cycles(imports):
    found = imports.cycles(imports.import_graph(ROOT))
    assert found == [], f"import cycles: {found} (python scripts/import_cycles.py shows the edges)"


def test_the_cycle_finder_sees_cycles_but_not_typing_imports(imports, tmp_path):
    pkg = tmp_path / "veil"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text("x = 1\n\ndef f():\n    from .b import y\n    return y\n")
    (pkg / "b.py").write_text("from .a import x\ny = x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import z\n")
    (pkg / "d.py").write_text("from . import c\nz = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from ..e import w\n")
    (pkg / "sub" / "s.py").write_text("v = 1\n")
    (pkg / "e.py").write_text("from .sub.s import v\nw = v\n")  # runs sub/__init__, which imports e
    found = imports.cycles(imports.import_graph(tmp_path))
    assert sorted(found) == [["veil.a", "veil.b"], ["veil.e", "veil.sub"]]


def test_annotating_stages_do_not_build_rules(imports):
    graph = imports.import_graph(ROOT)
    for m, targets in graph.items():
        if m.startswith(("veil.identify", "veil.depth")):
            assert not any(t.startswith("veil.policy") for t in targets), f"{m} imports the policy: {sorted(targets)}"


def _sources(*skip: str):
    for path in sorted((ROOT / "veil").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in skip:
            yield rel, ast.parse(path.read_text())


def test_faces_data_is_read_and_written_with_the_vocabulary():
    """``faces.data["..."]`` / ``.data.get("...")`` with a string literal: the key belongs in
    veil/faces.py's vocabulary (SOURCE, ID_STATE, DISTANCE_SOURCE, ...)."""
    found = []
    for rel, tree in _sources("veil/faces.py"):
        for node in ast.walk(tree):
            key = None
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "data":
                key = node.slice
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "data" and node.args):
                key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                owner = ast.unparse(node.value if isinstance(node, ast.Subscript) else node.func.value)
                if key.value in DATA_COLUMNS or "faces" in owner.lower():  # other .data dicts are not Faces
                    found.append(f"{rel}:{node.lineno} {owner}[{key.value!r}]")
    assert found == []


def test_the_pipeline_does_not_probe_its_stages():
    """No ``getattr`` in the modules where stages, rules and filters meet: they talk through
    veil.stages.Stage, veil.policy.Rule and the filter protocol."""
    probes = []
    for rel, tree in _sources():
        if rel in ("veil/pipeline.py", "veil/stages.py", "veil/depth/background.py") or rel.startswith("veil/policy/"):
            probes += [f"{rel}:{n.lineno}" for n in ast.walk(tree)
                       if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "getattr"]
    assert probes == []


def test_the_config_does_not_import_the_filters(imports):
    """Filters may read defaults from the config; the config checks colours and strength floors
    from leaf modules (veil.colors, veil.floors), so that never makes a cycle."""
    graph = imports.import_graph(ROOT)
    seen, todo = set(), ["veil.config"]
    while todo:
        for t in graph[todo.pop()] - seen:
            seen.add(t)
            todo.append(t)
    assert not any(m == "veil.render" or m.startswith("veil.render.") for m in seen), sorted(seen)

"""The code base stays ruff-clean (pyproject's [tool.ruff]: line length 120, pycodestyle, pyflakes, isort)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ruff_check_and_format_are_clean():
    pytest.importorskip("ruff")
    for cmd in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        p = subprocess.run([sys.executable, "-m", "ruff", *cmd], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_implicit_rank_promotion_is_an_error_in_the_tests():
    import jax.numpy as jnp
    import pytest

    with pytest.raises(ValueError, match="rank_promotion"):
        jnp.ones((2, 3)) + jnp.ones(3)
    assert (jnp.ones((2, 3)) + jnp.ones(3)[None]).shape == (2, 3)


SYSTEMS = {"dfi", "style", "dtn", "fusion", "reconstruct"}


def _package_imports() -> set[tuple[str, str]]:
    """(importer, imported) between dfijax's top-level parts (module or subpackage names)."""
    import ast

    part = lambda name: name.split(".")[1] if name.count(".") else ""  # noqa: E731
    edges = set()
    for f in (ROOT / "dfijax").rglob("*.py"):
        mod = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "dfijax":
                names = [f"dfijax.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dfijax."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("dfijax.")]
            else:
                continue
            edges |= {(part(mod), part(n)) for n in names if part(n) != part(mod)}
    return edges


def test_import_graph_engine_below_systems_beside_each_other():
    edges = _package_imports()
    assert ("dfi", "invert") in edges and ("fusion", "training") in edges  # the walk sees imports
    up = sorted((a, b) for a, b in edges if b in SYSTEMS and a not in {"", "__init__", "studio"})
    assert not up, f"imports of a system from the engine or from another system: {up}"
    assert ("studio", "dfi") in edges and not [e for e in edges if e[1] == "studio"], "the studio sits on top"


def _module_graph(packages=("dfijax", "experiments", "benchmarks")) -> dict[str, set[str]]:
    """{module: the project modules it imports}, module-level and inside functions alike."""
    import ast

    files = {}
    for pkg in packages:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {m: set() for m in files}
    for m, f in files.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    graph[m].add(full if full in files else node.module)
            elif isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names}
        graph[m] = {t for t in graph[m] if t in files and t != m}
    return graph


def test_no_import_circles():
    graph = _module_graph()
    assert "dfijax.dtn.networks" in graph["dfijax.dtn.faces"]  # the walk sees imports

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return False

    circles = sorted((a, b) for a in graph for b in graph[a] if a < b and reaches(b, a))
    assert not circles, f"modules that import each other (directly or through others): {circles}"


def test_no_experiment_imports_another():
    graph = _module_graph()
    shared = {"experiments", "experiments.runner"}
    crossing = sorted(
        (m, t)
        for m in graph
        if m.startswith("experiments.")
        for t in graph[m]
        if t.startswith("experiments") and t not in shared
    )
    assert not crossing, f"experiments importing other experiments (move what they share into the library): {crossing}"


def test_every_mutant_still_applies(monkeypatch):
    """scripts/mutants.py plants its bugs by exact text: each must still be found once in today's code."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutants", mutants)  # its dataclasses look their module up
    spec.loader.exec_module(mutants)
    assert mutants.check_applies() == [] and len(mutants.MUTANTS) >= 10

"""The layout's rules: `models` never imports `sim`; inside `sim` imports
point down the layers (cli -> app -> report/optimizer/scale -> results/risk -> engine)
and form no cycle, counting imports hidden inside functions; the front door
has what the README shows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sim

ROOT = Path(sim.__file__).resolve().parents[1]
# A subpackage may import those of lower rank only (and itself). The estimators
# (risk) need nothing of the engine, and the engine's importance-sampling pilot
# needs weighted quantiles: risk sits below the engine.
RANK = {"kernel_cache": 0, "risk": 0, "engine": 1, "calibration": 2, "results": 2, "scale": 3, "twin": 3,
        "optimizer": 4, "report": 4, "app": 5, "cli": 6}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule, if it is one
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for folder in ("sim", "models") for p in (ROOT / folder).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_models_never_import_sim():
    for name, deps in graph().items():
        if name.startswith("models"):
            assert not [d for d in deps if d.startswith("sim")], name


def test_imports_point_down_the_layers():
    for name, deps in graph().items():
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "sim":
            continue
        for dep in deps:
            dep_parts = dep.split(".")
            if dep_parts[0] != "sim" or len(dep_parts) < 2 or dep_parts[1] == parts[1]:
                continue
            assert RANK[dep_parts[1]] < RANK[parts[1]], f"{name} imports {dep}"


def test_no_import_cycles_inside_sim():
    edges = {n: {d for d in deps if d != "sim" and n != "sim"} for n, deps in graph().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in edges.get(node, ()):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, node, dep])
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])


def test_front_door():
    assert sorted(sim.__all__) == ["capital", "compare", "load_scenario", "optimize", "run", "run_losses",
                                   "run_twin", "size", "sweep"]
    for name in sim.__all__:
        doc = getattr(sim, name).__doc__ or ""
        assert "Parameters" in doc and "Returns" in doc, name


def test_the_command_line_loads_the_page_library_only_for_the_page():
    """Panel takes seconds to import: every command but `riskpool app` starts without it."""
    code = "import sys, sim.cli.main; print('panel' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr

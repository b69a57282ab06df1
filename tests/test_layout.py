"""The package layout: imports point down. No cycle between attmask_ray's subpackages and
top-level modules (nor data_prep), found by parsing every import with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("attmask_ray", "data_prep")


def unit(module: str) -> str:
    """The layout unit of a module: ``attmask_ray.<subpackage or top-level module>``, or ``data_prep``."""
    parts = module.split(".")
    return "data_prep" if parts[0] == "data_prep" else ".".join(parts[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every project module ``path`` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def graph() -> dict[str, set[str]]:
    """unit -> the units it imports (itself excluded)."""
    edges: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            src = unit(module_name(path))
            targets = {unit(m) for m in imports_of(path)}
            # "from attmask_ray import sweep" names the subpackage: unit() of "attmask_ray.sweep" handles it
            edges.setdefault(src, set()).update(t for t in targets if t != src and t != "attmask_ray")
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_subpackages_and_top_level_modules():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("low, high", [
    ("attmask_ray.checkpoint", "attmask_ray.train"), ("attmask_ray.checkpoint", "attmask_ray.eval"),
    ("attmask_ray.eval", "attmask_ray.train"), ("attmask_ray.eval", "attmask_ray.sweep"),
    ("attmask_ray.train", "attmask_ray.sweep"), ("attmask_ray.results", "attmask_ray.sweep"),
    ("attmask_ray.config", "attmask_ray.train"), ("attmask_ray.report", "attmask_ray.sweep"),
    ("data_prep", "attmask_ray.data"),
])
def test_a_lower_layer_never_imports_a_higher_one(low, high):
    assert high not in graph().get(low, set()), f"{low} imports {high}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

"""The benchmarks share ``benchmarks/lab.py``: none imports the test suite or another benchmark's private names.

Read with ``ast`` (nothing is imported or run), imports inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def import_problems(source: str, siblings: set[str]) -> list[str]:
    """What ``source`` imports that a benchmark must not: ``tests``, or a private name of a sibling in ``siblings``."""
    problems = []
    sibling_aliases: dict[str, str] = {}  # a name bound to a whole sibling module -> that sibling
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tests":
                    problems.append(f"line {node.lineno}: import {alias.name}")
                sibling = parts[1] if parts[0] == "benchmarks" and len(parts) > 1 else parts[0]
                if sibling in siblings:
                    sibling_aliases[alias.asname or alias.name] = sibling
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] == "tests":
                problems.append(f"line {node.lineno}: from {node.module} import ...")
            sibling = parts[1] if parts[0] == "benchmarks" and len(parts) > 1 else parts[0]
            for alias in node.names:
                if sibling in siblings and alias.name.startswith("_"):
                    problems.append(f"line {node.lineno}: from {node.module} import {alias.name} (private)")
                if node.module == "benchmarks" and alias.name in siblings:
                    sibling_aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in sibling_aliases
            and node.attr.startswith("_")
        ):
            problems.append(f"line {node.lineno}: {node.value.id}.{node.attr} (private)")
    return problems


def benchmark_files() -> list[Path]:
    """Every script of ``benchmarks/`` and its lab."""
    return sorted(BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("path", benchmark_files(), ids=lambda path: path.name)
def test_a_benchmark_imports_neither_the_tests_nor_a_sibling_s_private_names(path: Path) -> None:
    siblings = {other.stem for other in benchmark_files()}
    assert import_problems(path.read_text(encoding="utf-8"), siblings) == []


def test_the_lab_is_there_and_every_benchmark_uses_it() -> None:
    files = benchmark_files()
    assert BENCHMARKS / "lab.py" in files
    for path in files:
        if path.name != "lab.py":
            assert "lab" in {
                node.module.split(".")[-1]
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and node.module
            }, path.name


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from tests.servers import free_port", ["line 1: from tests.servers import ..."]),
        ("def f():\n    import tests.sim", ["line 2: import tests.sim"]),
        ("from burst import _private_redis", ["line 1: from burst import _private_redis (private)"]),
        ("from benchmarks.burst import _x", ["line 1: from benchmarks.burst import _x (private)"]),
        ("import burst\nburst._private_redis()", ["line 2: burst._private_redis (private)"]),
        ("from benchmarks import burst as b\nb._x", ["line 2: b._x (private)"]),
        ("from lab import free_port, wait_for\nfrom fleet_scale import manifests", []),
        ("import redis\nfrom spreports import names\nredis._private", []),
    ],
)
def test_the_check_finds_what_it_must_and_nothing_else(source: str, found: list[str]) -> None:
    assert import_problems(source, {"burst", "lab", "fleet_scale"}) == found

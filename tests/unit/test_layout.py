"""One import name per file: pyproject.toml maps tasks/, workers/ and beat_schedule.py into ``spreports``.

The checkout's top level is on ``sys.path`` here (as it is for any Python started in the checkout), so
these tests also prove that the top-level folders cannot be imported under a second name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
MAPPED = {"spreports": ROOT / "spreports", "spreports.tasks": ROOT / "tasks", "spreports.workers": ROOT / "workers"}


def packages_on_disk() -> set[str]:
    found = set()
    for name, folder in MAPPED.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder)
            found.add(".".join([name, *relative.parts]))
    return found


def test_pyproject_maps_the_three_top_level_parts_into_the_package() -> None:
    assert {name: ROOT / path for name, path in SETUPTOOLS["package-dir"].items()} == MAPPED


def test_pyproject_lists_every_package_of_the_tree_and_no_other() -> None:
    assert set(SETUPTOOLS["packages"]) == packages_on_disk()


def test_the_mapped_packages_resolve_to_the_top_level_folders() -> None:
    for name, folder in MAPPED.items():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations is not None
        assert [Path(p).resolve() for p in spec.submodule_search_locations] == [folder]


@pytest.mark.parametrize("second_name", ["tasks", "tasks.documents", "workers", "workers.app", "beat_schedule"])
def test_a_top_level_part_has_no_second_import_name(second_name: str) -> None:
    with pytest.raises(ImportError, match="import it by that name"):
        importlib.import_module(second_name)


def test_the_beat_schedule_has_one_name() -> None:
    from spreports.workers.app import beat_schedule

    schedule = beat_schedule()
    module = importlib.import_module("spreports.beat_schedule")
    assert module.BEAT_SCHEDULE is schedule
    assert Path(module.__file__ or "").resolve() == ROOT / "beat_schedule.py"


def test_the_repository_holds_no_symbolic_links() -> None:
    links = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".venv", ".git", "build", "node_modules"}]
        links += [str(Path(top, name).relative_to(ROOT)) for name in [*dirs, *files] if Path(top, name).is_symlink()]
    assert links == []


def test_the_library_contract_names_every_module_below_the_tasks() -> None:
    above = {"tasks", "workers", "simulator", "beat_schedule"}
    children = {
        f"spreports.{path.stem}"
        for path in (ROOT / "spreports").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    contract = next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["name"].startswith("the library"))
    assert set(contract["source_modules"]) == {c for c in children if c.split(".")[1] not in above}

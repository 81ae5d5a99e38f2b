"""The registry of Redis keys is the only place a key is spelled, it keeps the names deployments hold, and the
README's table of Redis keys says what it says."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import spreports
from spreports import keys
from spreports.keys import FAMILIES

ROOT = Path(__file__).resolve().parents[2]

# The prefixes written by the releases in use: a registry that changed one would strand their data.
DEPLOYED = {
    "spreports:claim:document",
    "spreports:inflight",
    "spreports:inflight:requeued_at",
    "spreports:failed",
    "spreports:metrics:counters",
    "spreports:metrics:document_seconds",
    "spreports:fatal:",
    "spreports:fatal:report:",
    "spreports:fatal-polls:",
    "spreports:cooldown:",
    "spreports:cooldown-started:",
    "spreports:report-request:",
    "spreports:report-made:",
    "spreports:requests:last:",
    "spreports:supersedes:",
    "spreports:requests:period:",
    "spreports:schedules:",
    "spreports:stuck:",
    "spreports:stuck:requeued:",
    "spreports:stuck:replaced-by:",
    "spreports:backfill:",
    "spreports:sweep:queued:",
    "spreports:sweep:stale-parts-full-scan",
    "spreports:token",
    "spreports:ratelimit",
    "spreports:applimit",
    "spreports:type-backoff",
    "spreports:relay:notification:",
    "spreports:relay:message:",
    "spreports:relay:heartbeat:",
}


def test_the_registry_keeps_every_deployed_prefix_and_only_those() -> None:
    assert {family.prefix for family in FAMILIES} == DEPLOYED
    assert len({family.pattern for family in FAMILIES}) == len(FAMILIES)
    assert all(family.pattern.startswith(family.prefix) and family.holds and family.ttl for family in FAMILIES)
    # The README's table has one cell per field: no field may hold the table's separator.
    assert not any("|" in family.pattern + family.holds + family.ttl for family in FAMILIES)


def test_every_family_of_the_module_is_listed() -> None:
    named = {id(value) for value in vars(keys).values() if isinstance(value, keys.KeyFamily)}
    assert named == {id(family) for family in FAMILIES}


def _package_sources() -> Iterator[Path]:
    # The package's own folder and those of the subpackages it maps from elsewhere (tasks/, workers/):
    # every file once, however the checkout reaches it.
    folders = {Path(p).resolve() for p in spreports.__path__}
    for name in ("spreports.tasks", "spreports.workers"):
        spec = importlib.util.find_spec(name)
        folders |= {Path(p).resolve() for p in (spec.submodule_search_locations or [])} if spec else set()
    seen: set[Path] = set()
    for folder in sorted(folders):
        for path in sorted(folder.rglob("*.py")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                yield path.resolve()


def _key_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    # A key starts with "spreports:" and goes on without a space ("spreports: error: ..." is a message).
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith("spreports:") and not text[len("spreports:") :][:1].isspace():
                yield node.lineno, text


def test_no_module_but_the_registry_spells_a_key() -> None:
    registry = Path(keys.__file__).resolve()
    sources = list(_package_sources())
    assert registry in sources and len(sources) > 50
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sources
        if path != registry
        for line, text in _key_literals(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []


def test_the_scan_sees_keys_in_plain_and_formatted_strings() -> None:
    tree = ast.parse('A = "spreports:x:"\nB = f"spreports:y:{z}"\nC = "spreports: error: no"\nD = "not spreports:x"')
    assert [text for _, text in _key_literals(tree)] == ["spreports:x:", "spreports:y:"]


def _readme_table() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Redis keys\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, rule, *body = rows
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["Key", "What it holds", "TTL"]
    assert set(rule) <= set("|-: ")
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in body]
    return [(key.strip("`"), holds, ttl) for key, holds, ttl in cells]


def test_the_readme_table_is_the_registry() -> None:
    table = _readme_table()
    assert [key for key, _, _ in table] == [family.pattern for family in FAMILIES]
    assert [ttl for _, _, ttl in table] == [family.ttl for family in FAMILIES]
    assert [holds for _, holds, _ in table] == [family.holds for family in FAMILIES]


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _durations(text: str) -> set[int]:
    """Every fixed duration a TTL text names ("15 minutes pending; then up to 24 hours" -> {900, 86400})."""
    words = text.replace(";", " ").replace(",", " ").split()
    return {
        int(number) * _UNITS[unit.rstrip("s")]
        for number, unit in pairwise(words)
        if number.isdigit() and unit.rstrip("s") in _UNITS
    }


# Each family with the constants (module.NAME, in seconds or a timedelta) the code sets its keys' TTL from.
SET_BY_CODE = """
FATAL_REASON reports.fatal_ledger.REPORT_REASON_TTL_SECONDS
FATAL_POLLS reports.on_demand.FATAL_POLLS_TTL_SECONDS
REPORT_REQUEST reports.obtain.PENDING_TTL_SECONDS reports.obtain.IN_FLIGHT_SECONDS
REPORT_MADE reports.obtain.MADE_TTL_SECONDS
LAST_REQUEST reports.restatements.RETAINED
SUPERSEDES reports.restatements.RETAINED
SCHEDULES tasks.schedules.SYNC_LOCK_TTL tasks.schedules.SYNC_QUEUED_TTL
STUCK_REQUEUED reports.stuck.PENDING_REPLACEMENT_SECONDS reports.stuck.REQUEUED_TTL_SECONDS
STUCK_REPLACED reports.stuck.PENDING_REPLACEMENT_SECONDS reports.stuck.REQUEUED_TTL_SECONDS
BACKFILL_PROGRESS reports.backfill.PROGRESS_TTL_SECONDS
BACKFILL_QUEUED reports.backfill.REQUEUE_SECONDS
SWEEP_QUEUED reports.sweep.SWEEP_MARK_TTL_SECONDS
STALE_PARTS_FULL_SCAN reports.sweep.STALE_PARTS_FULL_SCAN_SECONDS
TOKEN spapi.tokens.LOCK_TIMEOUT_SECONDS
RELAY_NOTIFICATION workers.relay.receiver.DONE_TTL_SECONDS
RELAY_MESSAGE workers.relay.receiver.DONE_TTL_SECONDS
RELAY_HEARTBEAT workers.relay.process.HEARTBEAT_TTL_SECONDS
"""


def _seconds(dotted: str) -> int:
    module, _, name = f"spreports.{dotted}".rpartition(".")
    value = getattr(importlib.import_module(module), name)
    return int(value.total_seconds() if isinstance(value, timedelta) else value)


def test_the_fixed_ttls_the_registry_names_are_those_the_code_sets() -> None:
    differ = [
        (family, constant, _seconds(constant))
        for family, *constants in (line.split() for line in SET_BY_CODE.strip().splitlines())
        for constant in constants
        if _seconds(constant) not in _durations(getattr(keys, family).ttl)
    ]
    assert differ == []

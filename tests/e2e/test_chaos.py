"""Chaos on real processes, the cheap cases: nothing lost, nothing duplicated, no partial file visible.

Runs the cases of ``benchmarks/chaos.py`` that take a few seconds each (every broker connection closed at
once, expired pre-signed URLs, truncated and mislabelled documents, bursts of duplicate and malformed
notifications) through the runner's own code, with the tasks on Redis (here) and on RabbitMQ
(``test_chaos_rabbitmq.py``):
a private redis-server, moto's SQS, the simulator, a real ``spreports worker`` and a real relay per case.
The costly cases (processes SIGKILLed, Redis restarted or frozen, a 429 storm, an LWA outage, a full disk)
run in the benchmark command only: ``.venv/bin/python benchmarks/chaos.py``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"
# Each recovers within seconds of its fault's end: the retries' backoff (a few seconds), not a claim lapse.
RECOVERY_BOUND_SECONDS = 30.0


def load_runner() -> ModuleType:
    """benchmarks/chaos.py as a module (benchmarks/ is a folder of scripts, not a package)."""
    name = "spreports_chaos_runner"
    if name in sys.modules:
        return sys.modules[name]
    # The script imports its lab as ``lab`` (a script's folder is on its path): here that is the one
    # ``benchmarks.lab`` the tests import too, not a second copy of it.
    sys.modules.setdefault("lab", importlib.import_module("benchmarks.lab"))
    spec = importlib.util.spec_from_file_location(name, RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_cheap_chaos_cases_lose_nothing_duplicate_nothing_and_show_no_partial_file(tmp_path: Path) -> None:
    check_quick_cases("redis", tmp_path)


def check_quick_cases(broker: str, work: Path) -> None:
    """Run the quick cases with the tasks on ``broker``; each stored every document once, whole, soon."""
    chaos = load_runner()
    assert chaos.QUICK == ["broker-disconnect", "expired-urls", "bad-documents", "notification-bursts"]
    rows = chaos.run(chaos.QUICK, work, broker=broker)
    print("\n" + chaos.table(rows))
    for row in rows:
        assert row.expected >= 10, row
        assert not row.lost, (row.case, row.lost)
        assert not row.wrong, (row.case, row.wrong)
        assert not row.duplicated, (row.case, row.duplicated)
        assert not row.partial, (row.case, row.partial)
        assert not row.tmp_left, (row.case, row.tmp_left)
        assert row.stored == row.expected, row
        assert row.recovery_seconds is not None and row.recovery_seconds < RECOVERY_BOUND_SECONDS, row
    # The faults bit: the broker's connections were closed with documents still to store, each case's
    # simulator served all of its faults (the case waited for that), and the bursts case's malformed bodies
    # went to the dead-letter queue.
    rows_by_case = {row.case: row for row in rows}
    [closed] = [note for note in rows_by_case["broker-disconnect"].notes if "connection(s) closed" in note]
    count, stored_then = re.match(r"(\d+) connection\(s\) closed with (\d+) stored", closed).groups()  # type: ignore[union-attr]
    assert int(count) > 0 and int(stored_then) < rows_by_case["broker-disconnect"].expected, closed
    bursts = rows_by_case["notification-bursts"]
    assert any(note.startswith("2 message(s) in the dead-letter queue") for note in bursts.notes), bursts.notes

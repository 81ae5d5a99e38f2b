"""Chaos on real processes, the cheap cases: nothing lost, nothing duplicated, no partial file visible.

Runs the cases of ``benchmarks/chaos.py`` that take a few seconds each (expired pre-signed URLs, truncated
and mislabelled documents, bursts of duplicate and malformed notifications) through the runner's own code:
a private redis-server, moto's SQS, the simulator, a real ``spreports worker`` and a real relay per case.
The costly cases (processes SIGKILLed, Redis restarted or frozen, a 429 storm, an LWA outage, a full disk)
run in the benchmark command only: ``.venv/bin/python benchmarks/chaos.py``.
"""

from __future__ import annotations

import importlib.util
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
    spec = importlib.util.spec_from_file_location(name, RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_cheap_chaos_cases_lose_nothing_duplicate_nothing_and_show_no_partial_file(tmp_path: Path) -> None:
    chaos = load_runner()
    assert chaos.QUICK == ["expired-urls", "bad-documents", "notification-bursts"]
    rows = chaos.run(chaos.QUICK, tmp_path)
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
    # The faults bit: each case's simulator served all of them (the case waited for that), and the bursts
    # case's malformed bodies went to the dead-letter queue.
    [bursts] = [row for row in rows if row.case == "notification-bursts"]
    assert any(note.startswith("2 message(s) in the dead-letter queue") for note in bursts.notes), bursts.notes

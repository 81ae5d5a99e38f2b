"""A user's project with Celery's usual module names (``tasks.py``, ``workers.py``) beside ours still works.

The product is installed under one name, ``spreports``: a worker started from the user's directory
(which both ``python -m`` and ``celery`` put first on ``sys.path``) must import none of the user's
modules. Here they raise when imported, so a worker that touched them would never answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spreports import names
from spreports.settings import Settings
from tests.processes import product_env, stop, wait_for

USER_MODULES = ("tasks", "workers", "beat_schedule")


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A directory holding the user's own ``tasks.py``, ``workers.py`` and ``beat_schedule.py``."""
    project = tmp_path / "project"
    project.mkdir()
    for module in USER_MODULES:
        (project / f"{module}.py").write_text(f'raise ImportError("the user\'s own {module}.py was imported")\n')
    return project


COMMANDS = {
    "celery -A spreports.workers.app worker": ["-m", "celery", "-A", "spreports.workers.app", "worker"],
    "spreports worker": ["-m", "spreports.workers.cli", "worker"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_worker_started_beside_the_users_tasks_and_workers_modules_runs_tasks(
    command: str,
    user_project: Path,
    celery_app,
    settings: Settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    env = product_env({"SPREPORTS_BROKER_URL": str(settings.broker_url), "SPREPORTS_STORAGE__URL": str(tmp_path / "r")})
    args = [*COMMANDS[command], "-c", "1", "-P", "solo", "-n", "user-project@%h", "--loglevel=INFO"]
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=user_project, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:

        def answered() -> bool:
            assert worker.poll() is None, log.read_text()
            return bool(celery_app.control.ping(timeout=1.0, limit=1))  # back at the first reply

        wait_for(answered, timeout=90, interval=0.2)
        assert celery_app.send_task(names.PING, kwargs={"value": "beside"}).get(timeout=60) == "beside"
    finally:
        stop(worker)
    assert "was imported" not in log.read_text()

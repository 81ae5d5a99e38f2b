"""A core install without the data extra: the task does nothing and says which extra once; commands say it in one line."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import pytest
from click.testing import CliRunner

from spreports import names
from spreports.data.extra import EXTRA_HINT, missing_extra
from spreports.task_arguments import ConvertRequest
from spreports.workers.app import celery_config
from spreports.workers.brokers import task_queues


@pytest.fixture
def without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] in ("pyarrow", "duckdb") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.usefixtures("without_pyarrow")
def test_the_task_succeeds_doing_nothing_and_names_the_extra_once(caplog: pytest.LogCaptureFixture) -> None:
    from spreports.tasks import data

    data._told_missing = False
    caplog.set_level(logging.WARNING, logger=data.__name__)
    for _ in range(2):
        assert data.convert_document.run(seller_id="A1SELLER", report_document_id="DOC-1") == {}
    assert [r.getMessage() for r in caplog.records] == [f"documents are not converted to rows here: {EXTRA_HINT}"]


@pytest.mark.usefixtures("without_pyarrow")
def test_rebuild_says_which_extra_in_one_line() -> None:
    from spreports.workers.cli import main

    result = CliRunner().invoke(main, ["data", "rebuild"])
    assert result.exit_code != 0
    assert "spreports data rebuild needs pyarrow, duckdb: install spreports[data]" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_extra_is_empty_where_it_is_installed() -> None:
    assert missing_extra() == []


def test_conversions_have_a_queue_of_their_own_that_every_worker_consumes() -> None:
    config = celery_config_for_test()
    assert config["task_routes"][names.CONVERT_DOCUMENT] == {"queue": names.DATA_QUEUE}
    assert names.DATA_QUEUE in [queue.name for queue in task_queues(amqp=False)]
    assert ConvertRequest.parse(seller_id="A1SELLER", report_document_id="DOC-1").task_kwargs() == {
        "seller_id": "A1SELLER",
        "report_document_id": "DOC-1",
    }


def celery_config_for_test() -> dict[str, Any]:
    from spreports.settings import Settings

    return celery_config(Settings(broker_url="redis://127.0.0.1:1/0"))  # type: ignore[call-arg]

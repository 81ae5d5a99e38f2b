"""The fleet across hosts (``test_fleet.py``) with RabbitMQ as the broker; a file of its own so that the two
brokers' runs go to two pytest workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_fleet import check_fleet


@pytest.mark.timeout(300)
def test_a_fleet_on_rabbitmq_stores_each_document_once_and_recovers_a_host_cut_off_mid_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_fleet("rabbitmq", tmp_path, monkeypatch)

"""The pipeline of ``test_relay_pipeline.py`` with its relay SIGKILLed or its Redis restarted; a file of its own so
that the four disruptions share two pytest workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_relay_pipeline import check_pipeline
from tests.servers import RedisServer


@pytest.mark.timeout(600)
@pytest.mark.parametrize("disruption", ["relay-sigkill", "redis-restart"])
def test_every_done_document_stored_exactly_once_through_kills(
    disruption: str,
    redis_server: RedisServer,
    aws_endpoint: str,
    tmp_path: Path,
) -> None:
    check_pipeline(disruption, redis_server, aws_endpoint, tmp_path)

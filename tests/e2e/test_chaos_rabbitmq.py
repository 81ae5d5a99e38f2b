"""The quick chaos cases with the tasks on RabbitMQ (a vhost of the run's own), the state in Redis.

Same cases and checks as ``test_chaos.py``; a file of its own so that the two brokers' runs go to two
pytest workers. The costly cases run on both brokers in the benchmark command:
``.venv/bin/python benchmarks/chaos.py --broker redis --broker rabbitmq``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_chaos import check_quick_cases
from tests.rabbitmq import rabbitmq_base_url, rabbitmq_problem
from tests.servers import unavailable


@pytest.mark.timeout(240)
def test_cheap_chaos_cases_on_rabbitmq_lose_nothing_duplicate_nothing_and_show_no_partial_file(tmp_path: Path) -> None:
    problem = rabbitmq_problem(rabbitmq_base_url())
    if problem is not None:
        unavailable(problem)
    check_quick_cases("rabbitmq", tmp_path)

"""``spreports check`` warns per Redis role (broker, state) when a crash or restart would lose what it holds,
and when the sweep has nothing to sweep; its warnings show even when a check fails.

Real redis-servers, configured as deployments run them: nothing on disk (``appendonly no``, ``save ""``),
RDB snapshots only (``save 3600 1``: an hour of writes lost on a crash), AOF (``appendonly yes``), as the
broker, as the state Redis, or as both.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from spreports.documents.inflight import InFlight
from spreports.errors import RedisUnavailable
from spreports.simulator import Simulator
from tests.processes import product_env
from tests.servers import RedisServer, redis_server


@pytest.fixture
def deployment(simulator: Simulator, sqs_queue_url: str) -> dict[str, str]:
    """What every other check needs to pass: LWA credentials (the simulator's) and a queue (moto's)."""
    return {**simulator.env(), "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url}


def beat_ran(*urls: str | None) -> None:
    """Beat's requeue task has just run against these Redis servers (those that answer): no warning about it."""
    for url in urls:
        if url and url.startswith("redis"):
            with contextlib.suppress(RedisUnavailable):
                InFlight(redis.Redis.from_url(url)).record_pass()


def check(tmp_path: Path, url: str, deployment: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    beat_ran(url, extra.get("SPREPORTS_REDIS_URL"))
    env = product_env(
        {
            **deployment,
            "SPREPORTS_BROKER_URL": url,
            "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
            "SPREPORTS_SQS__REPORT_TYPES": '["GET_MERCHANT_LISTINGS_ALL_DATA"]',
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    prefix = "spreports: warning: "
    return [line.removeprefix(prefix) for line in result.stderr.splitlines() if line.startswith(prefix)]


def where(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}"


# How a server keeps its data: CONFIG SET values (the servers start with appendonly no, save "").
VOLATILE: dict[str, str] = {}
HOURLY = {"save": "3600 1"}
SNAPSHOTS = {"save": "3600 1 300 100 60 10000"}
BULK_ONLY = {"save": "60 1000"}
AOF = {"appendonly": "yes"}


def configure(server: RedisServer, config: dict[str, str]) -> None:
    client = redis.Redis.from_url(server.url)
    for name, value in config.items():
        client.config_set(name, value)


@pytest.fixture
def servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    with redis_server() as first, redis_server() as second:
        yield first, second


# (broker's config, state's config, or None: the broker is the state Redis) -> the expected warnings, as
# (the role named, what is said) per server; {b} and {s} stand for the broker's and the state's address.
PER_ROLE = {
    "a volatile broker beside a state Redis with AOF": (
        VOLATILE, AOF, [("the broker Redis at {b}", "keeps nothing on disk", "queued tasks are lost")]),
    "a broker with AOF beside a volatile state Redis": (
        AOF, VOLATILE, [("the state Redis at {s}", "keeps nothing on disk", "claims, rate limits")]),
    "hourly snapshots of the broker, a state Redis with AOF": (
        HOURLY, AOF, [("the broker Redis at {b}", "keeps only a snapshot every 3600 s (save 3600 1, appendonly no)",
                       "up to 3600 s of queued tasks lost on a crash")]),
    "both volatile": (
        VOLATILE, VOLATILE, [("the broker Redis at {b}", "keeps nothing on disk", "queued tasks"),
                             ("the state Redis at {s}", "keeps nothing on disk", "claims")]),
    "one Redis for both, hourly snapshots": (
        HOURLY, None, [("the broker and state Redis at {b}", "keeps only a snapshot every 3600 s",
                        "up to 3600 s of queued tasks, claims, rate limits")]),
    "one Redis for both, the usual save points": (
        SNAPSHOTS, None, [("the broker and state Redis at {b}", "keeps only a snapshot every 3600 s "
                           "(save 3600 1 300 100 60 10000, appendonly no)", "up to 3600 s of")]),
    "one Redis for both, snapshots of bulk writes only": (
        BULK_ONLY, None, [("the broker and state Redis at {b}", "keeps only a snapshot every 60 s",
                           "fewer than 1000 writes are not saved at all until more come")]),
    "one Redis for both, volatile": (
        VOLATILE, None, [("the broker and state Redis at {b}", "keeps nothing on disk", "")]),
    "one Redis for both, AOF": (AOF, None, []),
    "both with AOF": (AOF, AOF, []),
    "AOF and snapshots": ({**AOF, **HOURLY}, {**AOF, **SNAPSHOTS}, []),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PER_ROLE))
def test_persistence_is_warned_about_per_redis_role(
    case: str, servers: tuple[RedisServer, RedisServer], tmp_path: Path, deployment: dict[str, str]
) -> None:
    broker_config, state_config, expected = PER_ROLE[case]
    broker, state = servers
    configure(broker, broker_config)
    extra = {}
    if state_config is not None:
        configure(state, state_config)
        extra["SPREPORTS_REDIS_URL"] = state.url
    result = check(tmp_path, broker.url, deployment, **extra)
    assert result.returncode == 0, result.stdout + result.stderr
    found = warnings(result)
    assert len(found) == len(expected), found
    for line, (role, said, lost) in zip(found, expected, strict=True):
        assert line.startswith(role.format(b=where(broker), s=where(state)) + " "), line
        assert said in line and lost in line, line
    assert len(result.stderr.strip().splitlines()) == len(expected)  # nothing but the warnings


def test_a_rabbitmq_broker_leaves_only_the_state_redis_to_warn_about(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path, deployment: dict[str, str]
) -> None:
    from tests.rabbitmq import private_vhost, rabbitmq_base_url, rabbitmq_problem
    from tests.servers import unavailable

    problem = rabbitmq_problem(rabbitmq_base_url())
    if problem is not None:
        unavailable(problem)
    _, state = servers
    configure(state, HOURLY)
    with private_vhost(rabbitmq_base_url()) as amqp_url:
        result = check(tmp_path, amqp_url, deployment, SPREPORTS_REDIS_URL=state.url)
    [warning] = warnings(result)
    assert warning.startswith(f"the state Redis at {where(state)} keeps only a snapshot every 3600 s"), warning
    assert "queued tasks" not in warning


def test_warnings_show_even_when_a_check_fails(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path, deployment: dict[str, str]
) -> None:
    broker, state = servers
    configure(state, HOURLY)
    # No LWA client: the credentials check fails; the broker keeps nothing; the sweep has nothing to sweep.
    broken = {key: value for key, value in deployment.items() if key != "SPREPORTS_LWA__CLIENT_ID"}
    result = check(tmp_path, broker.url, broken, SPREPORTS_REDIS_URL=state.url, SPREPORTS_SQS__REPORT_TYPES="[]")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAIL  credentials: no LWA client" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == ["warning", "warning", "warning", "error"], lines
    assert lines[0].startswith(f"spreports: warning: the broker Redis at {where(broker)} keeps nothing on disk")
    assert lines[1].startswith(f"spreports: warning: the state Redis at {where(state)} keeps only a snapshot")
    assert lines[2].startswith("spreports: warning: the 15-minute sweep has no report types")
    assert lines[3].startswith("spreports: error: no LWA client")


def test_a_redis_that_does_not_answer_fails_its_check_and_warns_about_the_one_that_does(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path, deployment: dict[str, str]
) -> None:
    broker, state = servers
    broker.stop()
    result = check(tmp_path, broker.url, deployment, SPREPORTS_REDIS_URL=state.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAIL  broker:" in result.stdout
    [warning] = warnings(result)
    assert warning.startswith(f"the state Redis at {where(state)} keeps nothing on disk"), warning
    assert "Traceback" not in result.stderr


def test_a_sweep_without_report_types_is_a_warning(tmp_path: Path, deployment: dict[str, str]) -> None:
    with redis_server() as server:
        redis.Redis.from_url(server.url).config_set("appendonly", "yes")
        result = check(tmp_path, server.url, deployment, SPREPORTS_SQS__REPORT_TYPES="[]")
        assert result.returncode == 0
        [warning] = result.stderr.strip().splitlines()
        assert warning.startswith("spreports: warning: the 15-minute sweep has no report types to look for")

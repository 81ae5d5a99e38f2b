"""The unit tier's guard: a unit test that opens a socket or starts a process fails, whatever catches errors."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import threading

import pytest

from tests.unit.conftest import IsolationGuard

REFUSED = pytest.fail.Exception


def test_a_socket_is_refused() -> None:
    with pytest.raises(REFUSED, match="may not open a socket"):
        socket.socket()
    with pytest.raises(REFUSED, match="may not open a socket"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_the_refusal_is_not_an_error_a_library_would_swallow() -> None:
    try:
        socket.socket()
    except Exception:  # what redis-py, requests or botocore catch
        pytest.fail("the refusal was caught as an ordinary exception")
    except BaseException as exc:
        assert isinstance(exc, REFUSED)


def test_a_process_is_refused() -> None:
    with pytest.raises(REFUSED, match="may not start a process"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with pytest.raises(REFUSED, match="may not start a process"):
        multiprocessing.get_context("spawn").Process(target=print).start()


def test_a_thread_of_the_test_is_guarded_too(no_sockets_or_processes: IsolationGuard) -> None:
    caught: list[BaseException] = []

    def sneaky() -> None:
        try:
            socket.socket()
        except BaseException as exc:  # the refusal, caught here only to look at it
            caught.append(exc)

    thread = threading.Thread(target=sneaky, name="sneaky")
    thread.start()
    thread.join()
    assert len(caught) == 1 and isinstance(caught[0], REFUSED)
    # Remembered too: a thread's failure alone would not fail the test, the guard's teardown does.
    assert len(no_sockets_or_processes.refused) == 1
    assert "[thread sneaky]" in no_sockets_or_processes.refused[0]
    no_sockets_or_processes.refused.clear()  # seen; the teardown would fail this test otherwise


def test_the_fixtures_that_bring_servers_are_refused(request: pytest.FixtureRequest) -> None:
    for name in ("redis_url", "redis_client", "aws_endpoint", "simulator", "celery_worker"):
        with pytest.raises(REFUSED, match=f"may not use the fixture '{name}'"):
            request.getfixturevalue(name)


def test_each_xdist_worker_has_a_redis_database_of_its_own() -> None:
    from tests.conftest import worker_redis_url

    url = "redis://127.0.0.1:6379/15"
    assert worker_redis_url(url, None) == url  # not under xdist: REDIS_URL as it is
    databases = [worker_redis_url(url, f"gw{n}") for n in range(4)]
    assert databases == [f"redis://127.0.0.1:6379/{db}" for db in (15, 14, 13, 12)]  # counting down, never 0
    assert worker_redis_url("redis://:pw@h:6379", "gw1") == "redis://:pw@h:6379/15"  # no database: 0, wrapping
    with pytest.raises(pytest.UsageError):
        worker_redis_url(url, "gw16")


def test_an_earlier_tests_garbage_may_still_clean_up() -> None:
    opened: list[socket.AddressFamily] = []

    class Leftover:
        def __del__(self) -> None:
            with socket.socket() as sock:  # what a finalizer of another tier's object may do
                opened.append(sock.family)

    Leftover()  # collected at once: its finalizer is let through
    assert opened == [socket.AF_INET]

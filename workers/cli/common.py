"""What every command shares: the error boundary, the settings and logging, the start-up checks.

The boundary (:func:`handle_errors`) is the one place where failures become words: any error of the
product's tree, and Redis or the broker failing (also when a library wraps that failure in an error
of its own, ``raise ... from``), end the command with one ``spreports: error: ...`` line and exit
status 2; anything else is a bug and keeps its traceback.

This module loads with ``spreports --help``, so it imports click and nothing else of the product at
the top: the rest loads when a command runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pathlib import Path

    from spreports.settings import Settings

#: The commands that run until stopped: an embedded Redis they start stays for the fleet's other processes.
#: Every other command is one-shot, and stops the embedded Redis it had to start when it ends.
LONG_RUNNING_COMMANDS = frozenset({"worker", "beat", "flower", "relay", "metrics", "redis", "demo", "simulator"})


class UserError(click.ClickException):
    """An expected failure: printed as one line, exit status 2."""

    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"spreports: error: {self.format_message()}", err=True)


@contextmanager
def usage_in_one_line(around: click.Context | None = None) -> Iterator[None]:
    """Turn click's usage errors (a missing or unknown option, a bad value) into one line with the hint.

    Click prints three (the usage, a hint, the error): a script's log or a terminal gets one
    ``spreports: error: ...`` line like every other mistake, with the same exit status 2. A command
    group given nothing still shows its help. ``around``: the context running the command, for the
    hint of an error that names none (an option missing its value).
    """
    try:
        yield
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # click >= 8.2: a group given nothing shows its help
            raise
        message = " ".join(exc.format_message().split()).rstrip(".")
        path = exc.ctx.command_path if exc.ctx is not None else _path_of(around)
        raise UserError(f"{message} (see '{path} --help')") from None


def _path_of(context: click.Context | None) -> str:
    if context is None:
        return "spreports"
    return " ".join(filter(None, [context.command_path, context.invoked_subcommand]))


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn the product's errors, and Redis or the broker failing, into a :class:`UserError`."""
    try:
        yield
    except Exception as exc:
        message = _describe(exc)
        if message is None:
            raise
        raise UserError(message) from None


def _describe(exc: BaseException) -> str | None:
    """One line for an expected failure, or None for a bug.

    Follows the explicit causes (``raise X from exc``): Celery's result backend, for one, gives up on
    a lost Redis with a ``RuntimeError`` raised from redis-py's ``ConnectionError``.
    """
    from spreports.errors import SpreportsError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, click.ClickException):
            return None  # the command's own words (UserError, a bad option): click shows them
        if isinstance(current, SpreportsError):
            return str(current)
        message = _describe_foreign(current)
        if message is not None:
            return message
        current = current.__cause__
    return None


def _describe_foreign(exc: BaseException) -> str | None:
    # Only libraries already loaded can have raised: looking them up imports nothing at start-up.
    redis = sys.modules.get("redis")
    if redis is not None and isinstance(exc, redis.RedisError):
        from spreports.redis_errors import translate

        return str(translate(exc, "running the command"))
    kombu = sys.modules.get("kombu.exceptions")
    if kombu is not None and isinstance(exc, kombu.OperationalError):
        # kombu's text may hold the broker URL with its password: the type is enough.
        return f"the broker cannot be reached ({type(exc).__name__})"
    return None


def command_settings() -> Settings:
    """The process's settings (a bad value raises :class:`SettingsError`), with logging set up.

    Every command logs in the fleet's one format (:func:`spreports.logs.configure`: text or JSON,
    ``SPREPORTS_LOG_FORMAT``), to stderr; Celery's processes keep it when they set up their own handlers.
    """
    from spreports import logs, redaction
    from spreports.settings import load_settings as load

    settings = load()
    logs.configure(settings.log_level, settings.log_format)
    # urllib3 logs request lines (pre-signed URLs) at DEBUG; the redacting filter is the second guard.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger().level))
    # botocore logs signed requests at DEBUG and chatter ("Found credentials ...") at INFO.
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))
    redaction.install()
    return settings


def check_redis(settings: Settings) -> str:
    """Return the state Redis's URL once it answers (starting the embedded one when none is configured).

    A one-shot command that had to start the embedded Redis stops it (and removes the data directory
    it created, unless tasks wait there) when the command ends (:func:`release_embedded_redis`).
    """
    from spreports.connection import ping
    from spreports.workers.embedded_redis import EmbeddedRedis

    if settings.state_redis_url:  # the Redis of the product's state (the broker, unless it is RabbitMQ)
        ping(settings.state_redis_url)
        return settings.state_redis_url
    return EmbeddedRedis(settings.data_dir).ensure_running()


def _top_command(context: click.Context) -> str | None:
    """The name of the ``spreports`` command running (``reports`` for ``spreports reports download``)."""
    while context.parent is not None and context.parent.parent is not None:
        context = context.parent
    return context.info_name if context.parent is not None else None


def release_embedded_redis(command: str | None) -> None:
    """As a one-shot ``command`` ends, however it ends, stop the embedded Redis it started (see
    :func:`spreports.workers.embedded_redis.release_started`); a long-running one leaves it for the fleet."""
    if command in LONG_RUNNING_COMMANDS:
        return
    # Loaded only if the command used it: nothing to stop otherwise, and nothing to import.
    embedded = sys.modules.get("spreports.workers.embedded_redis")
    if embedded is not None:
        embedded.release_started()


def check_storage(settings: Settings) -> None:
    """Prove the storage (a directory or an S3 bucket) accepts writes."""
    from spreports.errors import SpreportsError, StorageError
    from spreports.storage import open_storage

    try:
        open_storage(settings).check_writable()
    except StorageError:
        raise
    except SpreportsError as exc:
        # E.g. S3 unreachable or refusing the probe: still one line naming the setting.
        raise StorageError(f"SPREPORTS_STORAGE__URL: {settings.storage.url} cannot be used: {exc}") from None


def require_local_extra(command: str, *modules: str) -> None:
    """Fail with one line naming the extra to install when a command's optional libraries are missing."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"{command} needs the local extra ({', '.join(missing)} not installed): pip install 'spreports[local]'"
        )


def check_writable_file(path: Path, what: str) -> None:
    """Prove a file the command will write (e.g. beat's schedule) can be created where it is named."""
    import tempfile

    from spreports.errors import StorageError

    directory = path.parent
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise StorageError(f"{what} {path} cannot be written in {directory}: {exc.strerror or exc}") from None


def stop_signal() -> threading.Event:
    """An event that SIGTERM or SIGINT sets: wait on it with :func:`wait_for`.

    Handlers of its own, whatever dispositions the process inherited: a command started as a background
    job of a non-interactive shell (``cmd &`` in a script) inherits SIGINT ignored, and would otherwise
    never see Ctrl-C's signal. Installed before the command says it runs, so that no signal sent on
    reading that line finds the default action.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def wait_for(stop: threading.Event) -> None:
    """Block until ``stop`` is set (woken every second: a signal's handler always gets to run)."""
    while not stop.wait(1.0):
        pass

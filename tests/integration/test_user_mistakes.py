"""Every user mistake, in every command and file, is one ``spreports: error:`` line and exit status 2.

Run as users run them: the real command (``python -m spreports.workers.cli``) in a directory of its
own. Families, each a table holding the values that once crashed a command with a traceback (exit 1)
or were taken silently, and the boundaries around them:

- dates and durations: ``reports backfill --from 9999-12-31``, 1900 to 2026 (1,535 windows), the
  window count a backfill may queue without ``--yes``, a naive ``--start``, ``every`` and ``window``
  of the schedules file;
- files: a schedules or sellers file that is not UTF-8 or nests 20,000 arrays deep;
- flags and usage errors: ``metrics --port 99999``, a negative ``--timeout``, and click's own usage
  errors (three lines before: now one, with the hint);
- ``.env``: binary, not UTF-8, NUL bytes, JSON nested 20,000 deep.

Where a value is accepted, the command goes on to the broker, a closed port: its one line says so,
which proves the value passed. Also here: ``metrics`` listens on loopback unless given ``--host``, and
a one-shot command stops the embedded Redis it started.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from spreports.connection import connect
from spreports.report_types import rules_for
from spreports.workers.embedded_redis import EmbeddedRedis
from tests.integration.embedded_helpers import redis_servers_in, short_directory
from tests.processes import product_env, spreports_process, wait_for
from tests.servers import free_port

SALES = "GET_SALES_AND_TRAFFIC_REPORT"
US = "ATVPDKIKX0DER"
BACKFILL = ("reports", "backfill", "--type", SALES, "-m", US)
REQUEST = ("reports", "request", "--type", SALES, "-m", US)
# Where an accepted value leads: the broker (the state Redis too), a closed port.
ACCEPTED = "does not answer: ConnectionError"


def spreports(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", *args],
        env=product_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``spreports: error:`` line of a command that exited 2 with no traceback."""
    shown = f"exit {result.returncode}, stderr:\n{result.stderr[-2000:]}"
    assert result.returncode == 2, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spreports: error: "), shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A seller and a broker that does not answer: nothing a command does can reach a server."""
    (tmp_path / "cwd").mkdir()
    closed = f"127.0.0.1:{free_port()}"
    return {
        "SPREPORTS_SELLER_ID": "A1MISTAKES",
        "SPREPORTS_BROKER_URL": f"redis://{closed}/0",
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
    }


# --- dates and durations -----------------------------------------------------------------------------

# A backfill of SALES from 2025-01-01 to (and with) these days: two windows, and three.
LONGEST = rules_for(SALES).max_window
LAST_OF_2 = str(date(2025, 1, 1) + 2 * LONGEST - timedelta(days=1))
LAST_OF_3 = str(date(2025, 1, 1) + 2 * LONGEST)
DATES: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
    "from 9999-12-31": ((*BACKFILL, "--from", "9999-12-31", "--to", "9999-12-31"), {},
                        "Invalid value for '--from': '9999-12-31' is out of range"),
    "to 9999-12-31": ((*BACKFILL, "--from", "2025-01-01", "--to", "9999-12-31"), {},
                      "Invalid value for '--to': '9999-12-31' is out of range"),
    "from 1900": ((*BACKFILL, "--from", "1900-01-01", "--to", "2026-01-01"), {},
                  "Invalid value for '--from': '1900-01-01' is out of range"),
    "from 1999-12-31": ((*BACKFILL, "--from", "1999-12-31", "--to", "2000-01-05"), {}, "is out of range"),
    "to 2100-01-01": ((*BACKFILL, "--from", "2025-01-01", "--to", "2100-01-01"), {}, "is out of range"),
    "naive --from": ((*BACKFILL, "--from", "2025-01-01T00:00:00", "--to", "2025-01-05"), {},
                     "'2025-01-01T00:00:00' has no time zone offset"),
    "not a date": ((*BACKFILL, "--from", "2025-02-30", "--to", "2025-03-05"), {}, "is not an ISO 8601 date"),
    "2000 to 2026": ((*BACKFILL, "--from", "2000-01-01", "--to", "2026-01-01"), {},
                     "more than SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS (100) allows: check --from and --to, "
                     "or add --yes"),
    "one window more than allowed": ((*BACKFILL, "--from", "2025-01-01", "--to", LAST_OF_3),
                                     {"SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS": "2"},
                                     "the backfill is 3 windows of GET_SALES_AND_TRAFFIC_REPORT, more than"),
    "as many windows as allowed": ((*BACKFILL, "--from", "2025-01-01", "--to", LAST_OF_2),
                                   {"SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS": "2"}, ACCEPTED),
    "more windows, with --yes": ((*BACKFILL, "--from", "2025-01-01", "--to", LAST_OF_3,
                                  "--yes"), {"SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS": "2"}, ACCEPTED),
    "naive --start": ((*REQUEST, "--start", "2025-01-01T00:00:00"), {},
                      "Invalid value for '--start': '2025-01-01T00:00:00' has no time zone offset"),
    "naive --end": ((*REQUEST, "--end", "2025-01-01T00:00"), {}, "Invalid value for '--end'"),
    "--start 9999": ((*REQUEST, "--start", "9999-12-31T00:00:00Z"), {}, "is out of range"),
    "aware --start": ((*REQUEST, "--start", "2025-01-01T00:00:00-08:00", "--timeout", "5"), {}, ACCEPTED),
}  # fmt: skip
REQUESTS_ENTRY = f'[[requests]]\nreport_type = "{SALES}"\nmarketplace_ids = ["{US}"]\n'
FILE_DURATIONS = {
    'every = "P99999999999D"': "request #1 (GET_SALES_AND_TRAFFIC_REPORT): every: period 'P99999999999D' is longer "
    "than 366 days",
    'every = "P1D"\nwindow = "last 99999999999 days"': "request #1 (GET_SALES_AND_TRAFFIC_REPORT): window: window "
    "'last 99999999999 days' is longer than 366 days",
    'every = "P367D"': "every: period 'P367D' is longer than 366 days",
    'every = "P1D"\nwindow = "last 367 days"': "window: window 'last 367 days' is longer than 366 days",
}


@pytest.mark.parametrize("case", list(DATES))
def test_dates_out_of_range_are_one_line(case: str, env: dict[str, str], tmp_path: Path) -> None:
    args, extra, expected = DATES[case]
    line = one_error_line(spreports(*args, env={**env, **extra}, cwd=tmp_path / "cwd"))
    assert expected in line, line


@pytest.mark.parametrize("entry", list(FILE_DURATIONS))
def test_durations_of_the_schedules_file_are_bounded(entry: str, env: dict[str, str], tmp_path: Path) -> None:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(f"{REQUESTS_ENTRY}{entry}\n")
    result = spreports("schedules", "list", env={**env, "SPREPORTS_SCHEDULES_FILE": str(schedules)}, cwd=tmp_path)
    line = one_error_line(result)
    assert line.startswith(f"spreports: error: SPREPORTS_SCHEDULES_FILE: {schedules}: request #1 ({SALES}): "), line
    assert line.endswith(FILE_DURATIONS[entry]), line


# --- files -------------------------------------------------------------------------------------------

FILES: dict[str, tuple[bytes, str]] = {
    "not UTF-8": ("# Café\n".encode("cp1252"), "is not UTF-8 text (byte 0xe9 on line 1)"),
    "UTF-16": ('prune = true\n'.encode("utf-16"), "is not UTF-8 text (byte 0xff on line 1)"),
    "NUL bytes": (b"prune = true\n\x00\n", "is not a text file (it holds NUL bytes)"),
    "20,000 arrays deep": (b"x = " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nests tables or arrays more than 16"),
    "17 levels": (b"x = " + b"[" * 16 + b"]" * 16 + b"\n", "nests tables or arrays more than 16 levels deep"),
    "over 1 MiB": (b"#" * (2**20 + 1), "is larger than 1 MiB"),
}  # fmt: skip


@pytest.mark.parametrize("variable", ["SPREPORTS_SCHEDULES_FILE", "SPREPORTS_SELLERS_FILE"])
@pytest.mark.parametrize("kind", list(FILES))
def test_a_hostile_file_is_one_line_naming_it(kind: str, variable: str, env: dict[str, str], tmp_path: Path) -> None:
    content, expected = FILES[kind]
    path = tmp_path / "hostile.toml"
    path.write_bytes(content)
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(f'{REQUESTS_ENTRY}every = "P1D"\n')
    files = {"SPREPORTS_SCHEDULES_FILE": str(schedules), variable: str(path)}
    line = one_error_line(spreports("schedules", "list", env={**env, **files}, cwd=tmp_path / "cwd"))
    assert line.startswith(f"spreports: error: {variable}: {path} {expected}"), line


# --- flags and usage errors --------------------------------------------------------------------------

USAGE: dict[str, tuple[tuple[str, ...], str]] = {
    "unknown command": (("reprots",), "No such command 'reprots' (see 'spreports --help')"),
    "unknown top option": (("--bogus",), "No such option '--bogus' (see 'spreports --help')"),
    "unknown subcommand": (("reports", "fetch"), "No such command 'fetch' (see 'spreports reports --help')"),
    "unknown option": (("config", "--yaml"), "No such option '--yaml' (see 'spreports config --help')"),
    "extra argument": (("config", "extra"), "Got unexpected extra argument (extra) (see 'spreports config --help')"),
    "missing option": (("reports", "request"), "Missing option '--type' (see 'spreports reports request --help')"),
    "missing value": (("reports", "download", "--document"), "Option '--document' requires an argument"),
    "bad choice": (("reports", "list", "--status", "LOST"), "Invalid value for '--status': 'LOST' is not one of"),
    "not an integer": (("metrics", "--port", "http"), "Invalid value for '--port': 'http' is not a valid integer"),
    "missing backfill dates": (("reports", "backfill", "--type", SALES), "Missing option '--from'"),
    "bad limit": (("reports", "list", "--limit", "0"), "Invalid value for '--limit': 0 is not in the range x>=1"),
    "redis verb": (("redis", "restart"), "No such command 'restart'. Did you mean 'start'? (see 'spreports redis --help')"),
    "schedules verb": (("schedules", "delete"), "No such command 'delete' (see 'spreports schedules --help')"),
    "metrics --port 99999": (("metrics", "--port", "99999"), "Invalid value for '--port': 99999 is not in the range"),
    "metrics --port 65536": (("metrics", "--port", "65536"), "65536 is not in the range 0<=x<=65535"),
    "metrics --port -1": (("metrics", "--port", "-1"), "-1 is not in the range 0<=x<=65535"),
    "negative --timeout": (("reports", "download", "--document", "D1", "--timeout", "-5"),
                           "Invalid value for '--timeout': -5 is out of range: give more than 0 up to 2592000"),
    "zero --timeout": (("reports", "download", "--document", "D1", "--timeout", "0"), "0 is out of range"),
    "nan --timeout": ((*REQUEST, "--timeout", "nan"), "nan is out of range"),
    "inf --timeout": ((*BACKFILL, "--from", "2025-01-01", "--to", "2025-01-02", "--timeout", "inf"),
                      "inf is out of range"),
    "31-day --timeout": ((*REQUEST, "--timeout", "2678400"), "2678400 is out of range"),
    "--days nan": (("reports", "list", "--days", "nan"), "Invalid value for '--days': nan is out of range"),
    "--days 91": (("reports", "list", "--days", "91"), "91 is out of range: give from 0 up to 90"),
    "--parallel 16": ((*BACKFILL, "--from", "2025-01-01", "--to", "2025-01-02", "--parallel", "16"),
                      "Invalid value for '--parallel': 16 is not in the range 1<=x<=15"),
    "--parallel 0": ((*BACKFILL, "--from", "2025-01-01", "--to", "2025-01-02", "--parallel", "0"),
                     "0 is not in the range 1<=x<=15"),
    "demo --timeout -1": (("demo", "--timeout", "-1"), "Invalid value for '--timeout': -1 is out of range"),
    "simulator --speed nan": (("simulator", "--port", "0", "--speed", "nan"),
                              "Invalid value for '--speed': nan is out of range: give from 0.001 up to 1000000"),
    "simulator --speed inf": (("simulator", "--port", "0", "--speed", "inf"), "inf is out of range"),
    "simulator --speed 0": (("simulator", "--port", "0", "--speed", "0"), "0 is out of range"),
    "the longest --timeout": (("reports", "download", "--document", "D1", "--timeout", "2592000"), ACCEPTED),
    "metrics --port 65535": (("metrics", "--port", "65535", "--once"), ACCEPTED),
}  # fmt: skip


@pytest.mark.parametrize("case", list(USAGE))
def test_flags_and_usage_errors_are_one_line_with_the_hint(case: str, env: dict[str, str], tmp_path: Path) -> None:
    args, expected = USAGE[case]
    line = one_error_line(spreports(*args, env=env, cwd=tmp_path / "cwd"))
    assert expected in line, line


def test_a_group_given_nothing_still_shows_its_help(env: dict[str, str], tmp_path: Path) -> None:
    result = spreports("reports", env=env, cwd=tmp_path / "cwd")
    assert "Commands:" in result.stdout + result.stderr and "backfill" in result.stdout + result.stderr
    assert "spreports: error" not in result.stderr


# --- .env --------------------------------------------------------------------------------------------

DOTENV: dict[str, tuple[bytes, str]] = {
    "binary": (bytes(range(256)) * 8, "spreports: error: .env is not"),
    "not UTF-8": (b"SPREPORTS_LOG_LEVEL=INFO\n\xff\xfe\n", "spreports: error: .env is not UTF-8 text (byte 0xff on line 2)"),
    "NUL byte": (b"AWS_PROFILE=a\x00b\n", "spreports: error: .env is not a text file (it holds NUL bytes)"),
    "JSON 20,000 deep": (b"SPREPORTS_SQS__REPORT_TYPES=" + b"[" * 20_000 + b"]" * 20_000 + b"\n",
                         "spreports: error: SPREPORTS_SQS__REPORT_TYPES (in .env): nests arrays or objects more than 16"),
    "over 1 MiB": (b"#" * (2**20 + 1), "spreports: error: .env is larger than 1 MiB"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(DOTENV))
def test_a_hostile_dotenv_is_one_line(kind: str, env: dict[str, str], tmp_path: Path) -> None:
    content, expected = DOTENV[kind]
    (tmp_path / "cwd" / ".env").write_bytes(content)
    line = one_error_line(spreports("config", env=env, cwd=tmp_path / "cwd"))
    assert line.startswith(expected), line


def test_a_deep_json_variable_is_one_line_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    deep = {"SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": "[" * 20_000 + "]" * 20_000}
    line = one_error_line(spreports("config", env={**env, **deep}, cwd=tmp_path / "cwd"))
    assert (
        line == "spreports: error: SPREPORTS_DOCUMENTS__ALLOWED_HOSTS: nests arrays or objects more than 16 levels deep"
    )


# --- metrics on loopback, and no embedded Redis left behind -----------------------------------------


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp shows them) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_metrics_listens_on_loopback_unless_given_an_address(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    with spreports_process("metrics", "--port", str(port), env={"SPREPORTS_BROKER_URL": redis_url}, cwd=tmp_path):
        addresses = wait_for(lambda: listening_addresses(port), timeout=60)
    assert addresses == ["0100007F"], addresses  # 127.0.0.1 only
    log = (tmp_path / "metrics.log").read_text()
    assert f"serving the fleet's metrics on http://127.0.0.1:{port}/metrics" in log, log


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with short_directory() as directory:
        yield directory


def test_a_backfill_stops_the_embedded_redis_it_started(short_dir: Path) -> None:
    # No broker: the backfill starts the embedded Redis, queues its task for a worker to come, and ends.
    result = spreports(*BACKFILL, "--from", "2025-01-01", "--to", "2025-01-02", "--no-wait",
                       env={"SPREPORTS_SELLER_ID": "A1MISTAKES"}, cwd=short_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 window(s)" in result.stderr
    assert redis_servers_in(short_dir) == [], "the backfill left its embedded Redis running"
    # Its task waits on disk for the worker that starts the embedded Redis again.
    assert connect(EmbeddedRedis(short_dir / ".spreports").ensure_running()).llen("control") == 1

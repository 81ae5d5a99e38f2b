"""The parsers of what users write are bounded: a hostile value is one clear error, never a crash.

Families (each a table, with the values of the report that found them and the boundaries around them):
durations and dates of the schedules file (``every``, ``window``, times), files (the schedules and
sellers files: encoding, NUL bytes, size, nesting), and ``.env`` (the same, plus JSON values nested too
deep). The command line's values are in ``test_cli_values.py``; the real command (one line, exit status
2) in ``tests/integration/test_user_mistakes.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spreports.errors import SettingsError
from spreports.schedules import load_schedules_file
from spreports.schedules.periods import parse_every, parse_window
from spreports.settings import MAX_FILE_BYTES, MAX_FILE_DEPTH, load_settings, read_sellers_file

# --- durations and dates -----------------------------------------------------------------------------

EVERY = {
    "P1D": timedelta(days=1),
    "PT5M": timedelta(minutes=5),
    "P366D": timedelta(days=366),  # the longest
    "PT8784H": timedelta(days=366),
    "PT527040M": timedelta(days=366),
}
EVERY_REFUSED = {
    "P99999999999D": "longer than 366 days",  # overflowed timedelta
    "P367D": "longer than 366 days",
    "PT8785H": "longer than 366 days",
    "PT527041M": "longer than 366 days",
    "P999999D": "longer than 366 days",
    "P1000000D": "longer than 366 days",
    "P" + "9" * 5000 + "D": "longer than 366 days",  # int() of it would fail on Python's digit limit
    "PT4M": "shorter than 5 minutes",
    "P0D": "shorter than 5 minutes",
    "P1W": "unknown period",
}


@pytest.mark.parametrize(("text", "expected"), EVERY.items())
def test_every_in_range(text: str, expected: timedelta) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize(("text", "error"), EVERY_REFUSED.items(), ids=[t[:20] for t in EVERY_REFUSED])
def test_every_out_of_range_is_one_short_error(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as refused:
        parse_every(text)
    assert len(str(refused.value)) < 200


WINDOWS = {
    "previous day": timedelta(days=1),
    "last 366 days": timedelta(days=366),
    "last 52 weeks": timedelta(weeks=52),
    "last 8784 hours": timedelta(days=366),
    "P366D": timedelta(days=366),
}
WINDOWS_REFUSED = {
    "last 99999999999 days": "longer than 366 days",  # overflowed timedelta
    "last 367 days": "longer than 366 days",
    "last 53 weeks": "longer than 366 days",
    "last 8785 hours": "longer than 366 days",
    "last 999999 weeks": "longer than 366 days",
    "last " + "9" * 5000 + " minutes": "longer than 366 days",
    "P99999999999D": "window 'P99999999999D' is longer than 366 days",
    "P367D": "longer than 366 days",
    "last 0 days": "empty",
    "last -1 days": "unknown window",
}


@pytest.mark.parametrize(("text", "expected"), WINDOWS.items())
def test_window_in_range(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize(("text", "error"), WINDOWS_REFUSED.items(), ids=[t[:24] for t in WINDOWS_REFUSED])
def test_window_out_of_range_is_one_short_error(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as refused:
        parse_window(text)
    assert len(str(refused.value)) < 200


REQUEST = '[[requests]]\nreport_type = "GET_SALES_AND_TRAFFIC_REPORT"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
SCHEDULE = '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
FILE_DURATIONS = {
    'every = "P99999999999D"': "request #1 (GET_SALES_AND_TRAFFIC_REPORT): every: period 'P99999999999D' is longer",
    'every = "P1D"\nwindow = "last 99999999999 days"': "window: window 'last 99999999999 days' is longer than 366",
    'every = "P367D"': "every: period 'P367D' is longer than 366 days",
}
FILE_TIMES = {
    "9999-12-31T00:00:00Z": "next_report_creation_time: is out of range",
    "2100-01-01T00:00:00Z": "next_report_creation_time: is out of range",
    "1999-12-31T23:59:59Z": "next_report_creation_time: is out of range",
    "0001-01-01T00:00:00+00:00": "next_report_creation_time: is out of range",
}


@pytest.mark.parametrize(("entry", "error"), FILE_DURATIONS.items())
def test_the_schedules_file_names_the_entry_of_an_unbounded_duration(entry: str, error: str, tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(f"{REQUEST}{entry}\n")
    with pytest.raises(SettingsError, match="SPREPORTS_SCHEDULES_FILE") as refused:
        load_schedules_file(path)
    assert error in str(refused.value)


@pytest.mark.parametrize(("moment", "error"), FILE_TIMES.items())
def test_the_schedules_file_bounds_its_times(moment: str, error: str, tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(f'{SCHEDULE}period = "P1D"\nnext_report_creation_time = "{moment}"\n')
    with pytest.raises(SettingsError, match=error):
        load_schedules_file(path)
    path.write_text(f'{SCHEDULE}period = "P1D"\nnext_report_creation_time = "2099-12-31T23:59:59Z"\n')
    assert load_schedules_file(path).schedules[0].next_report_creation_time == datetime(2099, 12, 31, 23, 59, 59,
                                                                                        tzinfo=UTC)  # fmt: skip


# --- files -------------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A TOML value of arrays ``depth`` deep (the document's own table is one level more)."""
    return "[" * depth + "]" * depth


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "latin-1": ("# café\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 on line 1)"),
    "utf-16": ("x = 1\n".encode("utf-16"), "is not UTF-8 text (byte 0xff on line 1)"),
    "binary": (bytes(range(256)), "is not"),
    "NUL": (b'x = "a\x00b"\n', "is not a text file (it holds NUL bytes)"),
    "20000 deep": (f"x = {nested(20_000)}\n".encode(), f"nests tables or arrays more than {MAX_FILE_DEPTH} levels"),
    "1000 deep": (f"x = {nested(1000)}\n".encode(), f"nests tables or arrays more than {MAX_FILE_DEPTH} levels"),
    "deepest+1": (f"x = {nested(MAX_FILE_DEPTH)}\n".encode(), f"more than {MAX_FILE_DEPTH} levels"),
    "inline tables": (("x = " + "{a = " * 20_000 + "1" + "}" * 20_000 + "\n").encode(), "levels deep"),
    "too large": (b"# " + b"x" * MAX_FILE_BYTES + b"\n", "is larger than 1 MiB"),
}


@pytest.mark.parametrize("reader", ["schedules", "sellers"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_hostile_settings_file_is_one_line_naming_it(kind: str, reader: str, tmp_path: Path) -> None:
    content, error = BAD_FILES[kind]
    path = tmp_path / f"{reader}.toml"
    path.write_bytes(content)
    variable = "SPREPORTS_SCHEDULES_FILE" if reader == "schedules" else "SPREPORTS_SELLERS_FILE"
    with pytest.raises(SettingsError) as refused:
        load_schedules_file(path) if reader == "schedules" else read_sellers_file(path)
    message = str(refused.value)
    assert message.startswith(f"{variable}: {path}") and error in message, message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize("reader", ["schedules", "sellers"])
def test_nesting_up_to_the_bound_and_a_file_of_the_largest_size_are_read(reader: str, tmp_path: Path) -> None:
    path = tmp_path / f"{reader}.toml"
    # The document's table, then arrays: MAX_FILE_DEPTH levels in all.
    deepest = f"x = {nested(MAX_FILE_DEPTH - 1)}\n"
    largest = "x = 1\n# " + "x" * (MAX_FILE_BYTES - 9) + "\n"
    for content in (deepest, largest):
        path.write_text(content)
        assert len(path.read_bytes()) <= MAX_FILE_BYTES, len(path.read_bytes())
        with pytest.raises(SettingsError) as refused:
            load_schedules_file(path) if reader == "schedules" else read_sellers_file(path)
        # Read, then refused for what it holds (an unknown key, no sellers), not for its form.
        assert "nests" not in str(refused.value) and "larger" not in str(refused.value)
        assert ("unknown key" if reader == "schedules" else "needs a [sellers.<sellerId>] table") in str(refused.value)


# --- .env --------------------------------------------------------------------------------------------

BAD_DOTENV: dict[str, tuple[bytes, str]] = {
    "binary": (bytes(range(256)) * 4, "is not"),
    "latin-1": ("SPREPORTS_SELLER_ID=Aé\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 on line 1)"),
    "second line": (b"SPREPORTS_SELLER_ID=A1\n\xff\xfe\n", "is not UTF-8 text (byte 0xff on line 2)"),
    "NUL": (b"AWS_PROFILE=a\x00b\n", "is not a text file (it holds NUL bytes)"),
    "too large": (b"# " + b"x" * MAX_FILE_BYTES + b"\n", "is larger than 1 MiB"),
    "deep JSON": (f"SPREPORTS_SQS__REPORT_TYPES={nested(20_000)}\n".encode(),
                  "SPREPORTS_SQS__REPORT_TYPES (in {env}): nests arrays or objects more than 16 levels deep"),
}  # fmt: skip


@pytest.fixture
def no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("SPREPORTS_", "AWS_")):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_settings_in_environment")
@pytest.mark.parametrize("kind", list(BAD_DOTENV))
def test_a_hostile_dotenv_is_one_line_naming_it(kind: str, tmp_path: Path) -> None:
    content, error = BAD_DOTENV[kind]
    env_file = tmp_path / ".env"
    env_file.write_bytes(content)
    with pytest.raises(SettingsError) as refused:
        load_settings(env_file=env_file)
    message = str(refused.value)
    assert error.format(env=env_file) in message and str(env_file) in message, message
    assert "\n" not in message and len(message) < 300


@pytest.mark.usefixtures("no_settings_in_environment")
def test_a_deep_json_value_in_the_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPREPORTS_DOCUMENTS__ALLOWED_HOSTS", nested(20_000))
    with pytest.raises(SettingsError) as refused:
        load_settings(env_file=tmp_path / "absent.env")
    assert str(refused.value) == (
        f"SPREPORTS_DOCUMENTS__ALLOWED_HOSTS: nests arrays or objects more than {MAX_FILE_DEPTH} levels deep"
    )
    # A value nested as deep as a list of lists may be is only JSON, and reaches its own validation.
    monkeypatch.setenv("SPREPORTS_DOCUMENTS__ALLOWED_HOSTS", nested(2))
    with pytest.raises(SettingsError, match="SPREPORTS_DOCUMENTS__ALLOWED_HOSTS") as invalid:
        load_settings(env_file=tmp_path / "absent.env")
    assert "nests" not in str(invalid.value)

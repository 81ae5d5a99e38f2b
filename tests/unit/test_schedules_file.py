"""The schedules file's checks (one line naming the entry), periods and windows, and the fleet's memory in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from spreports.errors import SettingsError
from spreports.schedules import load_schedules_file
from spreports.schedules.due_requests import due_requests, release
from spreports.schedules.periods import (
    PERIOD_LENGTHS,
    add_months,
    parse_every,
    parse_window,
    period_start,
    same_phase,
    upcoming,
)
from spreports.schedules.runs import SyncState
from spreports.spapi.models import PERIODS

LISTINGS = '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "P1D"\n'
SALES = (
    '[[requests]]\nreport_type = "GET_SALES_AND_TRAFFIC_REPORT"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nevery = "P1D"\n'
)


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    return load_schedules_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            LISTINGS.replace('"P1D"', '"P2W"'),
            r"schedule #1 \(GET_MERCHANT_LISTINGS_ALL_DATA\): period: Input should be",
        ),
        (
            LISTINGS.replace('marketplace_ids = ["ATVPDKIKX0DER"]\n', ""),
            r"schedule #1 \(GET_MERCHANT_LISTINGS_ALL_DATA\): marketplace_ids: Field required",
        ),
        (
            LISTINGS.replace('["ATVPDKIKX0DER"]', "[]"),
            r"schedule #1 \(GET_MERCHANT_LISTINGS_ALL_DATA\): marketplace_ids: List should have at least 1",
        ),
        (
            LISTINGS + LISTINGS,
            r"schedule #2 \(GET_MERCHANT_LISTINGS_ALL_DATA\): duplicates schedule #1 \(GET_MERCHANT_LISTINGS_ALL_DATA\)",
        ),
        (
            LISTINGS + "next_report_creation_time = 2025-01-01T02:00:00\n",
            r"schedule #1 \(GET_MERCHANT_LISTINGS_ALL_DATA\): next_report_creation_time: has no time zone offset",
        ),
        (
            LISTINGS + 'next_report_creation_time = "2025-01-01T02:00:00"\n',
            "next_report_creation_time: has no time zone offset",
        ),
        (
            LISTINGS + 'next_report_creation_time = "tomorrow"\n',
            "next_report_creation_time: is not an ISO 8601 date-time",
        ),
        (
            LISTINGS.replace("GET_MERCHANT_LISTINGS_ALL_DATA", "GET_SALES_AND_TRAFFIC_REPORT"),
            r"schedule #1 \(GET_SALES_AND_TRAFFIC_REPORT\): Amazon does not allow report schedules .*\[\[requests\]\] entry",
        ),
        (
            SALES.replace('"P1D"', '"fortnightly"'),
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): every: unknown period 'fortnightly'",
        ),
        (SALES.replace('every = "P1D"\n', ""), r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): every: Field required"),
        (
            SALES.replace('marketplace_ids = ["ATVPDKIKX0DER"]\n', ""),
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): marketplace_ids: Field required",
        ),
        (
            SALES + 'window = "last 31 days"\n',
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): window: 'last 31 days' is longer than the 30 days GET_SALES_AND_TRAFFIC_REPORT allows",
        ),
        (SALES + 'window = "since forever"\n', r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): window: unknown window"),
        (
            SALES + SALES.replace('"P1D"', '"PT12H"'),
            r"request #2 \(GET_SALES_AND_TRAFFIC_REPORT\): duplicates request #1",
        ),
        (
            SALES + 'colour = "blue"\n',
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): colour: Extra inputs are not permitted",
        ),
        (
            SALES + 'restate = "3 days"\n',
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): restate: unknown duration '3 days': use an ISO 8601 duration",
        ),
        (
            SALES + 'restate = "PT1M"\n',
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): restate: unknown duration 'PT1M'",
        ),
        (
            SALES + 'restate = "P90D"\n',
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): restate: 'P90D' is not shorter than the 90 days Amazon keeps",
        ),
        (
            SALES + "restate = 3\n",
            r"request #1 \(GET_SALES_AND_TRAFFIC_REPORT\): restate: Input should be a valid string",
        ),
        ('prune = "yes"\n' + LISTINGS, "prune: must be true or false"),
        ("[[schedule]]\n", r"schedule: unknown key; the file holds prune, \[\[schedules\]\] and \[\[requests\]\]"),
        ("schedules = 3\n", r"schedules: write each entry as a \[\[schedules\]\] table"),
        ("[[schedules]\n", "is not valid TOML"),
    ],
)
def test_bad_file_fails_with_one_line_naming_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected) as failure:
        _load(tmp_path, text)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"SPREPORTS_SCHEDULES_FILE: {tmp_path / 'schedules.toml'}")


def test_entries_for_other_sellers_are_not_duplicates(tmp_path: Path) -> None:
    one = LISTINGS + 'sellers = ["A1"]\n'
    loaded = _load(tmp_path, one + one.replace('["A1"]', '["A2"]'))
    assert len(loaded.schedules) == 2
    with pytest.raises(SettingsError, match="duplicates"):
        _load(tmp_path, one + LISTINGS)  # no sellers: every seller, A1 too


def test_request_entries(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, LISTINGS + SALES + 'window = "previous day"\nreport_options = { dateGranularity = "DAY" }\n'
    )
    [request] = loaded.requests
    assert loaded.report_types() == ["GET_MERCHANT_LISTINGS_ALL_DATA", "GET_SALES_AND_TRAFFIC_REPORT"]
    day = datetime(2025, 3, 10, tzinfo=UTC)
    assert request.data_window(day) == (day - timedelta(days=1), day)
    assert request.every_length == timedelta(days=1)


def test_periods() -> None:
    assert set(PERIOD_LENGTHS) | {"P1M"} == set(PERIODS)
    first = datetime(2025, 1, 1, 2, tzinfo=UTC)
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert upcoming(first, "P1D", now) == datetime(2025, 3, 11, 2, tzinfo=UTC)
    assert upcoming(first, "P7D", now) == datetime(2025, 3, 12, 2, tzinfo=UTC)
    assert upcoming(now + timedelta(hours=1), "P1D", now) == now + timedelta(hours=1)
    assert upcoming(datetime(2025, 1, 31, tzinfo=UTC), "P1M", now) == datetime(2025, 3, 31, tzinfo=UTC)
    assert upcoming(datetime(2025, 1, 31, tzinfo=UTC), "P1M", datetime(2025, 2, 3, tzinfo=UTC)) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert add_months(datetime(2024, 12, 31, tzinfo=UTC), 2) == datetime(2025, 2, 28, tzinfo=UTC)
    assert same_phase(first, first + timedelta(days=40, milliseconds=300), "P1D")
    assert not same_phase(first, first + timedelta(days=40, hours=1), "P1D")
    assert same_phase(first, first + timedelta(hours=3), "PT1H")
    assert same_phase(datetime(2025, 1, 5, 2, tzinfo=UTC), datetime(2025, 4, 5, 2, tzinfo=UTC), "P1M")


def test_every_and_window_syntax() -> None:
    assert parse_every("PT15M") == timedelta(minutes=15)
    assert parse_every("p7d") == timedelta(days=7)
    for bad in ("PT1M", "P1W", "daily", "P0D"):
        with pytest.raises(ValueError):
            parse_every(bad)
    assert parse_window("previous day") == timedelta(days=1)
    assert parse_window("last 7 days") == timedelta(days=7)
    assert parse_window("Last  12 hours") == timedelta(hours=12)
    assert parse_window("previous week") == timedelta(days=7)
    assert parse_window("P3D") == timedelta(days=3)
    monday = datetime(2025, 3, 10, tzinfo=UTC)
    assert period_start(monday + timedelta(days=2, hours=5), timedelta(days=7)) == monday
    assert period_start(monday + timedelta(hours=5, minutes=7), timedelta(hours=1)) == monday + timedelta(hours=5)


def test_sync_lock_is_exclusive_and_released_on_error() -> None:
    state = SyncState(fakeredis.FakeRedis())
    with state.lock(timedelta(minutes=1)) as held:
        assert held is not None
        with state.lock(timedelta(minutes=1)) as second:
            assert second is None
        assert held.renew()
    with pytest.raises(RuntimeError), state.lock(timedelta(minutes=1)) as held:
        assert held is not None
        raise RuntimeError("a sync failing half-way")
    with state.lock(timedelta(minutes=1)) as again:
        assert again is not None


def test_a_lapsed_lock_is_not_released_by_its_old_holder() -> None:
    client = fakeredis.FakeRedis()
    state = SyncState(client)
    with state.lock(timedelta(minutes=1)) as held:
        assert held is not None
        client.set(state.lock_key, "another holder's token")  # ours lapsed, another sync took it
        assert not held.renew()
    assert client.get(state.lock_key) == b"another holder's token"


def test_sync_due() -> None:
    state = SyncState(fakeredis.FakeRedis())
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert state.due("a", now, hour) == "never ran"
    state.record_applied("a", now)
    assert state.due("a", now + timedelta(minutes=59), hour) is None
    assert state.due("b", now + timedelta(minutes=1), hour) == "file changed"
    assert state.due("a", now + hour, hour) == "period"
    assert state.mark_queued(timedelta(minutes=1))
    assert not state.mark_queued(timedelta(minutes=1))
    state.clear_queued()
    assert state.mark_queued(timedelta(minutes=1))


def test_request_entries_fire_once_per_period_per_seller(tmp_path: Path) -> None:
    client = fakeredis.FakeRedis()
    entries = _load(tmp_path, SALES + 'window = "last 7 days"\n').requests
    now = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
    first = list(due_requests(client, entries, ["A1", "A2"], now))
    assert [(d.seller_id, d.period_start) for d in first] == [
        ("A1", now.replace(hour=0, minute=0)),
        ("A2", now.replace(hour=0, minute=0)),
    ]
    kwargs = first[0].task_kwargs()
    assert kwargs["data_start_time"].startswith("2025-03-03T00:00:00") and kwargs["data_end_time"].startswith(
        "2025-03-10T00:00:00"
    )
    assert kwargs["seller_id"] == "A1" and kwargs["marketplace_ids"] == ["ATVPDKIKX0DER"]
    # Later in the same period, or from a restarted beat (nothing in memory): nothing.
    assert list(due_requests(client, entries, ["A1", "A2"], now + timedelta(hours=8))) == []
    release(client, first[1])  # A2's request could not be queued: the next check makes it
    assert [d.seller_id for d in due_requests(client, entries, ["A1", "A2"], now)] == ["A2"]
    assert len(list(due_requests(client, entries, ["A1", "A2"], now + timedelta(days=1)))) == 2


@pytest.mark.parametrize(
    ("text", "length"), [("P3D", timedelta(days=3)), ("PT72H", timedelta(hours=72)), ("p1d", timedelta(days=1))]
)
def test_restate_is_an_iso_8601_duration(tmp_path: Path, text: str, length: timedelta) -> None:
    [request] = _load(tmp_path, SALES + f'restate = "{text}"\n').requests
    assert request.restate_after == length
    [plain] = _load(tmp_path, SALES).requests
    assert plain.restate_after is None and plain.key == request.key  # restating does not change what is requested


def test_a_periods_restatement_is_due_once_per_seller_restate_after_its_first_pull(tmp_path: Path) -> None:
    client = fakeredis.FakeRedis()
    entries = _load(tmp_path, SALES + 'window = "previous day"\nrestate = "P3D"\n').requests
    day = datetime(2025, 3, 10, tzinfo=UTC)
    first = list(due_requests(client, entries, ["A1", "A2"], day + timedelta(hours=1)))
    assert [(d.seller_id, d.restated) for d in first] == [("A1", False), ("A2", False)]
    # Each later day's first pull, and nothing restated before three days have passed.
    for days in (1, 2):
        due = list(due_requests(client, entries, ["A1", "A2"], day + timedelta(days=days, hours=1)))
        assert [d.restated for d in due] == [False, False]
    due = list(due_requests(client, entries, ["A1", "A2"], day + timedelta(days=3, minutes=1)))
    restated = [d for d in due if d.restated]
    assert [(d.seller_id, d.period_start) for d in restated] == [("A1", day), ("A2", day)]
    kwargs = restated[0].task_kwargs()
    assert kwargs["restated"] is True and kwargs["data_end_time"].startswith("2025-03-10T00:00:00")
    assert kwargs["data_start_time"].startswith("2025-03-09T00:00:00")
    assert "restated" not in first[0].task_kwargs()  # a first pull's arguments are as they always were
    assert restated[0].name != first[0].name  # its tasks do not collide with the first pull's
    # Later that day, or from a restarted beat: the restatement is not made again.
    assert not [d for d in due_requests(client, entries, ["A1", "A2"], day + timedelta(days=3, hours=9)) if d.restated]
    release(client, restated[1])  # A2's restatement could not be queued: the next check makes it
    again = [d for d in due_requests(client, entries, ["A1", "A2"], day + timedelta(days=3, hours=10)) if d.restated]
    assert [(d.seller_id, d.period_start) for d in again] == [("A2", day)]


def test_a_period_never_pulled_is_not_restated(tmp_path: Path) -> None:
    client = fakeredis.FakeRedis()
    entries = _load(tmp_path, SALES + 'restate = "P3D"\n').requests
    # An entry added today: the periods of three days ago were never pulled, so there is nothing to restate.
    due = list(due_requests(client, entries, ["A1"], datetime(2025, 3, 13, 1, tzinfo=UTC)))
    assert [(d.restated, d.period_start) for d in due] == [(False, datetime(2025, 3, 13, tzinfo=UTC))]

"""Retro windows: a sprint (inclusive last day, naive = UTC, equal-length baseline) and a deployment (the bake
period after it against the one before), with errors that name the field; deployments on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from store.database import Database
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.retro.window import RetroInputError, deployment_window, sprint_window

DEPLOYED_AT = datetime(2024, 1, 10, 14, 30, tzinfo=UTC)


def test_an_end_date_covers_its_last_day_and_a_datetime_end_is_exclusive() -> None:
    window = sprint_window(datetime(2024, 1, 1), date(2024, 1, 14), sprint_id="sprint-1")
    assert (window.start, window.end) == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 15, tzinfo=UTC))
    assert (window.baseline_start, window.baseline_end) == (datetime(2023, 12, 18, tzinfo=UTC), window.start)
    assert (window.kind, window.sprint_id, window.version) == ("sprint", "sprint-1", None)
    assert sprint_window(date(2024, 1, 1), date(2024, 1, 14)) == sprint_window(
        datetime(2024, 1, 1), datetime(2024, 1, 15)
    )


def test_an_end_with_a_time_of_day_is_exact_and_offsets_become_utc() -> None:
    window = sprint_window(datetime(2024, 1, 1, 12), datetime(2024, 1, 2, 6))
    assert window.end == datetime(2024, 1, 2, 6, tzinfo=UTC)
    assert window.baseline_start == datetime(2023, 12, 31, 18, tzinfo=UTC)
    berlin = timezone(timedelta(hours=1))
    local = sprint_window(datetime(2024, 1, 1, tzinfo=berlin), datetime(2024, 1, 8, tzinfo=berlin))
    assert local.start == datetime(2023, 12, 31, 23, tzinfo=UTC)  # local midnight, in UTC
    assert local.end == datetime(2024, 1, 7, 23, tzinfo=UTC)  # the end of the local 7th
    assert local.start.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        (datetime(2024, 1, 14), datetime(2024, 1, 1), "end", "before or when it starts"),
        (datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 12), "end", "before or when it starts"),
        (datetime(2023, 1, 1), datetime(2024, 1, 3), "end", "at most 366 days"),
        ("2024-01-01", datetime(2024, 1, 14), "start", "date or a datetime"),
        (datetime(1970, 1, 2), datetime(1970, 1, 9), "start", "before 1970"),
    ],
)
def test_bad_sprints_name_the_field(start: object, end: object, field: str, words: str) -> None:
    with pytest.raises(RetroInputError) as caught:
        sprint_window(start, end)  # type: ignore[arg-type]
    assert caught.value.field == field and words in caught.value.message
    assert isinstance(caught.value, ValueError) and str(caught.value).startswith(f"{field}: ")


def test_a_year_long_sprint_is_allowed() -> None:
    window = sprint_window(date(2024, 1, 1), date(2024, 12, 31))
    assert window.end - window.start == timedelta(days=366)


def _deploy(database: Database, version: str, at: datetime) -> None:
    event = CanonicalEvent(f"deploy-{version}-{at.isoformat()}", "track", "deployment", at, at,
                           anonymous_id="system", properties={"version": version, "service": "api"})  # fmt: skip
    EventIngestor(database).ingest([event])


def test_deployment_window_finds_the_deployment(database: Database) -> None:
    _deploy(database, "v2.0.0", DEPLOYED_AT)
    _deploy(database, "v2.0.0", DEPLOYED_AT + timedelta(days=3))  # a redeploy: the first one counts
    with database.read() as connection:
        window = deployment_window(connection, "v2.0.0", bake_hours=24, now=DEPLOYED_AT + timedelta(days=5))
    assert (window.kind, window.version, window.deployed_at) == ("deployment", "v2.0.0", DEPLOYED_AT)
    assert (window.start, window.end) == (DEPLOYED_AT, DEPLOYED_AT + timedelta(hours=24))
    assert (window.baseline_start, window.baseline_end) == (DEPLOYED_AT - timedelta(hours=24), DEPLOYED_AT)


def test_deployment_window_errors_name_the_field(database: Database) -> None:
    _deploy(database, "v2.0.0", DEPLOYED_AT)
    later = DEPLOYED_AT + timedelta(days=5)
    with database.read() as connection:
        with pytest.raises(RetroInputError) as unknown:
            deployment_window(connection, "v9.9.9", now=later)
        assert unknown.value.field == "version" and "v9.9.9" in unknown.value.message
        with pytest.raises(RetroInputError) as baking:
            deployment_window(connection, "v2.0.0", bake_hours=48, now=DEPLOYED_AT + timedelta(hours=30))
        assert baking.value.field == "bake_hours" and "has not passed yet" in baking.value.message
        for bad in (0, -1, True, "24", 24 * 367):
            with pytest.raises(RetroInputError) as bake:
                deployment_window(connection, "v2.0.0", bake_hours=bad, now=later)  # type: ignore[arg-type]
            assert bake.value.field == "bake_hours"
        with pytest.raises(RetroInputError) as empty:
            deployment_window(connection, "  ", now=later)
        assert empty.value.field == "version"


def test_deployment_window_with_a_given_time_needs_no_event(database: Database) -> None:
    naive = datetime(2024, 2, 1, 9)
    with database.read() as connection:
        window = deployment_window(
            connection, "v3", bake_hours=12, deployed_at=naive, now=naive + timedelta(hours=12)
        )
    assert window.deployed_at == naive.replace(tzinfo=UTC) and window.end == window.deployed_at + timedelta(
        hours=12
    )

"""The tracking plan's metrics on a small hand-built dataset, on SQLite and PostgreSQL; the seed's snippet.

Window [2026-03-01, 2026-03-08) (7 days); previous window [2026-02-22, 2026-03-01).
Users: a1, a2 agency; s1 solo_podcaster; n1 podcast_network (active only in the previous window).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from feedbackloop import MetricCategory, MetricsTracker
from feedbackloop.settings import Settings
from store.database import Database
from tests.helpers import store_snapshot
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.metrics.compute import metric_report, window_summaries
from tools.metrics.tracking import MetricInputError
from tools.window import Window

END = datetime(2026, 3, 8, tzinfo=UTC)
WINDOW = Window.last_days(7, END)
_counter = iter(range(10_000))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def track(user: str, name: str, when: str, **properties: Any) -> CanonicalEvent:
    moment = at(when)
    return CanonicalEvent(
        f"m{next(_counter)}", "track", name, moment, moment, user_id=user, properties=properties
    )


def identify(user: str, persona: str, when: str = "2026-02-01T00:00:00+00:00") -> CanonicalEvent:
    moment = at(when)
    return CanonicalEvent(f"m{next(_counter)}", "identify", "identify", moment, moment, user_id=user,
                          properties={"persona": persona})  # fmt: skip


DATASET = [
    identify("a1", "agency"), identify("a2", "agency"), identify("s1", "solo_podcaster"),
    identify("n1", "podcast_network", "2026-02-23T00:00:00+00:00"),
    # time to value
    track("a1", "user_signed_up", "2026-03-01T00:00:00+00:00"),
    track("a1", "report_generated", "2026-03-01T01:00:00+00:00", report_id="g1"),   # 3,600 s
    track("a2", "user_signed_up", "2026-02-28T23:00:00+00:00"),
    track("a2", "report_generated", "2026-03-02T00:00:00+02:00", report_id="g2"),   # 22:00Z → 82,800 s
    track("s1", "user_signed_up", "2026-02-20T00:00:00+00:00"),
    track("s1", "report_generated", "2026-03-08T00:00:00+00:00", report_id="g3"),   # on the end edge: excluded
    # report accuracy
    track("a1", "report_sent", "2026-03-02T00:00:00+00:00", report_id="r1"),
    track("a1", "report_corrected", "2026-03-05T00:00:00+00:00", report_id="r1"),  # within 7 days → inaccurate
    track("a1", "report_sent", "2026-03-03T00:00:00+00:00", report_id="r2"),
    track("a1", "report_corrected", "2026-03-11T00:00:00+00:00", report_id="r2"),  # 8 days later → accurate
    track("s1", "report_sent", "2026-03-07T23:59:59+00:00", report_id="r3"),       # accurate
    track("s1", "report_sent", "2026-03-08T00:00:00+00:00", report_id="r4"),       # end edge: excluded
    track("s1", "report_sent", "2026-02-25T00:00:00+00:00", report_id="r5"),       # accurate, decided 03-04
    track("a2", "report_sent", "2026-02-28T12:00:00+00:00", report_id="r6"),
    track("a2", "report_corrected", "2026-03-01T00:00:00+00:00", report_id="r6"),  # inaccurate, decided 03-01
    # renewals
    track("a1", "campaign_ended", "2026-02-20T00:00:00+00:00", campaign_id="c1"),
    track("a1", "sponsor_renewed", "2026-03-02T00:00:00+00:00", campaign_id="c1"),  # success decided 03-02
    track("s1", "campaign_ended", "2026-02-16T00:00:00+00:00", campaign_id="c2"),   # failure decided 03-02
    track("a2", "campaign_ended", "2026-02-10T00:00:00+00:00", campaign_id="c3"),   # failure decided 02-24 (prev)
    # errors and support
    track("a1", "error_occurred", "2026-03-03T00:00:00+00:00", feature="report_generation"),
    track("a1", "error_occurred", "2026-03-04T00:00:00+00:00", feature="report_generation"),
    track("s1", "error_occurred", "2026-03-01T00:00:00+00:00", feature="dashboard"),  # start edge: included
    track("s1", "support_ticket_opened", "2026-03-05T00:00:00+00:00", ticket_id="t1"),
    track("n1", "error_occurred", "2026-02-24T00:00:00+00:00", feature="dashboard"),
]  # fmt: skip


@pytest.fixture
def loaded(database: Database) -> Database:
    EventIngestor(database).ingest(DATASET)
    return database


def report(database: Database, metric: str, **options: Any) -> Any:
    with database.read() as connection:
        return metric_report(connection, metric, WINDOW, **options)


def test_time_to_value_by_persona(loaded: Database) -> None:
    result = report(loaded, "time_to_value")
    overall = result.overall.current
    assert (overall.n, overall.mean) == (2, pytest.approx((3600 + 82800) / 2))
    assert (overall.p50, overall.p90) == (pytest.approx(3600), pytest.approx(82800))  # nearest rank of 2
    assert set(result.personas) == {"agency"}
    assert result.personas["agency"].current.n == 2
    assert result.overall.previous.value is None and result.overall.previous.reason
    assert result.overall.change is None and result.overall.p_value is None


def test_explicit_time_to_value_replaces_the_event_derived_value(loaded: Database) -> None:
    tracker = MetricsTracker(settings=Settings(database_url=loaded.url))
    asyncio.run(tracker.track_time_to_value(user_id="a2", persona_segment="agency", time_seconds=5000,
                                            observed_at=at("2026-03-04T00:00:00+00:00")))  # fmt: skip
    asyncio.run(tracker.track_time_to_value(user_id="x1", persona_segment="solo_podcaster", time_seconds=1200,
                                            observed_at=at("2026-03-03T00:00:00+00:00")))  # fmt: skip
    result = report(loaded, "time_to_value")
    # values 1,200 (x1), 3,600 (a1), 5,000 (a2 explicit; its 82,800 derived is dropped)
    assert result.overall.current.n == 3
    assert result.overall.current.mean == pytest.approx((1200 + 3600 + 5000) / 3)
    assert (result.overall.current.p50, result.overall.current.p90) == (3600, 5000)
    assert result.personas["agency"].current.mean == pytest.approx(4300)
    assert result.personas["solo_podcaster"].current.mean == pytest.approx(1200)


def test_report_accuracy_decided_when_known(loaded: Database) -> None:
    # Decided in the window: r1 inaccurate (corrected 03-05), r6 inaccurate (corrected 03-01, start edge),
    # r5 accurate (sent 02-25, no correction by 03-04). Not yet decided: r2 (accurate on 03-10), r3 (03-14).
    result = report(loaded, "report_accuracy")
    assert (result.overall.current.n, result.overall.current.value) == (3, pytest.approx(1 / 3))
    assert result.personas["agency"].current.value == pytest.approx(0.0)
    assert result.personas["solo_podcaster"].current.value == pytest.approx(1.0)
    low, high = result.overall.current.rate_ci
    assert 0 <= low < 1 / 3 < high <= 1
    daily = {p.day.isoformat(): p.n for p in result.overall.daily if p.n}
    assert daily == {"2026-03-01": 1, "2026-03-04": 1, "2026-03-05": 1}


def test_renewal_success_decided_when_known(loaded: Database) -> None:
    result = report(loaded, "renewal_success")
    assert (result.overall.current.n, result.overall.current.value) == (2, pytest.approx(0.5))
    assert result.personas["agency"].current.value == pytest.approx(1.0)
    assert result.personas["solo_podcaster"].current.value == pytest.approx(0.0)
    assert (result.overall.previous.n, result.overall.previous.value) == (1, pytest.approx(0.0))  # c3


def test_error_rate_and_support_incidents_per_active_user(loaded: Database) -> None:
    errors = report(loaded, "error_rate")
    assert (errors.overall.current.n, errors.overall.current.value) == (3, pytest.approx(1.0))  # 3 errors / 3
    assert errors.personas["agency"].current.value == pytest.approx(1.0)  # 2 / 2
    assert errors.personas["podcast_network"].current.value is None  # active only before the window
    assert errors.personas["podcast_network"].current.reason == "no active users in the window"
    assert errors.personas["podcast_network"].previous.value == pytest.approx(1.0)
    support = report(loaded, "support_incidents")
    assert support.overall.current.value == pytest.approx(1 / 3 * 30 / 7)


def test_daily_series_cover_every_day_of_the_window(loaded: Database) -> None:
    errors = report(loaded, "error_rate")
    assert [p.day.isoformat() for p in errors.overall.daily][:2] == ["2026-03-01", "2026-03-02"]
    assert len(errors.overall.daily) == 7
    first_day = errors.overall.daily[0]
    # active on 03-01: a1 (signup), s1 (error at 00:00), a2 (report at 22:00Z) → 1 error / 3 users
    assert first_day.n == 3 and first_day.value == pytest.approx(1 / 3)


def test_persona_filter_and_custom_metric(loaded: Database) -> None:
    tracker = MetricsTracker(settings=Settings(database_url=loaded.url))
    for value in (10.0, 20.0, 30.0):
        asyncio.run(tracker.track_metric("report_build_seconds", value, unit="seconds", persona_segment="agency",
                                         observed_at=at("2026-03-02T00:00:00+00:00")))  # fmt: skip
    custom = report(loaded, "report_build_seconds", persona="agency")
    assert list(custom.personas) == ["agency"]
    assert (custom.overall.current.n, custom.overall.current.mean, custom.overall.current.p50) == (
        3,
        20.0,
        20.0,
    )


def test_change_and_p_value_between_windows(database: Database) -> None:
    events = []
    for i in range(400):
        user, day = f"u{i}", "2026-02-25" if i < 200 else "2026-03-04"
        events.append(track(user, "feature_used", f"{day}T10:00:00+00:00", feature="x"))
        if (i < 200 and i % 10 == 0) or (i >= 200 and i % 2 == 0):
            events.append(track(user, "error_occurred", f"{day}T11:00:00+00:00", feature="x"))
    EventIngestor(database).ingest(events)
    result = report(database, "error_rate").overall
    assert result.previous.value == pytest.approx(0.1) and result.current.value == pytest.approx(0.5)
    assert result.change == pytest.approx(4.0)
    assert result.significant and result.p_value < 1e-3 and result.improved is False


def test_seed_snippet_runs_as_written(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", database.url)
    get_settings.cache_clear()
    metrics_tracker = MetricsTracker()
    user_id = "seed-user"

    async def snippet() -> Any:
        await metrics_tracker.track_time_to_value(
            user_id=user_id,
            persona_segment="solo_podcaster",
            value_type="report_generated",
            time_seconds=1200,  # 20 minutes
            feature="report_generation",
        )
        return await metrics_tracker.get_metrics_by_persona(
            metric_category=MetricCategory.TIME_TO_VALUE, days=30, persona_segment="solo_podcaster"
        )

    try:
        metrics = asyncio.run(snippet())
    finally:
        get_settings.cache_clear()
    assert metrics.personas["solo_podcaster"].current.n == 1
    assert metrics.personas["solo_podcaster"].current.mean == 1200


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"user_id": "", "time_seconds": 5}, "user_id"),
        ({"user_id": "u", "time_seconds": -1}, "time_seconds"),
        ({"user_id": "u", "time_seconds": float("nan")}, "time_seconds"),
        ({"user_id": "u", "time_seconds": 5, "persona_segment": "pirates"}, "persona_segment"),
        ({"user_id": "u", "time_seconds": 5, "observed_at": datetime(2026, 1, 1)}, "observed_at"),
    ],
)
def test_bad_tracking_input_names_the_field_and_stores_nothing(
    database: Database, call: dict[str, Any], field: str
) -> None:
    tracker = MetricsTracker(settings=Settings(database_url=database.url))
    before = store_snapshot(database)
    with pytest.raises(MetricInputError) as caught:
        asyncio.run(tracker.track_time_to_value(**call))
    assert caught.value.field == field
    assert store_snapshot(database) == before


def test_tracked_errors_are_events_stored_once(database: Database) -> None:
    tracker = MetricsTracker(settings=Settings(database_url=database.url))
    moment = datetime(2026, 3, 3, 12, tzinfo=timezone(timedelta(hours=2)))
    for _ in range(2):  # a retried call
        asyncio.run(tracker.track_error(user_id="e1", feature="report_generation", persona_segment="agency",
                                        code="E42", observed_at=moment))  # fmt: skip
    asyncio.run(tracker.track_support_incident(user_id="e1", ticket_id="T-1", observed_at=moment))
    errors = report(database, "error_rate")
    assert errors.personas["agency"].current.value == pytest.approx(1.0)
    with pytest.raises(MetricInputError, match="accuracy"):
        asyncio.run(tracker.track_report_accuracy(report_id="r", accuracy=0.5, accurate=True))


def test_retried_explicit_values_count_once(loaded: Database) -> None:
    tracker = MetricsTracker(settings=Settings(database_url=loaded.url))
    for seconds in (4000, 5000):  # a retry with a corrected value: the latest wins
        asyncio.run(tracker.track_time_to_value(user_id="a2", persona_segment="agency", time_seconds=seconds,
                                                observed_at=at("2026-03-04T00:00:00+00:00")))  # fmt: skip
    for _ in range(2):
        asyncio.run(tracker.track_renewal(campaign_id="c9", renewed=True, user_id="a1",
                                          observed_at=at("2026-03-03T00:00:00+00:00")))  # fmt: skip
    ttv = report(loaded, "time_to_value").personas["agency"].current
    assert ttv.n == 2 and ttv.mean == pytest.approx((3600 + 5000) / 2)
    renewals = report(loaded, "renewal_success").overall.current
    assert renewals.n == 3 and renewals.value == pytest.approx(2 / 3)  # c1 success, c2 failure, c9 explicit


def test_renewal_failures_appear_in_the_daily_series_on_their_decision_day(loaded: Database) -> None:
    daily = {p.day.isoformat(): p for p in report(loaded, "renewal_success").overall.daily}
    # c1 renewed 03-02 (success) and c2's failure is decided 02-16 + 14 days = 03-02: both on 03-02.
    assert daily["2026-03-02"].n == 2 and daily["2026-03-02"].value == pytest.approx(0.5)
    assert sum(p.n for p in daily.values()) == 2


@pytest.mark.parametrize(
    "metric", ["time_to_value", "report_accuracy", "renewal_success", "error_rate", "support_incidents"]
)
def test_single_window_summaries_equal_the_reports(loaded: Database, metric: str) -> None:
    """window_summaries (what escalation checks read: one window, no daily series) agrees with metric_report."""
    with loaded.read() as connection:
        summaries = window_summaries(connection, [metric], WINDOW)[metric]
    full = report(loaded, metric)
    expected = {None: full.overall.current} | {p: c.current for p, c in full.personas.items()}
    assert set(summaries) <= set(expected)
    for persona, summary in summaries.items():
        reference = expected[persona]
        assert (summary.n, summary.value, summary.numerator, summary.sum_squares) == (
            reference.n, reference.value, reference.numerator, reference.sum_squares,
        ), persona  # fmt: skip

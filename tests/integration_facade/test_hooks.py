"""Each journey hook of FeedbackLoopIntegration records exactly its canonical events, derives its metrics once
and returns the survey to show (or None); on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from feedbackloop import FeedbackLoopIntegration
from store.database import Database
from tests.integration_facade.support import (
    LIBRARY,
    T0,
    Clock,
    contexts,
    count,
    displays,
    events,
    integration,
)
from tools.metrics.compute import metric_report
from tools.window import Window

Hook = Callable[[FeedbackLoopIntegration], Awaitable[Any]]

# Each hook on a user who signed up at T0 (no collaborators): the events it adds, and the survey it returns.
CASES: list[tuple[str, Hook, list[tuple[str, dict[str, Any]]], str | None]] = [
    ("user_signed_up", lambda i: i.on_user_signed_up("u2", persona="agency", plan="pro", source="podcast_ads"),
     [("identify", {"persona": "agency", "plan": "pro"}),
      ("user_signed_up", {"persona": "agency", "plan": "pro", "source": "podcast_ads"})], None),
    ("onboarding_step", lambda i: i.on_onboarding_step("u1", "connect_feed", step_index=1, total_steps=3),
     [("onboarding_step_completed", {"step": "connect_feed", "step_index": 1, "total_steps": 3})], None),
    ("onboarding_done", lambda i: i.on_onboarding_step("u1", "invite_team", 3, 3, completed=True),
     [("onboarding_completed", {"duration_seconds": 3600.0}),
      ("onboarding_step_completed", {"step": "invite_team", "step_index": 3, "total_steps": 3})], None),
    ("campaign_created", lambda i: i.on_campaign_created("u1", "c1", sponsor_id="acme", budget=2500),
     [("campaign_created", {"campaign_id": "c1", "sponsor_id": "acme", "budget": 2500})], None),
    ("campaign_ended", lambda i: i.on_campaign_ended("u1", "c1", outcome="completed"),
     [("campaign_ended", {"campaign_id": "c1", "outcome": "completed"})], "renewal_success"),
    ("report_generated", lambda i: i.on_report_generated("u1", "r1", campaign_id="c1", time_to_generate=42.5),
     [("report_generated", {"report_id": "r1", "campaign_id": "c1", "duration_seconds": 42.5})], "time_to_value"),
    ("report_sent", lambda i: i.on_report_sent("u1", "r1", recipient_role="sponsor"),
     [("report_sent", {"report_id": "r1", "recipient_role": "sponsor"})], None),  # its survey waits an hour
    ("sponsor_renewed", lambda i: i.on_sponsor_renewed("u1", "c1", amount=3000),
     [("sponsor_renewed", {"campaign_id": "c1", "amount": 3000})], None),
    ("support_contact", lambda i: i.on_support_contact("u1", "t1", category="billing", severity="low"),
     [("support_ticket_opened", {"ticket_id": "t1", "category": "billing", "severity": "low"})], "support_incident"),
    ("error", lambda i: i.on_error("u1", "report_generation", code="E42", message="timeout"),
     [("error_occurred", {"feature": "report_generation", "code": "E42", "message": "timeout"})], None),
]  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signed_up(database: Database, clock: Clock) -> FeedbackLoopIntegration:
    """An integration without collaborators, and user u1 signed up at T0; the clock is an hour later."""
    facade = integration(database, clock)
    asyncio.run(facade.on_user_signed_up("u1", at=T0))
    clock.now = T0 + timedelta(hours=1)
    return facade


@pytest.mark.parametrize(
    ("hook", "expected", "survey"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_each_hook_records_its_canonical_events_and_returns_the_survey_to_show(
    signed_up: FeedbackLoopIntegration, database: Database, hook: Hook, expected: Any, survey: str | None
) -> None:
    before = events(database)
    shown = asyncio.run(hook(signed_up))

    assert before == [("user_signed_up", {})]
    added = sorted(events(database)[1:], key=lambda event: event[0])
    assert added == sorted(expected, key=lambda event: event[0])
    assert all(context == LIBRARY for context in contexts(database))
    assert count(database, "metric_observations") == 0  # every metric derives from the events
    assert (shown.survey_id if shown else None) == survey
    if survey is not None:  # the display is recorded as shown: pending surveys will not offer it again
        assert displays(database)[-1][1:] == (survey, "shown")


def test_a_delayed_survey_is_queued_not_returned(
    signed_up: FeedbackLoopIntegration, database: Database
) -> None:
    assert asyncio.run(signed_up.on_report_sent("u1", "r1")) is None
    assert displays(database) == [("u1", "report_accuracy", "pending")]
    pending = signed_up.surveys.pending("u1", at=T0 + timedelta(hours=2, seconds=1))
    assert [p.survey.survey_id for p in pending] == ["report_accuracy"]


def test_a_throttled_survey_is_not_returned(
    signed_up: FeedbackLoopIntegration, database: Database, clock: Clock
) -> None:
    first = asyncio.run(signed_up.on_report_generated("u1", "r1"))
    clock.now += timedelta(hours=1)
    # The renewal survey respects the global recontact period the time-to-value survey just started.
    ended = asyncio.run(signed_up.on_campaign_ended("u1", "c1"))
    assert first is not None and first.survey_id == "time_to_value" and ended is None
    assert [name for name, _ in events(database, "u1")][-1] == "campaign_ended"
    assert displays(database) == [("u1", "time_to_value", "shown")]


def test_time_to_value_is_counted_once_per_user(
    signed_up: FeedbackLoopIntegration, database: Database, clock: Clock
) -> None:
    clock.now = T0 + timedelta(minutes=20)
    first = asyncio.run(signed_up.on_report_generated("u1", "r1", time_to_generate=30))
    again = asyncio.run(signed_up.on_report_generated("u1", "r1", time_to_generate=30))  # a retried call
    clock.now = T0 + timedelta(hours=5)
    second = asyncio.run(signed_up.on_report_generated("u1", "r2", time_to_generate=45))

    assert first is not None and first.survey_id == "time_to_value" and again is None and second is None
    assert [name for name, _ in events(database, "u1")].count("report_generated") == 2
    assert [d[1] for d in displays(database)] == ["time_to_value"]  # VALUE_DELIVERED fired for the first only
    with database.read() as connection:
        report = metric_report(connection, "time_to_value", Window.last_days(7, T0 + timedelta(days=1)))
    assert (report.overall.current.n, report.overall.current.mean) == (1, 1200.0)  # sign-up → first report
    assert count(database, "metric_observations") == 0


def test_a_retried_hook_stores_nothing_twice(signed_up: FeedbackLoopIntegration, database: Database) -> None:
    for _ in range(2):
        asyncio.run(signed_up.on_user_signed_up("u1", at=T0))
        asyncio.run(signed_up.on_campaign_created("u1", "c1"))
        asyncio.run(signed_up.on_onboarding_step("u1", "connect_feed"))
        asyncio.run(signed_up.on_support_contact("u1", "t1"))
    assert [name for name, _ in events(database)] == [
        "user_signed_up", "campaign_created", "onboarding_step_completed", "support_ticket_opened",
    ]  # fmt: skip
    assert [d[1] for d in displays(database)] == ["support_incident"]


def test_errors_at_different_moments_are_different_errors(
    signed_up: FeedbackLoopIntegration, database: Database, clock: Clock
) -> None:
    asyncio.run(signed_up.on_error("u1", "export"))
    clock.now += timedelta(seconds=1)
    asyncio.run(signed_up.on_error("u1", "export"))
    asyncio.run(signed_up.on_error("u1", "export"))  # the same moment again: a retry
    assert [name for name, _ in events(database)].count("error_occurred") == 2


def test_a_report_sent_twice_is_two_sends(
    signed_up: FeedbackLoopIntegration, database: Database, clock: Clock
) -> None:
    asyncio.run(signed_up.on_report_sent("u1", "r1", recipient_role="sponsor"))
    clock.now += timedelta(days=1)
    asyncio.run(signed_up.on_report_sent("u1", "r1", recipient_role="agency"))
    assert [name for name, _ in events(database)].count("report_sent") == 2

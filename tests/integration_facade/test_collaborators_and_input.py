"""The host's modules are optional and used when given (sync or async); bad input is refused naming the
parameter, with nothing written; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from feedbackloop.integration import IntegrationInputError
from feedbackloop.integration_protocols import (
    CampaignManager,
    EventLogger,
    Measurement,
    MetricsCollector,
    PricingManager,
    ReportGenerator,
    UserManager,
)
from store.database import Database
from tests.helpers import store_snapshot
from tests.integration_facade.support import T0, Clock, Host, count, displays, events, integration


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_host_object_satisfies_every_protocol() -> None:
    host = Host()
    protocols = (UserManager, PricingManager, CampaignManager, ReportGenerator, EventLogger, MetricsCollector,
                 Measurement)  # fmt: skip
    assert all(isinstance(host, protocol) for protocol in protocols)


def test_lookups_fill_what_the_call_left_out(database: Database, clock: Clock) -> None:
    host = Host()
    facade = integration(database, clock, host)
    asyncio.run(facade.on_user_signed_up("u1"))
    asyncio.run(facade.on_campaign_created("u1", "c1"))
    asyncio.run(facade.on_report_generated("u1", "r1", campaign_id="c1"))

    assert events(database, "u1") == [
        ("identify", {"persona": "podcast_network", "plan": "pro"}),
        ("campaign_created", {"campaign_id": "c1", "sponsor_id": "acme"}),
        ("report_generated", {"report_id": "r1", "campaign_id": "c1", "template": "sponsor-summary"}),
        ("user_signed_up", {"persona": "podcast_network", "plan": "pro"}),
    ]
    with database.read() as connection:
        persona = connection.execute(text("SELECT persona FROM users WHERE id = 'u1'")).scalar_one()
    assert persona == "podcast_network"
    # The persona is sent once: later hooks see it stored and send no identify.
    assert [name for name, _ in events(database)].count("identify") == 1


def test_given_values_win_over_lookups(database: Database, clock: Clock) -> None:
    host = Host(persona="agency")
    facade = integration(database, clock, host)
    asyncio.run(facade.on_user_signed_up("u1", persona="agency", plan="free"))
    assert host.told("persona_of") == host.told("plan_of") == []  # nothing to look up
    asyncio.run(facade.on_campaign_created("u1", "c1", sponsor_id="globex"))
    assert events(database) == [
        ("identify", {"persona": "agency", "plan": "free"}),
        ("campaign_created", {"campaign_id": "c1", "sponsor_id": "globex"}),
        ("user_signed_up", {"persona": "agency", "plan": "free"}),
    ]
    assert host.told("sponsor_of") == [] and host.told("persona_of") == [("u1",)]  # it agrees: no identify


def test_a_persona_change_at_the_host_is_sent_as_an_identify(database: Database, clock: Clock) -> None:
    host = Host(persona="solo_podcaster")
    facade = integration(database, clock, host)
    asyncio.run(facade.on_user_signed_up("u1"))
    host.persona = "agency"
    clock.now += timedelta(days=3)
    asyncio.run(facade.on_support_contact("u1", "t1"))
    identifies = [properties for name, properties in events(database) if name == "identify"]
    assert identifies == [{"persona": "solo_podcaster", "plan": "pro"}, {"persona": "agency"}]
    assert displays(database) == [("u1", "support_incident", "shown")]


def test_none_from_a_lookup_means_unknown(database: Database, clock: Clock) -> None:
    facade = integration(database, clock, Host(persona=None, plan=None, sponsor=None, template=None))
    asyncio.run(facade.on_user_signed_up("u1"))
    asyncio.run(facade.on_report_generated("u1", "r1"))
    assert sorted(events(database)) == [("report_generated", {"report_id": "r1"}), ("user_signed_up", {})]


def test_sinks_hear_what_was_recorded_once(database: Database, clock: Clock) -> None:
    host = Host()
    facade = integration(database, clock, host)
    asyncio.run(facade.on_user_signed_up("u1", at=T0))
    clock.now = T0 + timedelta(minutes=20)
    for _ in range(2):  # the retry is stored once and told once
        asyncio.run(facade.on_report_generated("u1", "r1", time_to_generate=30))
    clock.now = T0 + timedelta(hours=2)
    asyncio.run(facade.on_onboarding_step("u1", "done", completed=True))
    asyncio.run(facade.on_error("u1", "export", code="E1"))

    assert [arguments[0] for arguments in host.told("log_event")] == [
        "user_signed_up", "report_generated", "onboarding_step_completed", "onboarding_completed", "error_occurred",
    ]  # fmt: skip
    labels = {"persona": "podcast_network"}
    assert host.told("observe") == [
        ("report_generation_seconds", 30.0, labels),
        ("time_to_value_seconds", 1200.0, labels),
        ("onboarding_seconds", 7200.0, labels),
    ]
    assert host.told("record_task") == [
        ("u1", "report_generation", True), ("u1", "onboarding", True), ("u1", "export", False),
    ]  # fmt: skip


def test_a_failing_host_sink_does_not_fail_the_hook(
    database: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenLogger:
        def log_event(self, name: str, user_id: str, properties: Any) -> None:
            raise ConnectionError("event bus down")

    facade = integration(database, clock)
    facade.event_logger = BrokenLogger()
    with caplog.at_level(logging.ERROR, logger="feedbackloop.integration"):
        shown = asyncio.run(facade.on_support_contact("u1", "t1"))
    assert shown is not None and events(database) == [("support_ticket_opened", {"ticket_id": "t1"})]
    assert "event_logger.log_event('support_ticket_opened') failed" in caplog.text


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("on_user_signed_up", {"user_id": ""}, "user_id"),
    ("on_user_signed_up", {"user_id": "u1", "persona": 7}, "persona"),
    ("on_onboarding_step", {"user_id": "u1", "step": " "}, "step"),
    ("on_onboarding_step", {"user_id": "u1", "step": "s", "step_index": 4, "total_steps": 3}, "step_index"),
    ("on_onboarding_step", {"user_id": "u1", "step": "s", "total_steps": 0}, "total_steps"),
    ("on_onboarding_step", {"user_id": "u1", "step": "s", "completed": "yes"}, "completed"),
    ("on_campaign_created", {"user_id": "u1", "campaign_id": "c1", "budget": -5}, "budget"),
    ("on_campaign_created", {"user_id": "u1", "campaign_id": "c1", "budget": "100"}, "budget"),
    ("on_campaign_ended", {"user_id": None, "campaign_id": "c1"}, "user_id"),
    ("on_report_generated", {"user_id": "u1", "report_id": "r1", "time_to_generate": -1}, "time_to_generate"),
    ("on_report_generated", {"user_id": "u1", "report_id": "r1", "time_to_generate": float("nan")},
     "time_to_generate"),
    ("on_report_generated", {"user_id": "u1", "report_id": "r1", "time_to_generate": True}, "time_to_generate"),
    ("on_report_generated", {"user_id": "u1", "report_id": ""}, "report_id"),
    ("on_report_sent", {"user_id": "u1", "report_id": "r1", "at": datetime(2026, 3, 2)}, "at"),
    ("on_sponsor_renewed", {"user_id": "u1", "campaign_id": "c1", "amount": float("inf")}, "amount"),
    ("on_support_contact", {"user_id": "u1", "ticket_id": "x" * 256}, "ticket_id"),
    ("on_error", {"user_id": "u1", "feature": "export", "message": "m" * 2001}, "message"),
]  # fmt: skip


@pytest.mark.parametrize(("hook", "arguments", "field"), BAD_CALLS, ids=[f"{h}-{f}" for h, _, f in BAD_CALLS])
def test_bad_input_names_the_parameter_and_writes_nothing(
    database: Database, clock: Clock, hook: str, arguments: dict[str, Any], field: str
) -> None:
    host = Host()
    facade = integration(database, clock, host)
    before = store_snapshot(database), count(database, "survey_displays")
    with pytest.raises(IntegrationInputError) as refused:
        asyncio.run(getattr(facade, hook)(**arguments))
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
    assert isinstance(refused.value, ValueError)
    assert (store_snapshot(database), count(database, "survey_displays")) == before
    assert host.calls == []  # refused before any host module was asked or told


def test_a_host_lookup_answering_nonsense_is_refused_and_writes_nothing(
    database: Database, clock: Clock
) -> None:
    class OddUsers:
        def persona_of(self, user_id: str) -> Any:
            return {"persona": "agency"}

    facade = integration(database, clock)
    facade.user_manager = OddUsers()
    with pytest.raises(IntegrationInputError) as refused:
        asyncio.run(facade.on_report_generated("u1", "r1"))
    assert refused.value.field == "user_manager.persona_of"
    assert count(database, "events") == 0

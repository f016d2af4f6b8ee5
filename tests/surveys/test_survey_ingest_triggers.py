"""Ingested events fire survey triggers in the transaction that stores them (TRACKING_PLAN.md "Reactions"): the
first report_generated queues time-to-value, report_sent / support_ticket_opened / campaign_ended queue theirs,
in event time, keyed by message id so a replay queues nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from store.database import Database
from tests.surveys.support import T0, Clock, definition, display_count, displays, identify, service, track
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.surveys.reactions import TriggeredSurvey
from tools.surveys.service import SurveyService

DAY = timedelta(days=1)


@pytest.fixture
def surveys(database: Database) -> SurveyService:
    defaults = service(database, Clock(T0 - 365 * DAY))
    assert defaults.ensure_defaults() == 4
    return service(database, Clock(T0))


def display_id(survey_id: str, user_id: str, event: CanonicalEvent) -> str:
    return hashlib.sha256(f"{survey_id}\x1f{user_id}\x1f{event.message_id}".encode()).hexdigest()[:32]


def test_first_report_generated_queues_time_to_value(database: Database, surveys: SurveyService) -> None:
    report = track("u1", "report_generated", T0 + timedelta(hours=1), report_id="r1")
    batch = [identify("u1", persona="solo_podcaster"), track("u1", "user_signed_up", T0), report]
    summary = EventIngestor(database).ingest(batch)
    expected_id = display_id("time_to_value", "u1", report)
    assert summary.accepted == 3
    assert summary.surveys == [
        TriggeredSurvey("u1", "time_to_value", expected_id, T0 + timedelta(hours=1), "report_generated")
    ]
    [row] = displays(database, "u1")
    assert (row["id"], row["survey_id"], row["status"], row["persona"]) == (
        expected_id, "time_to_value", "pending", "solo_podcaster",
    )  # fmt: skip
    assert (row["trigger"], row["triggered_at"], row["show_after"]) == (
        "report_generated",
        report.timestamp,
        report.timestamp,
    )
    assert row["context"] == {"report_id": "r1"}
    assert summary.surveys[0].as_dict()["show_after"] == (T0 + timedelta(hours=1)).isoformat()

    replay = EventIngestor(database).ingest(batch)
    assert (replay.accepted, replay.duplicates, replay.surveys) == (0, 3, [])
    assert display_count(database, "time_to_value") == 1

    [due] = surveys.pending("u1", at=T0 + timedelta(hours=1))
    assert (due.display_id, due.survey.survey_id) == (expected_id, "time_to_value")
    answered = surveys.respond(
        {"time_to_value": "<15 minutes", "ease_of_setup": "Easy", "value_perceived": "Yes, some value"},
        user="u1", survey_id="time_to_value", at=T0 + timedelta(hours=2),
    )  # fmt: skip
    assert (answered.display_id, answered.partial) == (expected_id, False)


def test_a_survey_queued_by_ingestion_is_shown_when_the_host_triggers_it(
    database: Database, surveys: SurveyService
) -> None:
    report = track("u1", "report_generated", T0, report_id="r1")
    [queued] = EventIngestor(database).ingest([report]).surveys
    decision = surveys.trigger(
        "u1", "value_delivered", {"value_type": "report_generated"}, feature="report_generation",
        at=T0 + timedelta(seconds=5),
    )  # fmt: skip
    assert (decision.display_id, decision.status) == (queued.display_id, "shown")
    assert [(r["id"], r["status"]) for r in displays(database, "u1")] == [(queued.display_id, "shown")]


def test_only_the_first_report_generated_fires(database: Database, surveys: SurveyService) -> None:
    ingestor = EventIngestor(database)
    first = ingestor.ingest(
        [
            track("u1", "report_generated", T0, report_id="r1"),
            track("u1", "report_generated", T0 + DAY, report_id="r2"),
        ]
    )
    assert [s.survey_id for s in first.surveys] == ["time_to_value"]
    surveys.dismiss(first.surveys[0].display_id, at=T0 + timedelta(minutes=5))
    # time_to_value is asked until answered (twice at most): only the first-occurrence rule keeps it quiet now.
    later = ingestor.ingest([track("u1", "report_generated", T0 + 30 * DAY, report_id="r3")])
    assert (later.accepted, later.surveys) == (1, [])
    assert display_count(database, "time_to_value") == 1
    other = ingestor.ingest([track("u2", "report_generated", T0 + 30 * DAY, report_id="r4")])
    assert [(s.user_id, s.survey_id) for s in other.surveys] == [("u2", "time_to_value")]


@pytest.mark.parametrize(
    ("event", "properties", "survey_id", "delay"),
    [
        ("report_sent", {"report_id": "r1"}, "report_accuracy", timedelta(hours=1)),
        ("support_ticket_opened", {"ticket_id": "t1"}, "support_incident", timedelta(0)),
        ("campaign_ended", {"campaign_id": "c1"}, "renewal_success", timedelta(0)),
    ],
)
def test_journey_events_queue_their_surveys(
    database: Database, surveys: SurveyService, event: str, properties: dict[str, str], survey_id: str,
    delay: timedelta,
) -> None:  # fmt: skip
    fired = track("u1", event, T0, **properties)
    summary = EventIngestor(database).ingest([fired, track("u1", "feature_used", T0, feature="dashboard")])
    assert summary.surveys == [
        TriggeredSurvey("u1", survey_id, display_id(survey_id, "u1", fired), T0 + delay, event)
    ]
    if delay:
        assert surveys.pending("u1", at=T0 + delay - timedelta(seconds=1)) == []
    assert [p.survey.survey_id for p in surveys.pending("u1", at=T0 + delay)] == [survey_id]


def test_the_trigger_time_is_the_event_time(database: Database, surveys: SurveyService) -> None:
    """Global recontact is measured between event timestamps, whatever the wall clock says at ingestion."""
    ingestor = EventIngestor(database)
    a_year_ago = T0 - 365 * DAY
    ttv = ingestor.ingest([track("u1", "report_generated", a_year_ago, report_id="r1")])
    assert [s.show_after for s in ttv.surveys] == [a_year_ago]
    too_soon = ingestor.ingest([track("u1", "report_sent", a_year_ago + 6 * DAY, report_id="r1")])
    assert too_soon.surveys == []  # six days after the queued time-to-value survey: global recontact
    ticket = ingestor.ingest([track("u1", "support_ticket_opened", a_year_ago + 6 * DAY, ticket_id="t1")])
    assert [s.survey_id for s in ticket.surveys] == ["support_incident"]  # ignores the global wait
    week_later = ingestor.ingest([track("u1", "report_sent", a_year_ago + 14 * DAY, report_id="r2")])
    assert [(s.survey_id, s.show_after) for s in week_later.surveys] == [
        ("report_accuracy", a_year_ago + 14 * DAY + timedelta(hours=1))
    ]
    row = next(r for r in displays(database, "u1") if r["survey_id"] == "report_accuracy")
    assert row["triggered_at"] == a_year_ago + 14 * DAY


def test_events_of_a_batch_fire_in_time_order(database: Database, surveys: SurveyService) -> None:
    batch = [
        track("u1", "report_sent", T0 + 8 * DAY, report_id="r1"),  # listed first, happened last
        track("u1", "report_generated", T0, report_id="r1"),
        track("u1", "campaign_ended", T0 + DAY, campaign_id="c1"),  # a day after time-to-value: too soon
    ]
    summary = EventIngestor(database).ingest(batch)
    assert [(s.survey_id, s.event) for s in summary.surveys] == [
        ("time_to_value", "report_generated"), ("report_accuracy", "report_sent"),
    ]  # fmt: skip


def test_trigger_context_is_matched_against_event_properties(
    database: Database, surveys: SurveyService
) -> None:
    surveys.create(
        definition("pdf_exports", trigger="report_exported", trigger_context={"format": ["pdf", "PDF"]})
    )
    ingestor = EventIngestor(database)
    assert ingestor.ingest([track("u1", "report_exported", T0, format="csv")]).surveys == []
    assert ingestor.ingest([track("u2", "report_exported", T0)]).surveys == []
    matched = ingestor.ingest([track("u3", "report_exported", T0, format="pdf", pages=3)])
    assert [(s.user_id, s.survey_id) for s in matched.surveys] == [("u3", "pdf_exports")]
    [row] = displays(database, "u3")
    assert row["context"] == {"format": "pdf", "pages": 3}


def test_a_title_case_event_trigger_fires_on_the_ingested_event(
    database: Database, surveys: SurveyService
) -> None:
    surveys.create(definition("exports", trigger="Report Exported"))
    summary = EventIngestor(database).ingest([track("u1", "report_exported", T0, format="pdf")])
    assert [(s.survey_id, s.event) for s in summary.surveys] == [("exports", "report_exported")]
    assert surveys.trigger("u2", "Report Exported", at=T0).status == "shown"


def test_the_users_persona_from_the_same_batch_targets_surveys(
    database: Database, surveys: SurveyService
) -> None:
    surveys.create(definition("agency_onboarding", trigger="podcast_connected", persona_segments=["agency"]))
    batch = [
        track("a1", "podcast_connected", T0, hosting_provider="libsyn"),
        identify("a1", T0 + timedelta(seconds=1), persona="agency"),  # later in the batch, still applies
        identify("s1", persona="solo_podcaster"),
        track("s1", "podcast_connected", T0),
        track("n1", "podcast_connected", T0),  # never identified: unassigned
    ]
    summary = EventIngestor(database).ingest(batch)
    assert [(s.user_id, s.survey_id) for s in summary.surveys] == [("a1", "agency_onboarding")]
    assert displays(database, "a1")[0]["persona"] == "agency"


def test_paused_and_windowed_surveys_do_not_fire(database: Database, surveys: SurveyService) -> None:
    surveys.update("report_accuracy", {"active": False})
    surveys.update("renewal_success", {"starts_at": (T0 + DAY).isoformat()})
    summary = EventIngestor(database).ingest(
        [track("u1", "report_sent", T0, report_id="r1"), track("u2", "campaign_ended", T0, campaign_id="c1")]
    )
    assert summary.surveys == []
    later = EventIngestor(database).ingest([track("u3", "campaign_ended", T0 + DAY, campaign_id="c2")])
    assert [s.survey_id for s in later.surveys] == ["renewal_success"]


def test_survey_triggers_can_be_turned_off(database: Database, surveys: SurveyService) -> None:
    summary = EventIngestor(database, survey_triggers=False).ingest(
        [
            track("u1", "report_generated", T0, report_id="r1"),
            track("u2", "report_sent", T0, report_id="r2"),
            track("u3", "support_ticket_opened", T0, ticket_id="t1"),
            track("u4", "campaign_ended", T0, campaign_id="c1"),
        ]
    )
    assert (summary.accepted, summary.surveys) == (4, [])
    assert displays(database) == []


def test_no_surveys_no_reactions(database: Database) -> None:
    summary = EventIngestor(database).ingest([track("u1", "report_generated", T0, report_id="r1")])
    assert (summary.accepted, summary.surveys) == (1, [])


def test_the_recontact_setting_of_the_ingestor(database: Database, surveys: SurveyService) -> None:
    ingestor = EventIngestor(database, survey_recontact_days=2)
    ingestor.ingest([track("u1", "report_generated", T0, report_id="r1")])
    assert ingestor.ingest([track("u1", "campaign_ended", T0 + DAY, campaign_id="c1")]).surveys == []
    fired = ingestor.ingest([track("u1", "campaign_ended", T0 + 2 * DAY, campaign_id="c2")])
    assert [s.survey_id for s in fired.surveys] == ["renewal_success"]


def test_stream_ingestion_fires_across_chunks(database: Database, surveys: SurveyService) -> None:
    events = [
        track(f"u{i}", "report_generated", T0 + timedelta(minutes=i), report_id=f"r{i}") for i in range(30)
    ]
    events += [track(f"u{i}", "report_generated", T0 + DAY, report_id=f"again{i}") for i in range(30)]
    summary = EventIngestor(database).ingest_stream(events, chunk_events=7)
    assert sorted(s.user_id for s in summary.surveys) == sorted(f"u{i}" for i in range(30))
    assert display_count(database, "time_to_value") == 30

"""Survey triggers fired by ingested events, inside the transaction that stores them (TRACKING_PLAN reactions).

Backend events trigger surveys just like client calls do, which is what client-only survey tools cannot offer:
a report_sent recorded by the back end queues the report-accuracy survey for the user, who sees it the next time
the client asks for pending surveys. The event's time is the trigger time, so imports of history replay the
fatigue rules as they would have applied then, and the event's message id keys the display, so a replay of the
same event never queues a second one. A chunk costs a few set-based statements (surveys, personas, first
occurrences, the users' display ledger, one multi-row insert) however many events it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from store.models import UNASSIGNED_PERSONA
from store.repositories import surveys as repo
from tools.events.model import CanonicalEvent
from tools.surveys.evaluation import DisplayLedger, active_surveys, answered_totals, decide
from tools.surveys.model import FIRST_OCCURRENCE_TRIGGERS, Survey
from tools.surveys.throttle import DEFAULT_GLOBAL_RECONTACT_DAYS


@dataclass(frozen=True, slots=True)
class TriggeredSurvey:
    user_id: str
    survey_id: str
    display_id: str
    show_after: datetime
    event: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "survey_id": self.survey_id, "display_id": self.display_id,
            "show_after": self.show_after.isoformat(), "event": self.event,
        }  # fmt: skip


def react_to_events(
    connection: Connection,
    events: Sequence[CanonicalEvent],
    *,
    global_recontact_days: int = DEFAULT_GLOBAL_RECONTACT_DAYS,
) -> list[TriggeredSurvey]:
    """Queue the surveys that `events` (already stored on `connection`) trigger; returns the new displays."""
    tracked = [e for e in events if e.type == "track" and e.user_id is not None]
    if not tracked:
        return []
    surveys = active_surveys(connection)
    listened = {survey.trigger_event for survey in surveys}
    firing = sorted((e for e in tracked if e.name in listened), key=lambda e: e.timestamp)
    if not firing:
        return []
    users = [e.user_id for e in firing if e.user_id is not None]
    repo.lock_users_triggers(connection, users)  # a host app's trigger for these users waits for this chunk
    personas = repo.personas_of(connection, users)
    firsts = {
        name: repo.first_event_times(connection, name, users)
        for name in {s.trigger_event for s in surveys if str(s.trigger) in FIRST_OCCURRENCE_TRIGGERS}
    }
    ledger = DisplayLedger.load(connection, users)
    answered = answered_totals(connection, surveys)
    triggered: list[TriggeredSurvey] = []
    rows: list[dict[str, Any]] = []
    for event in firing:
        assert event.user_id is not None
        eligible = [s for s in surveys if _fires(s, event, firsts)]
        decision = decide(
            ledger, eligible, user_id=event.user_id, persona=personas.get(event.user_id, UNASSIGNED_PERSONA),
            trigger=event.name, context=_scalars(event.properties), at=event.timestamp, show_now=False,
            global_recontact_days=global_recontact_days, answered=answered, display_key=event.message_id,
        )  # fmt: skip
        if (
            decision.new_display is not None
            and decision.survey is not None
            and decision.show_after is not None
        ):
            rows.append(decision.new_display)
            triggered.append(
                TriggeredSurvey(event.user_id, decision.survey.survey_id, str(decision.display_id),
                                decision.show_after, event.name)
            )  # fmt: skip
    repo.insert_displays(connection, rows)
    return triggered


def _fires(survey: Survey, event: CanonicalEvent, firsts: dict[str, dict[str, datetime]]) -> bool:
    if survey.trigger_event != event.name:
        return False
    if str(survey.trigger) not in FIRST_OCCURRENCE_TRIGGERS:
        return True
    # VALUE_DELIVERED: only the user's first report_generated (the one that ends time-to-value).
    first = firsts.get(event.name, {}).get(str(event.user_id))
    return first is None or first >= event.timestamp


def _scalars(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if v is None or isinstance(v, str | int | float | bool)}

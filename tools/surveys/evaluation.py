"""Trigger evaluation on an open transaction: pick the survey to show a user for a trigger, and record it.

Shared by the service (a host app asks "should I show a survey now?") and by ingestion (an event fires a trigger
in the same transaction that stores it, so no trigger is lost and a replayed event fires nothing twice).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from store.repositories import surveys as repo
from tools.surveys.model import Survey, context_matches, survey_from_stored
from tools.surveys.throttle import NotShownReason, UserSurveyHistory, reason_not_to_show


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """The survey to show (with its display), or None and the reason; `candidates` explains every survey tried."""

    survey: Survey | None
    display_id: str | None = None
    status: str | None = None  # shown (show it now) or pending (queued until show_after)
    show_after: datetime | None = None
    reason: str | None = None
    candidates: list[dict[str, str | None]] = field(default_factory=list)
    new_display: bool = False

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        return {
            "survey_id": self.survey.survey_id if self.survey else None,
            "display_id": self.display_id, "status": self.status,
            "show_after": self.show_after.isoformat() if self.show_after else None,
            "reason": self.reason, "candidates": self.candidates,
            "survey": self.survey.localized(language) if self.survey else None,
        }  # fmt: skip


def active_surveys(connection: Connection) -> list[Survey]:
    return [survey_from_stored(row["definition"]) for row in repo.survey_rows(connection, active_only=True)]


def history(connection: Connection, user_id: str, survey_id: str) -> UserSurveyHistory:
    rows = repo.history_rows(connection, user_id, survey_id)
    this, other = rows.get(True), rows.get(False)
    return UserSurveyHistory(
        displays_of_survey=int(this["displays"]) if this else 0,
        answered_survey=bool(this and this["answered"]),
        last_seen_survey=this["last_seen"] if this else None,
        last_seen_other_survey=other["last_seen"] if other else None,
    )


def matches_trigger(survey: Survey, trigger: str) -> bool:
    return trigger in (str(survey.trigger), survey.trigger_event)


def decide(
    connection: Connection,
    surveys: Sequence[Survey],
    *,
    user_id: str,
    persona: str,
    trigger: str,
    context: Mapping[str, Any],
    at: datetime,
    show_now: bool,
    global_recontact_days: int,
    display_key: str | None = None,
) -> TriggerDecision:
    """Evaluate the surveys listening to `trigger` in order; record a display for the first that may be shown.

    A survey already queued for the user is returned again instead of queuing a second display of it.
    `display_key` makes the display id deterministic (ingestion passes the event's message id).
    """
    listening = [s for s in surveys if matches_trigger(s, trigger)]
    if not listening:
        return TriggerDecision(None, reason=NotShownReason.NO_MATCHING_SURVEY.value)
    candidates: list[dict[str, str | None]] = []
    first_reason: str | None = None
    for survey in listening:
        if not context_matches(survey.trigger_context, context):
            candidates.append(
                {"survey_id": survey.survey_id, "reason": NotShownReason.CONTEXT_MISMATCH.value}
            )
            continue
        queued = repo.pending_display_id(connection, user_id, survey.survey_id)
        if queued is not None:
            row = repo.display_row(connection, queued)
            assert row is not None
            candidates.append({"survey_id": survey.survey_id, "reason": None})
            return TriggerDecision(survey, queued, "pending", row["show_after"], None, candidates)
        reason = reason_not_to_show(
            survey, user_id=user_id, persona=persona, at=at,
            history=history(connection, user_id, survey.survey_id),
            answered_total=repo.answered_count(connection, survey.survey_id) if survey.response_limit else 0,
            global_recontact_days=global_recontact_days,
        )  # fmt: skip
        candidates.append({"survey_id": survey.survey_id, "reason": reason.value if reason else None})
        if reason is None:
            decision = _record(
                connection, survey, user_id, persona, trigger, context, at, show_now, display_key
            )
            return replace(decision, candidates=candidates)
        first_reason = first_reason or reason.value
    return TriggerDecision(
        None, reason=first_reason or NotShownReason.CONTEXT_MISMATCH.value, candidates=candidates
    )


def _record(
    connection: Connection,
    survey: Survey,
    user_id: str,
    persona: str,
    trigger: str,
    context: Mapping[str, Any],
    at: datetime,
    show_now: bool,
    display_key: str | None,
) -> TriggerDecision:
    show_after = at + timedelta(seconds=survey.delay_seconds)
    shown = show_now and survey.delay_seconds == 0
    display_id = (
        hashlib.sha256(f"{survey.survey_id}\x1f{user_id}\x1f{display_key}".encode()).hexdigest()[:32]
        if display_key is not None
        else uuid.uuid4().hex
    )
    written = repo.insert_display(
        connection,
        {
            "id": display_id, "survey_id": survey.survey_id, "user_id": user_id, "persona": persona,
            "trigger": trigger, "context": dict(context), "status": "shown" if shown else "pending",
            "triggered_at": at, "show_after": show_after, "shown_at": at if shown else None, "closed_at": None,
        },
    )  # fmt: skip
    status = "shown" if shown else "pending"
    return TriggerDecision(survey, display_id, status, show_after, None, new_display=written)

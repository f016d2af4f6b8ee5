"""Trigger evaluation: pick the survey to show a user for a trigger, against a ledger of their past displays.

Shared by the service (a host app asks "should I show a survey now?") and by ingestion (events fire triggers in
the transaction that stores them, so no trigger is lost and a replayed event fires nothing twice). Ingestion loads
the ledger of every user in a chunk with one query and evaluates in memory, so a chunk of events costs a handful
of statements however many triggers it fires.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from store.repositories import surveys as repo
from tools.surveys.model import Survey, context_matches, survey_from_stored
from tools.surveys.throttle import NotShownReason, UserSurveyHistory, reason_not_to_show


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """The survey to show (with its display), or None and the reason; `candidates` explains every survey tried.

    `new_display` holds the row to store when the decision creates a display (the caller writes it).
    """

    survey: Survey | None
    display_id: str | None = None
    status: str | None = None  # shown (show it now) or pending (queued until show_after)
    show_after: datetime | None = None
    reason: str | None = None
    candidates: list[dict[str, str | None]] = field(default_factory=list)
    new_display: dict[str, Any] | None = None

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        return {
            "survey_id": self.survey.survey_id if self.survey else None,
            "display_id": self.display_id, "status": self.status,
            "show_after": self.show_after.isoformat() if self.show_after else None,
            "reason": self.reason, "candidates": self.candidates,
            "survey": self.survey.localized(language) if self.survey else None,
        }  # fmt: skip


PENDING_EXPIRY_DAYS = 14  # a queued survey nobody fetched for two weeks after it was due is stale


@dataclass(frozen=True, slots=True)
class DisplayRecord:
    display_id: str
    survey_id: str
    status: str
    seen_at: datetime  # shown_at, or show_after while pending: a queued survey counts as seen when it is due


class DisplayLedger:
    """Past displays per user, read once and kept current as decisions add displays."""

    def __init__(self, records: Mapping[str, list[DisplayRecord]] | None = None) -> None:
        self.records: dict[str, list[DisplayRecord]] = {
            user: list(rows) for user, rows in (records or {}).items()
        }

    @classmethod
    def load(cls, connection: Connection, user_ids: Iterable[str]) -> DisplayLedger:
        ledger = cls()
        for row in repo.display_ledger_rows(connection, list(user_ids)):
            ledger.add(
                row["user_id"], DisplayRecord(row["id"], row["survey_id"], row["status"], row["seen_at"])
            )
        return ledger

    def add(self, user_id: str, record: DisplayRecord) -> None:
        self.records.setdefault(user_id, []).append(record)

    def history(
        self, user_id: str, survey_id: str, expired_before: datetime | None = None
    ) -> UserSurveyHistory:
        """The user's displays; a queued display that expired (due before `expired_before`, never shown) was
        never seen, so it counts neither as a display nor as contact."""
        seen = [
            r
            for r in self.records.get(user_id, [])
            if not (r.status == "pending" and expired_before is not None and r.seen_at < expired_before)
        ]
        mine = [r for r in seen if r.survey_id == survey_id]
        others = [r.seen_at for r in seen if r.survey_id != survey_id]
        return UserSurveyHistory(
            displays_of_survey=len(mine),
            answered_survey=any(r.status == "answered" for r in mine),
            last_seen_survey=max((r.seen_at for r in mine), default=None),
            last_seen_other_survey=max(others, default=None),
        )

    def pending(self, user_id: str, survey_id: str, due_since: datetime) -> DisplayRecord | None:
        """The latest queued display of the survey that became due at or after `due_since` (older ones expired)."""
        queued = [
            r
            for r in self.records.get(user_id, [])
            if r.survey_id == survey_id and r.status == "pending" and r.seen_at >= due_since
        ]
        return max(queued, key=lambda r: r.seen_at, default=None)


def active_surveys(connection: Connection, *, include_paused: bool = False) -> list[Survey]:
    """Surveys that may fire; `include_paused` adds paused ones, so a direct trigger can report "inactive"."""
    rows = repo.survey_rows(connection, active_only=not include_paused)
    return [survey_from_stored(row["definition"]) for row in rows]


def answered_totals(connection: Connection, surveys: Sequence[Survey]) -> dict[str, int]:
    """Answered displays of the surveys that have a response limit (the only ones that need the count)."""
    return repo.answered_counts(connection, [s.survey_id for s in surveys if s.response_limit is not None])


def matches_trigger(survey: Survey, trigger: str) -> bool:
    return trigger in (str(survey.trigger), survey.trigger_event)


def decide(
    ledger: DisplayLedger,
    surveys: Sequence[Survey],
    *,
    user_id: str,
    persona: str,
    trigger: str,
    context: Mapping[str, Any],
    at: datetime,
    show_now: bool,
    global_recontact_days: int,
    answered: Mapping[str, int],
    display_key: str | None = None,
) -> TriggerDecision:
    """Evaluate the surveys listening to `trigger` in order; the first that may be shown gets a new display.

    A survey already queued for the user is returned again instead of queuing a second display of it.
    `display_key` makes the display id deterministic (ingestion passes the event's message id). The new display
    is added to `ledger`, so later decisions on the same ledger see it.
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
        # An expired queued display is never offered by pending(); handing it back would block the survey.
        expiry = at - timedelta(days=PENDING_EXPIRY_DAYS)
        queued = ledger.pending(user_id, survey.survey_id, expiry)
        if queued is not None:
            candidates.append({"survey_id": survey.survey_id, "reason": None})
            return TriggerDecision(survey, queued.display_id, "pending", queued.seen_at, None, candidates)
        history = ledger.history(user_id, survey.survey_id, expired_before=expiry)
        reason = reason_not_to_show(
            survey, user_id=user_id, persona=persona, at=at, history=history,
            answered_total=answered.get(survey.survey_id, 0), global_recontact_days=global_recontact_days,
        )  # fmt: skip
        candidates.append({"survey_id": survey.survey_id, "reason": reason.value if reason else None})
        if reason is None:
            return _new_display(
                ledger, survey, user_id, persona, trigger, context, at, show_now, display_key, candidates
            )
        first_reason = first_reason or reason.value
    return TriggerDecision(
        None, reason=first_reason or NotShownReason.CONTEXT_MISMATCH.value, candidates=candidates
    )


def _new_display(
    ledger: DisplayLedger,
    survey: Survey,
    user_id: str,
    persona: str,
    trigger: str,
    context: Mapping[str, Any],
    at: datetime,
    show_now: bool,
    display_key: str | None,
    candidates: list[dict[str, str | None]],
) -> TriggerDecision:
    show_after = at + timedelta(seconds=survey.delay_seconds)
    status = "shown" if show_now and survey.delay_seconds == 0 else "pending"
    display_id = (
        hashlib.sha256(f"{survey.survey_id}\x1f{user_id}\x1f{display_key}".encode()).hexdigest()[:32]
        if display_key is not None
        else uuid.uuid4().hex
    )
    row = {
        "id": display_id, "survey_id": survey.survey_id, "user_id": user_id, "persona": persona,
        "trigger": trigger, "context": dict(context), "status": status, "triggered_at": at,
        "show_after": show_after, "shown_at": at if status == "shown" else None, "closed_at": None,
    }  # fmt: skip
    ledger.add(
        user_id, DisplayRecord(display_id, survey.survey_id, status, at if status == "shown" else show_after)
    )
    return TriggerDecision(survey, display_id, status, show_after, None, candidates, new_display=row)

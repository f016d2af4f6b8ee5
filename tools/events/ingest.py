"""EventIngestor: the one code path from canonical events to the store, used by HTTP, CLI, Python and the demo.

Per chunk, in one transaction: insert events (dedupe on message_id), then create/refresh the users they name
(first/last seen; identify calls set persona and merge traits). A failure rolls the whole chunk back, so nothing
is ever half-written; a replay of the same chunk inserts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from store.database import Database
from store.models import UNASSIGNED_PERSONA
from store.repositories.activity_rollups import follow_persona_changes, mark_stale_days
from store.repositories.events import (
    UserSighting,
    existing_message_ids,
    insert_events,
    stored_users,
    upsert_users,
)
from store.repositories.experiment_units import mark_assigned_users_dirty
from store.repositories.first_occurrences import ENTITY_EVENTS, record_first_occurrences
from tools.events.model import CanonicalEvent
from tools.events.segment import Rejection
from tools.personas import PersonaRegistry, load_registry
from tools.surveys.reactions import TriggeredSurvey, react_to_events
from tools.surveys.throttle import DEFAULT_GLOBAL_RECONTACT_DAYS

DEFAULT_CHUNK_EVENTS = 5_000
# Events whose earliest occurrence per user is kept on the users row (time to value reads them).
MILESTONE_EVENTS = {
    "user_signed_up": "signed_up_at",
    "report_generated": "first_report_at",
    "subscription_started": "subscribed_at",
}
RETRY_ATTEMPTS = 4
RETRY_BASE_SECONDS = 0.05
# PostgreSQL SQLSTATEs of transactions that lost a race and succeed when simply run again.
TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure


def _is_transient(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


@dataclass
class IngestSummary:
    """What happened to a set of events. `accepted` counts rows newly stored."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    surveys: list[TriggeredSurvey] = field(default_factory=list)  # displays queued by survey triggers

    def add(self, other: IngestSummary) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)
        self.surveys.extend(other.surveys)

    def as_response(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {"index": r.index, "messageId": r.message_id, "reason": r.reason} for r in self.rejected
            ],
        }


class EventIngestor:
    """Stores canonical events. `ingest` is one transaction; `ingest_stream` chunks for millions of events."""

    def __init__(
        self,
        database: Database,
        personas: PersonaRegistry | None = None,
        *,
        survey_triggers: bool = True,
        survey_recontact_days: int = DEFAULT_GLOBAL_RECONTACT_DAYS,
    ) -> None:
        self.database = database
        self.personas = personas or load_registry()
        self.survey_triggers = survey_triggers  # events fire survey triggers (TRACKING_PLAN.md reactions)
        self.survey_recontact_days = survey_recontact_days

    def ingest(self, events: Sequence[CanonicalEvent]) -> IngestSummary:
        """Store `events` atomically; duplicates (already stored or repeated in `events`) are counted, not stored.

        Only events not stored before update their users, so a replayed identify cannot undo a later one.
        A transaction that loses a deadlock or serialization race (PostgreSQL) is retried.
        """
        unique = _unique_by_message_id(events)
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                with self.database.write() as connection:
                    stored = existing_message_ids(connection, [e.message_id for e in unique])
                    new = [e for e in unique if e.message_id not in stored]
                    inserted = insert_events(connection, new)
                    sightings = self._sightings(connection, new)
                    upsert_users(connection, sightings)
                    # Users with a new persona: the rows that carry it follow (their users rows locked above).
                    follow_persona_changes(connection, [s.user_id for s in sightings if s.persona_changed])
                    record_first_occurrences(connection, [e for e in new if e.name in ENTITY_EVENTS])
                    # Experiments recompute assigned users whose events arrive (same transaction: none missed).
                    mark_assigned_users_dirty(connection, [e.user_id for e in new if e.user_id is not None])
                    triggered = (
                        react_to_events(connection, new, global_recontact_days=self.survey_recontact_days)
                        if self.survey_triggers
                        else []
                    )
                    # Last: it locks the markers of closed days these events fall on (activity_rollups).
                    mark_stale_days(connection, [e.timestamp for e in new], datetime.now(UTC))
                return IngestSummary(accepted=inserted, duplicates=len(events) - inserted, surveys=triggered)
            except DBAPIError as error:
                if attempt == RETRY_ATTEMPTS or not _is_transient(error):
                    raise
                time.sleep(RETRY_BASE_SECONDS * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def ingest_stream(
        self,
        events: Iterable[CanonicalEvent],
        *,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        on_progress: Callable[[int], None] | None = None,
    ) -> IngestSummary:
        """The bulk path: one transaction per chunk of `chunk_events`, memory bounded by the chunk size."""
        total = IngestSummary()
        for chunk in _chunks(events, chunk_events):
            total.add(self.ingest(chunk))
            if on_progress is not None:
                on_progress(len(chunk))
        return total

    def _sightings(self, connection: Connection, events: Sequence[CanonicalEvent]) -> list[UserSighting]:
        first: dict[str, CanonicalEvent] = {}
        last: dict[str, CanonicalEvent] = {}
        identifies: dict[str, list[CanonicalEvent]] = {}
        milestones: dict[str, dict[str, datetime]] = {}
        for event in events:
            if event.user_id is None:
                continue
            uid = event.user_id
            if uid not in first or event.timestamp < first[uid].timestamp:
                first[uid] = event
            if uid not in last or event.timestamp > last[uid].timestamp:
                last[uid] = event
            if event.type == "identify":
                identifies.setdefault(uid, []).append(event)
            if event.name in MILESTONE_EVENTS:
                earliest = milestones.setdefault(uid, {})
                name = MILESTONE_EVENTS[event.name]
                if name not in earliest or event.timestamp < earliest[name]:
                    earliest[name] = event.timestamp
        known = stored_users(connection, list(first))  # also locks the batch's users, in id order
        sightings = []
        for uid, first_event in first.items():
            stored = known.get(uid)
            traits: dict[str, object] = stored.traits if stored is not None else {}
            persona: str | None = None
            if uid in identifies:
                # Segment semantics: top-level keys of later calls win, keys not mentioned are kept.
                traits = dict(traits)
                for call in sorted(identifies[uid], key=lambda e: e.timestamp):
                    traits.update(call.traits)
                persona = self.personas.determine(traits)
            # upsert_users keeps the stored persona when the batch determines none (or only "unassigned"). A user
            # not stored yet counts as changed: a concurrent batch may be inserting them, with rows of their own.
            persona_changed = persona not in (None, UNASSIGNED_PERSONA) and (
                stored is None or persona != stored.persona
            )
            sightings.append(
                UserSighting(
                    uid, first_event.timestamp, last[uid].timestamp, persona=persona, traits=traits,
                    signed_up_at=milestones.get(uid, {}).get("signed_up_at"),
                    first_report_at=milestones.get(uid, {}).get("first_report_at"),
                    subscribed_at=milestones.get(uid, {}).get("subscribed_at"),
                    persona_changed=persona_changed,
                )
            )  # fmt: skip
        return sightings


def _unique_by_message_id(events: Sequence[CanonicalEvent]) -> list[CanonicalEvent]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            unique.append(event)
    return unique


def _chunks(events: Iterable[CanonicalEvent], size: int) -> Iterator[list[CanonicalEvent]]:
    iterator = iter(events)
    while chunk := list(islice(iterator, size)):
        yield chunk

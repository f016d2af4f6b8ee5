"""Per report and per campaign, the first time each of its events happened (and who sent it), kept by ingestion.

Report accuracy and renewal success decide each report's or campaign's outcome from a couple of instants: the
first report_sent and report_corrected of a report, the first campaign_ended and sponsor_renewed of a campaign.
Keeping those instants per entity as events arrive lets the metrics read one index range per window instead of
grouping every such event by a JSON property. Earliest wins, so replays, out-of-order arrival and concurrent
writers all converge on the same row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

from store.models import UNASSIGNED_PERSONA, CampaignRow, ReportRow, UserRow
from store.sql import insert_for

CORRECTION_WINDOW = timedelta(
    days=7
)  # a correction within this long of the first send marks a report inaccurate


class EntityEvent(Protocol):
    """What the upserts read of an event (tools.events.model.CanonicalEvent satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Firsts:
    """An entity table: its key (also the event property naming the entity) and, per event name, the column
    keeping its first time and the column keeping the user of that first event (None: not kept)."""

    table: Table
    key: str
    events: Mapping[str, tuple[str, str | None]]


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


REPORTS = Firsts(
    _table(ReportRow),
    "report_id",
    {"report_sent": ("sent_at", "user_id"), "report_corrected": ("corrected_at", None)},
)
CAMPAIGNS = Firsts(
    _table(CampaignRow),
    "campaign_id",
    {"campaign_ended": ("ended_at", "ended_user_id"), "sponsor_renewed": ("renewed_at", "renewed_user_id")},
)
ENTITY_EVENTS = frozenset(REPORTS.events) | frozenset(CAMPAIGNS.events)


def entity_id(properties: Mapping[str, Any], key: str) -> str | None:
    """The entity id as text: a JSON string or integer (as SQL reads `properties ->> key`)."""
    value = properties.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def record_first_occurrences(connection: Connection, events: Sequence[EntityEvent]) -> None:
    """Widen the reports and campaigns these events name, then re-decide the touched reports' outcomes."""
    touched_reports = _upsert(connection, REPORTS, events)
    if touched_reports:
        decide_report_outcomes(connection, touched_reports)
    _upsert(connection, CAMPAIGNS, events)


def _upsert(connection: Connection, firsts: Firsts, events: Iterable[EntityEvent]) -> list[str]:
    empty = {column: None for at, user in firsts.events.values() for column in (at, user) if column}
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.name not in firsts.events:
            continue
        key = entity_id(event.properties, firsts.key)
        if key is None:
            continue
        row = rows.setdefault(key, {firsts.key: key, **empty})
        at, user = firsts.events[event.name]
        if row[at] is None or event.timestamp < row[at]:
            row[at] = event.timestamp
            if user is not None:
                row[user] = event.user_id
    if not rows:
        return []
    statement = insert_for(connection, firsts.table)
    new, old = statement.excluded, firsts.table.c
    updates: dict[str, ColumnElement[Any]] = {}
    for at, user in firsts.events.values():
        earlier = and_(new[at].is_not(None), or_(old[at].is_(None), new[at] < old[at]))
        updates[at] = case((earlier, new[at]), else_=old[at])
        if user is not None:
            updates[user] = case((earlier, new[user]), else_=old[user])
    keys = sorted(rows)  # one lock order for concurrent writers
    connection.execute(
        statement.on_conflict_do_update(index_elements=[firsts.key], set_=updates), [rows[k] for k in keys]
    )
    return keys


def report_outcome(
    sent_at: datetime | None, corrected_at: datetime | None
) -> tuple[int | None, datetime | None]:
    """(accurate, decided_at): 0 at the first correction when it comes within 7 days of the first send (not
    before it), else 1 when the 7 days run out; (None, None) for a report never sent."""
    if sent_at is None:
        return None, None
    if corrected_at is not None and sent_at <= corrected_at < sent_at + CORRECTION_WINDOW:
        return 0, corrected_at
    return 1, sent_at + CORRECTION_WINDOW


def decide_report_outcomes(connection: Connection, report_ids: Sequence[str]) -> None:
    """Store these reports' outcomes from their first send and correction as stored now (read back after the
    upsert, which may have kept earlier instants from another batch)."""
    persona = func.coalesce(UserRow.persona, literal(UNASSIGNED_PERSONA))
    decided = [
        {"key": report_id, "accurate": accurate, "decided_at": decided_at, "sender_persona": sender_persona}
        for report_id, sent_at, corrected_at, sender_persona in connection.execute(
            select(ReportRow.report_id, ReportRow.sent_at, ReportRow.corrected_at, persona)
            .outerjoin(UserRow, UserRow.id == ReportRow.user_id)
            .where(ReportRow.report_id.in_(report_ids))
        )
        for accurate, decided_at in [report_outcome(sent_at, corrected_at)]
    ]
    if decided:
        connection.execute(
            update(ReportRow)
            .where(ReportRow.report_id == bindparam("key"))
            .values(
                accurate=bindparam("accurate"),
                decided_at=bindparam("decided_at"),
                persona=bindparam("sender_persona"),
            ),
            decided,
        )

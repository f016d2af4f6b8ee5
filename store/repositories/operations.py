"""The figures /metrics reads from the store at scrape time. Each query is cheap at any size: it reads a small
table (rules' label sets, retros' ids), or an index over the few rows still in flight (undelivered outbox messages,
escalations not yet resolved), or a catalogue estimate — never a count over the events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, text

from store.models import EscalationInstanceRow, EscalationRow, EventRow, OutboxRow, RetroRow

OPEN_ESCALATION_STATUSES = ("pending", "firing", "acknowledged")
UNDELIVERED_OUTBOX_STATUSES = ("pending", "failed")


@dataclass(frozen=True, slots=True)
class RetroUsage:
    """What a retro recorded of its LLM use (its result's `usage`), by model (None for the rules)."""

    retro_id: str
    model: str | None
    llm_calls: int
    input_tokens: int
    output_tokens: int


def events_stored_estimate(connection: Connection) -> int | None:
    """How many events are stored, without counting them: on SQLite the highest event id (events are never
    deleted and a skipped duplicate takes no id, so it is exact); on PostgreSQL the planner's estimate
    (pg_class.reltuples, refreshed by autovacuum and ANALYZE). None when PostgreSQL has no estimate yet."""
    if connection.dialect.name == "postgresql":
        estimate = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('events')")
        ).scalar()
        return None if estimate is None or estimate < 0 else int(estimate)
    return int(connection.execute(select(func.max(EventRow.id))).scalar() or 0)


def outbox_backlog(connection: Connection) -> list[tuple[str, str, int, datetime | None]]:
    """(channel, status, messages, oldest created_at) of undelivered messages (pending or failed)."""
    rows = connection.execute(
        select(OutboxRow.channel, OutboxRow.status, func.count(), func.min(OutboxRow.created_at))
        .where(OutboxRow.status.in_(UNDELIVERED_OUTBOX_STATUSES))
        .group_by(OutboxRow.channel, OutboxRow.status)
    ).all()
    return [(channel, status, int(n), oldest) for channel, status, n, oldest in rows]


def open_escalations(connection: Connection) -> list[tuple[str, str, int]]:
    """(status, severity, escalations) of escalations not resolved."""
    rows = connection.execute(
        select(EscalationRow.status, EscalationRow.severity, func.count())
        .where(EscalationRow.status.in_(OPEN_ESCALATION_STATUSES))
        .group_by(EscalationRow.status, EscalationRow.severity)
    ).all()
    return [(status, severity, int(n)) for status, severity, n in rows]


def escalation_label_sets(connection: Connection) -> list[tuple[str, int, datetime | None]]:
    """(state, label sets, latest evaluated_at) of the alert state machine: one row per (rule, persona, metric)
    a check has evaluated, stamped with the moment of the check that last evaluated it."""
    rows = connection.execute(
        select(
            EscalationInstanceRow.state, func.count(), func.max(EscalationInstanceRow.evaluated_at)
        ).group_by(EscalationInstanceRow.state)
    ).all()
    return [(state, int(n), latest) for state, n, latest in rows]


def label_sets_evaluated_at(connection: Connection, moment: datetime) -> int:
    """How many label sets the check at `moment` evaluated (those stamped with it)."""
    return int(
        connection.execute(select(func.count()).where(EscalationInstanceRow.evaluated_at == moment)).scalar()
        or 0
    )


def retros_by_status(connection: Connection) -> dict[str, int]:
    rows = connection.execute(select(RetroRow.status, func.count()).group_by(RetroRow.status)).all()
    return {status: int(n) for status, n in rows}


def retro_versions(connection: Connection) -> dict[str, datetime]:
    """Every retro's id and updated_at (no result documents read), so a caller re-reads only changed usage."""
    rows = connection.execute(select(RetroRow.id, RetroRow.updated_at)).all()
    return {retro_id: updated_at for retro_id, updated_at in rows}


def retro_usage(connection: Connection, retro_ids: Sequence[str]) -> list[RetroUsage]:
    """The recorded LLM usage of these retros (zeros for a retro without a result yet)."""
    if not retro_ids:
        return []
    result = RetroRow.result
    statement = select(
        RetroRow.id,
        result["model"].as_string(),
        result[("usage", "llm_calls")].as_integer(),
        result[("usage", "input_tokens")].as_integer(),
        result[("usage", "output_tokens")].as_integer(),
    ).where(RetroRow.id.in_(list(retro_ids)))
    return [
        RetroUsage(retro_id, model, int(calls or 0), int(tokens_in or 0), int(tokens_out or 0))
        for retro_id, model, calls, tokens_in, tokens_out in connection.execute(statement).all()
    ]

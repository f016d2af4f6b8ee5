"""The outbox: enqueue in the caller's transaction; claim due rows with a lease; record each attempt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from store.models import OutboxRow


def enqueue(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(OutboxRow).values(**values))


def claim_due(
    connection: Connection, now: datetime, lease: timedelta, limit: int, *, event_types: Sequence[str]
) -> list[RowMapping]:
    """Pending rows due at `now`, pushed `lease` into the future so a concurrent deliverer skips them.

    PostgreSQL skips rows another transaction holds (SKIP LOCKED); SQLite serialises writers, so the lease alone
    keeps two deliverers apart there.
    """
    statement = (
        select(OutboxRow.__table__)
        .where(
            OutboxRow.status == "pending",
            OutboxRow.next_attempt_at <= now,
            OutboxRow.event_type.in_(list(event_types)),
        )
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    rows = list(connection.execute(statement).mappings())
    if rows:
        connection.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([row["id"] for row in rows]))
            .values(next_attempt_at=now + lease)
        )
    return rows


def record_attempt(connection: Connection, message_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(
        update(OutboxRow).where(OutboxRow.id == message_id).values(attempts=OutboxRow.attempts + 1, **values)
    )


def message(connection: Connection, message_id: str) -> RowMapping | None:
    return (
        connection.execute(select(OutboxRow.__table__).where(OutboxRow.id == message_id))
        .mappings()
        .one_or_none()
    )


def counts_by_status(connection: Connection) -> dict[str, int]:
    rows = connection.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
    return {status: int(n) for status, n in rows}

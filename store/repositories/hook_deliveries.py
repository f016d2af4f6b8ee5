"""Webhook deliveries already acted on, by (source, delivery id): the replay protection of the signed doors.

A door claims a delivery before it acts; only the first claimant acts, every later delivery with the same id is a
no-op that may answer with the first one's recorded outcome. Generic: `source` is the door (github, deploy,
slack …), `delivery_id` its sender's id (X-GitHub-Delivery, webhook-id, or a key the door derives).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, select, update

from store.models import HookDeliveryRow
from store.sql import insert_for

MAX_SOURCE_CHARS = 32
MAX_DELIVERY_ID_CHARS = 128


def claim_delivery(
    connection: Connection,
    source: str,
    delivery_id: str,
    now: datetime,
    *,
    stale_after: timedelta | None = None,
) -> bool:
    """True when this caller is the first to see the delivery (it was recorded now) and should act on it.

    With `stale_after`, a claim that never recorded an outcome and is older than that (its process died while
    acting) is taken over, so the sender's retry completes the work instead of being ignored forever."""
    _check(source, delivery_id)
    # RETURNING, not rowcount: psycopg reports -1 for these inserts, so only a returned row says "inserted".
    inserted = connection.execute(
        insert_for(connection, HookDeliveryRow)
        .values(source=source, delivery_id=delivery_id, received_at=now)  # outcome: SQL NULL until recorded
        .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        .returning(HookDeliveryRow.delivery_id)
    )
    if inserted.first() is not None:
        return True
    if stale_after is None:
        return False
    h = HookDeliveryRow
    taken = connection.execute(
        update(h)
        .where(
            h.source == source,
            h.delivery_id == delivery_id,
            h.outcome.is_(None),
            h.received_at < now - stale_after,
        )
        .values(received_at=now)
    )
    return taken.rowcount == 1


def record_outcome(connection: Connection, source: str, delivery_id: str, outcome: Mapping[str, Any]) -> None:
    """What acting on the delivery produced; later deliveries with the same id answer with it."""
    h = HookDeliveryRow
    connection.execute(
        update(h).where(h.source == source, h.delivery_id == delivery_id).values(outcome=dict(outcome))
    )


def release_delivery(connection: Connection, source: str, delivery_id: str) -> None:
    """Forget a claim whose action failed before it recorded an outcome, so a retry of the delivery acts."""
    h = HookDeliveryRow
    connection.execute(delete(h).where(h.source == source, h.delivery_id == delivery_id, h.outcome.is_(None)))


def delivery(connection: Connection, source: str, delivery_id: str) -> RowMapping | None:
    h = HookDeliveryRow
    statement = select(h.__table__).where(h.source == source, h.delivery_id == delivery_id)
    return connection.execute(statement).mappings().one_or_none()


def _check(source: str, delivery_id: str) -> None:
    if not source or len(source) > MAX_SOURCE_CHARS:
        raise ValueError(f"source must be 1 to {MAX_SOURCE_CHARS} characters, got {source!r}")
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID_CHARS:
        raise ValueError(f"a delivery id must be 1 to {MAX_DELIVERY_ID_CHARS} characters")

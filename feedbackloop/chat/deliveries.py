"""What the chat doors remember in the `hook_deliveries` table, across processes and instances:

- source `slack`: each signed Slack request acted on, keyed by a hash of its timestamp and signature, so an exact
  replay inside the five-minute window is refused (rows older than the window are pruned: the signature check
  refuses those requests anyway);
- source `slack-approval`: each decision on a proposed backlog item (`<retro id>/<item id>` → approve or drop,
  and who clicked), so the first click on an item wins and the retro resumes once every item has a decision.

Insert-or-conflict on the primary key (source, delivery_id) decides which of two concurrent requests came first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from store.database import Database
from store.models import HookDeliveryRow

SLACK_SOURCE = "slack"
APPROVAL_SOURCE = "slack-approval"
REPLAY_WINDOW = timedelta(minutes=5)


def remember_slack_request(database: Database, timestamp: str, signature: str, now: datetime) -> bool:
    """True the first time this (timestamp, signature) is seen; False for a replay."""
    delivery_id = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
    with database.write() as connection:
        connection.execute(
            delete(HookDeliveryRow).where(
                HookDeliveryRow.source == SLACK_SOURCE,
                HookDeliveryRow.received_at < now - 2 * REPLAY_WINDOW,
            )
        )
        return _insert_once(connection, SLACK_SOURCE, delivery_id, now, None)


def record_decision(
    database: Database, retro_id: str, item_id: str, decision: Mapping[str, Any], now: datetime
) -> bool:
    """Record the decision on one proposed item; False when the item was decided already (the first one stands)."""
    with database.write() as connection:
        return _insert_once(connection, APPROVAL_SOURCE, _decision_id(retro_id, item_id), now, dict(decision))


def decisions(database: Database, retro_id: str) -> dict[str, dict[str, Any]]:
    """Item id → its decision ({"decision": "approve" | "drop", "user": …}) for one retro."""
    prefix = _decision_id(retro_id, "")
    statement = select(HookDeliveryRow.delivery_id, HookDeliveryRow.outcome).where(
        HookDeliveryRow.source == APPROVAL_SOURCE,
        HookDeliveryRow.delivery_id.startswith(prefix, autoescape=True),
    )
    with database.read() as connection:
        rows = connection.execute(statement).all()
    return {row.delivery_id[len(prefix) :]: dict(row.outcome or {}) for row in rows}


def _decision_id(retro_id: str, item_id: str) -> str:
    return f"{retro_id}/{item_id}"


def _insert_once(
    connection: Connection, source: str, delivery_id: str, now: datetime, outcome: dict[str, Any] | None
) -> bool:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(HookDeliveryRow)
        .values(source=source, delivery_id=delivery_id, received_at=now, outcome=outcome)
        .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        .returning(HookDeliveryRow.delivery_id)
    )
    return connection.execute(statement).first() is not None

"""What the chat doors remember in the `hook_deliveries` table, across processes and instances:

- source `slack`: each signed Slack request acted on, keyed by a hash of its timestamp and signature, so an exact
  replay inside the five-minute window is refused (rows older than the window are pruned: the signature check
  refuses those requests anyway);
- source `slack-approval`: each decision on a proposed backlog item (`<retro id>/<item id>` → approve or drop,
  and who clicked), so the first click on an item wins and the retro resumes once every item has a decision.

store.repositories.hook_deliveries claims each one (insert-or-conflict on the primary key (source, delivery_id)),
which decides which of two concurrent requests came first, on any number of processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from store.database import Database
from store.models import HookDeliveryRow
from store.repositories import hook_deliveries

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
        return hook_deliveries.claim_delivery(connection, SLACK_SOURCE, delivery_id, now)


def record_decision(
    database: Database, retro_id: str, item_id: str, decision: Mapping[str, Any], now: datetime
) -> bool:
    """Record the decision on one proposed item; False when the item was decided already (the first one stands)."""
    delivery_id = _decision_id(retro_id, item_id)
    with (
        database.write() as connection
    ):  # claim and outcome in one transaction: nobody sees a claim without it
        if not hook_deliveries.claim_delivery(connection, APPROVAL_SOURCE, delivery_id, now):
            return False
        hook_deliveries.record_outcome(connection, APPROVAL_SOURCE, delivery_id, decision)
        return True


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

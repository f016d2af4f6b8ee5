"""Small helpers the tests share: store snapshots to prove "nothing changed"."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from store.database import Database


def store_snapshot(database: Database) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row of our tables, to compare before/after a rejected request."""
    snapshot: dict[str, tuple[int, str]] = {}
    with database.read() as connection:
        for table, order in (
            ("events", "message_id"),
            ("users", "id"),
            ("metric_observations", "id"),
            ("experiments", "id"),
            ("experiment_phases", "experiment_id, phase"),
            ("experiment_assignments", "experiment_id, user_id"),
        ):
            rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).all()
            digest = hashlib.sha256(repr([tuple(map(str, row)) for row in rows]).encode()).hexdigest()
            snapshot[table] = (len(rows), digest)
    return snapshot

"""events: (timestamp, user_id, name) covering index for window scans

Per-active-user metrics and KPIs scan every event of a window grouped by user and day; with user_id and name in
the index the database answers them from the index alone instead of visiting each row. It supersedes the plain
timestamp index (its prefix).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_timestamp_user_id_name", "events", ["timestamp", "user_id", "name"])
    op.drop_index("ix_events_timestamp", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_timestamp", "events", ["timestamp"])
    op.drop_index("ix_events_timestamp_user_id_name", table_name="events")

"""users, events, metric_observations

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("traits", JSONDocument, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_persona", "users", ["persona"])

    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("anonymous_id", sa.String(255), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("properties", JSONDocument, nullable=False),
        sa.Column("context", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("message_id", name="uq_events_message_id"),
    )
    op.create_index("ix_events_name_timestamp", "events", ["name", "timestamp"])
    op.create_index("ix_events_user_id_timestamp", "events", ["user_id", "timestamp"])
    op.create_index("ix_events_timestamp", "events", ["timestamp"])

    op.create_table(
        "metric_observations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("dims", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_observations"),
    )
    op.create_index(
        "ix_metric_observations_persona_observed_at", "metric_observations", ["persona", "observed_at"]
    )
    op.create_index(
        "ix_metric_observations_category_name_observed_at",
        "metric_observations",
        ["category", "name", "observed_at"],
    )
    op.create_index(
        "ix_metric_observations_user_id_observed_at", "metric_observations", ["user_id", "observed_at"]
    )


def downgrade() -> None:
    op.drop_table("metric_observations")
    op.drop_table("events")
    op.drop_table("users")

"""escalation_rules, escalation_instances, escalations, escalation_history, silences, notification_groups

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "escalation_rules",
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name="pk_escalation_rules"),
    )
    op.create_table(
        "escalation_instances",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("labels", JSONDocument, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active_since", UTCDateTime(), nullable=True),
        sa.Column("last_true_at", UTCDateTime(), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("escalation_id", sa.String(64), nullable=True),
        sa.Column("evaluated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_escalation_instances"),
    )
    op.create_index("ix_escalation_instances_rule_id", "escalation_instances", ["rule_id"])
    op.create_table(
        "escalations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", JSONDocument, nullable=False),
        sa.Column("affected_personas", JSONDocument, nullable=False),
        sa.Column("evidence", JSONDocument, nullable=False),
        sa.Column("related", JSONDocument, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("firing_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("resolution_notes", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
    )
    op.create_index("ix_escalations_fingerprint", "escalations", ["fingerprint"])
    op.create_index("ix_escalations_status_opened_at", "escalations", ["status", "opened_at"])
    op.create_table(
        "escalation_history",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_history"),
    )
    op.create_index("ix_escalation_history_escalation_id", "escalation_history", ["escalation_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("matchers", JSONDocument, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "notification_groups",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("labels", JSONDocument, nullable=False),
        sa.Column("first_active_at", UTCDateTime(), nullable=True),
        sa.Column("last_sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_digest", sa.String(64), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("channel", "group_key", name="pk_notification_groups"),
    )


def downgrade() -> None:
    for table in (
        "notification_groups", "silences", "escalation_history", "escalations", "escalation_instances",
        "escalation_rules",
    ):  # fmt: skip
        op.drop_table(table)

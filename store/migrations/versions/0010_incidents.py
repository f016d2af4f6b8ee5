"""incidents, incident_escalations (the escalation agent's triage)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("escalation_ids", JSONDocument, nullable=False),
        sa.Column("triage", JSONDocument, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("resolution_summary", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_updated_at", "incidents", ["updated_at"])
    op.create_table(
        "incident_escalations",
        sa.Column("escalation_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("escalation_id", name="pk_incident_escalations"),
    )
    op.create_index("ix_incident_escalations_incident_id", "incident_escalations", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_escalations")
    op.drop_index("ix_incidents_updated_at", table_name="incidents")
    op.drop_table("incidents")

"""experiments, experiment_phases, experiment_assignments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("definition", JSONDocument, nullable=False),
        sa.Column("current_phase", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(300), nullable=True),
        sa.Column("decision_notes", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("key", name="uq_experiments_key"),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_table(
        "experiment_phases",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(255), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("weights", JSONDocument, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_experiment_phases_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "phase", name="pk_experiment_phases"),
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_experiment_assignments_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name="pk_experiment_assignments"),
    )
    op.create_index(
        "ix_experiment_assignments_experiment_id_phase_variant",
        "experiment_assignments",
        ["experiment_id", "phase", "variant"],
    )


def downgrade() -> None:
    op.drop_table("experiment_assignments")
    op.drop_table("experiment_phases")
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_table("experiments")

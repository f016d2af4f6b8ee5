"""experiment_unit_values, experiment_metric_states, experiment_dirty_users; assignments by user

Per-user metric values kept up to date incrementally: ingestion marks assigned users whose events arrive as dirty
(in the same transaction), analysis recomputes only those users, then aggregates from a covering index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VALUES_INDEX = "ix_experiment_unit_values_covering"


def _experiment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["experiment_id"], ["experiments.id"], name=f"fk_{table}_experiment_id_experiments", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_index("ix_experiment_assignments_user_id", "experiment_assignments", ["user_id"])
    op.create_table(
        "experiment_dirty_users",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        _experiment_fk("experiment_dirty_users"),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name="pk_experiment_dirty_users"),
    )
    op.create_table(
        "experiment_metric_states",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(64), nullable=False),
        sa.Column("definition", JSONDocument, nullable=False),
        _experiment_fk("experiment_metric_states"),
        sa.PrimaryKeyConstraint("experiment_id", "phase", "metric_key", name="pk_experiment_metric_states"),
    )
    op.create_table(
        "experiment_unit_values",
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("metric_key", sa.String(64), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("denominator", sa.Float(), nullable=False),
        sa.Column("covariate", sa.Float(), nullable=False),
        _experiment_fk("experiment_unit_values"),
        sa.PrimaryKeyConstraint(
            "experiment_id", "phase", "user_id", "metric_key", name="pk_experiment_unit_values"
        ),
    )
    op.create_index(
        VALUES_INDEX,
        "experiment_unit_values",
        ["experiment_id", "phase", "metric_key", "variant", "value", "denominator", "covariate"],
    )


def downgrade() -> None:
    op.drop_index(VALUES_INDEX, table_name="experiment_unit_values")
    op.drop_table("experiment_unit_values")
    op.drop_table("experiment_metric_states")
    op.drop_table("experiment_dirty_users")
    op.drop_index("ix_experiment_assignments_user_id", table_name="experiment_assignments")

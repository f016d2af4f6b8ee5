"""experiment_assignments: (experiment_id, phase, assigned_at) index

The first and last exposure of a phase (traffic per day for the power status) become two index probes instead of
a scan of every assignment of the phase.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_experiment_assignments_experiment_id_phase_assigned_at"


def upgrade() -> None:
    op.create_index(INDEX, "experiment_assignments", ["experiment_id", "phase", "assigned_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="experiment_assignments")

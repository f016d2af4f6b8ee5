"""retros.run_owner, retros.run_claimed_at: one process runs a retro at a time

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("retros") as batch:
        batch.add_column(sa.Column("run_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("run_claimed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retros") as batch:
        batch.drop_column("run_claimed_at")
        batch.drop_column("run_owner")

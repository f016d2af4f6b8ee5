"""api_keys (hashed, scoped), hook_deliveries (replay protection of webhooks), retros.run_after (scheduled retros)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_table(
        "hook_deliveries",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", JSONDocument, nullable=True),
        sa.PrimaryKeyConstraint("source", "delivery_id", name="pk_hook_deliveries"),
    )
    with op.batch_alter_table("retros") as batch:
        batch.add_column(sa.Column("run_after", UTCDateTime(), nullable=True))
    op.create_index("ix_retros_status_run_after", "retros", ["status", "run_after"])


def downgrade() -> None:
    op.drop_index("ix_retros_status_run_after", table_name="retros")
    with op.batch_alter_table("retros") as batch:
        batch.drop_column("run_after")
    op.drop_table("hook_deliveries")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")

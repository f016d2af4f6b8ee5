"""Activity rollups: per (UTC day, user) event counts kept by the worker, and each user's first signup and first
report kept by ingestion

The dashboard's per-active-user figures (active users, errors, tickets, tasks, feature reuse, payments) read
sealed days from daily_user_activity instead of every event of the window; the days still open (the window's
partial first and last day, days not rolled up yet, days a late event made stale) are read from events, so the
figures equal the raw query's at every moment. Time to value and conversion read users.signed_up_at,
users.first_report_at and users.subscribed_at instead of grouping every report, signup and subscription start. Both milestones are backfilled here; the
rollup days are filled by the worker (`feedbackloop rollups refresh` does it at once).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNT_COLUMNS = ("events", "errors", "tickets", "tasks_completed", "tasks_automated", "tasks_failed",
                 "feature_uses", "payments")  # fmt: skip
MILESTONE_BACKFILL = """
UPDATE users SET {column} = first.at
FROM (SELECT user_id, min(timestamp) AS at FROM events WHERE name = '{event}' AND user_id IS NOT NULL
      GROUP BY user_id) AS first
WHERE first.user_id = users.id
"""  # nosec B608 - constant column and event names, no values


# Each report's first send (and its sender) and first correction; report ids as JSON text, as ingestion keeps them.
REPORTS_BACKFILL = """
INSERT INTO reports (report_id, user_id, sent_at, corrected_at)
SELECT report_id, min(CASE WHEN name = 'report_sent' AND first_of_kind = 1 THEN user_id END),
       min(CASE WHEN name = 'report_sent' THEN timestamp END),
       min(CASE WHEN name = 'report_corrected' THEN timestamp END)
FROM (SELECT {report_id} AS report_id, name, user_id, timestamp,
             row_number() OVER (PARTITION BY {report_id}, name ORDER BY timestamp, id) AS first_of_kind
      FROM events WHERE name IN ('report_sent', 'report_corrected')) AS report_events
WHERE report_id IS NOT NULL
GROUP BY report_id
"""  # nosec B608 - constant SQL
REPORTS_BACKFILL_SQLITE = REPORTS_BACKFILL.format(
    report_id="(CASE WHEN json_type(properties, '$.report_id') IN ('text', 'integer') "
    "THEN CAST(json_extract(properties, '$.report_id') AS TEXT) END)"
)
REPORTS_BACKFILL_POSTGRESQL = REPORTS_BACKFILL.format(
    report_id="(CASE WHEN jsonb_typeof(properties -> 'report_id') = 'string' OR (jsonb_typeof(properties -> 'report_id') "
    "= 'number' AND properties ->> 'report_id' ~ '^-?[0-9]+$') THEN properties ->> 'report_id' END)"
)


# Each campaign's first end and first renewal, with the user of each (the earliest event's, by time then id).
CAMPAIGNS_BACKFILL = """
INSERT INTO campaigns (campaign_id, ended_at, ended_user_id, renewed_at, renewed_user_id)
SELECT campaign_id,
       min(CASE WHEN name = 'campaign_ended' THEN timestamp END),
       min(CASE WHEN name = 'campaign_ended' AND first_of_kind = 1 THEN user_id END),
       min(CASE WHEN name = 'sponsor_renewed' THEN timestamp END),
       min(CASE WHEN name = 'sponsor_renewed' AND first_of_kind = 1 THEN user_id END)
FROM (SELECT {campaign_id} AS campaign_id, name, user_id, timestamp,
             row_number() OVER (PARTITION BY {campaign_id}, name ORDER BY timestamp, id) AS first_of_kind
      FROM events WHERE name IN ('campaign_ended', 'sponsor_renewed')) AS campaign_events
WHERE campaign_id IS NOT NULL
GROUP BY campaign_id
"""  # nosec B608 - constant SQL
CAMPAIGNS_BACKFILL_SQLITE = CAMPAIGNS_BACKFILL.format(
    campaign_id="(CASE WHEN json_type(properties, '$.campaign_id') IN ('text', 'integer') "
    "THEN CAST(json_extract(properties, '$.campaign_id') AS TEXT) END)"
)
CAMPAIGNS_BACKFILL_POSTGRESQL = CAMPAIGNS_BACKFILL.format(
    campaign_id="(CASE WHEN jsonb_typeof(properties -> 'campaign_id') = 'string' OR (jsonb_typeof(properties -> 'campaign_id') "
    "= 'number' AND properties ->> 'campaign_id' ~ '^-?[0-9]+$') THEN properties ->> 'campaign_id' END)"
)
# Each report counts in its sender's persona (kept up to date by ingestion when a persona changes).
REPORTS_PERSONA = """
UPDATE reports SET persona = coalesce((SELECT persona FROM users WHERE users.id = reports.user_id), 'unassigned')
"""
CORRECTION_WINDOW = timedelta(days=7)
REPORTS = sa.table(
    "reports",
    sa.column("report_id", sa.String()),
    sa.column("sent_at", UTCDateTime()),
    sa.column("corrected_at", UTCDateTime()),
    sa.column("accurate", sa.Integer()),
    sa.column("decided_at", UTCDateTime()),
)


def _decide_outcomes(connection: sa.Connection) -> None:
    """Each sent report's outcome: 0 at a first correction within 7 days of the first send, else 1 at send + 7 d
    (the rule store.repositories.first_occurrences applies as events arrive; written out here so this migration
    never changes)."""
    decided = []
    for report_id, sent_at, corrected_at in connection.execute(
        sa.select(REPORTS.c.report_id, REPORTS.c.sent_at, REPORTS.c.corrected_at).where(
            REPORTS.c.sent_at.is_not(None)
        )
    ):
        if corrected_at is not None and sent_at <= corrected_at < sent_at + CORRECTION_WINDOW:
            decided.append({"key": report_id, "accurate": 0, "decided_at": corrected_at})
        else:
            decided.append({"key": report_id, "accurate": 1, "decided_at": sent_at + CORRECTION_WINDOW})
    if decided:
        connection.execute(
            REPORTS.update()
            .where(REPORTS.c.report_id == sa.bindparam("key"))
            .values(accurate=sa.bindparam("accurate"), decided_at=sa.bindparam("decided_at")),
            decided,
        )


def upgrade() -> None:
    connection = op.get_bind()
    op.create_table(
        "daily_user_activity",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNT_COLUMNS),
        sa.Column("revenue_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("day", "user_id", name="pk_daily_user_activity"),
        sqlite_with_rowid=False,  # rows stored in (day, user_id) order: a window is one sequential range
    )
    op.create_index("ix_daily_user_activity_user_id", "daily_user_activity", ["user_id"])  # persona changes
    op.create_table(
        "activity_rollup_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("rolled_up_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_activity_rollup_days"),
    )
    op.create_table(
        "activity_stale_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("touches", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_activity_stale_days"),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("signed_up_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("first_report_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("subscribed_at", UTCDateTime(), nullable=True))
    op.create_index("ix_users_first_report_at", "users", ["first_report_at"])
    op.create_index("ix_users_signed_up_at", "users", ["signed_up_at"])
    # Covering: every per-persona figure looks users up by id for their persona (SQLite uses it once `users` is
    # analysed, which the rollup refresh does).
    op.create_index("ix_users_id_persona", "users", ["id", "persona"])
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("persona", sa.String(64), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("corrected_at", UTCDateTime(), nullable=True),
        sa.Column("accurate", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("report_id", name="pk_reports"),
    )
    # Covering: report accuracy reads (decided_at, accurate, persona, report_id) from the index alone.
    op.create_index(
        "ix_reports_decided_at_accurate_persona_report_id", "reports", ["decided_at", "accurate", "persona", "report_id"]
    )
    op.create_index("ix_reports_user_id", "reports", ["user_id"])  # persona changes
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(255), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_user_id", sa.String(255), nullable=True),
        sa.Column("renewed_at", UTCDateTime(), nullable=True),
        sa.Column("renewed_user_id", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_ended_at", "campaigns", ["ended_at"])
    op.create_index("ix_campaigns_renewed_at", "campaigns", ["renewed_at"])
    connection.exec_driver_sql(
        CAMPAIGNS_BACKFILL_SQLITE if connection.dialect.name == "sqlite" else CAMPAIGNS_BACKFILL_POSTGRESQL
    )
    connection.exec_driver_sql(
        REPORTS_BACKFILL_SQLITE if connection.dialect.name == "sqlite" else REPORTS_BACKFILL_POSTGRESQL
    )
    _decide_outcomes(connection)
    op.execute(REPORTS_PERSONA)
    op.execute(MILESTONE_BACKFILL.format(column="signed_up_at", event="user_signed_up"))
    op.execute(MILESTONE_BACKFILL.format(column="first_report_at", event="report_generated"))
    op.execute(MILESTONE_BACKFILL.format(column="subscribed_at", event="subscription_started"))


def downgrade() -> None:
    op.drop_table("campaigns")
    op.drop_table("reports")
    op.drop_index("ix_users_id_persona", table_name="users")
    op.drop_index("ix_users_first_report_at", table_name="users")
    op.drop_index("ix_users_signed_up_at", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("subscribed_at")
        batch.drop_column("first_report_at")
        batch.drop_column("signed_up_at")
    op.drop_table("activity_stale_days")
    op.drop_table("activity_rollup_days")
    op.drop_table("daily_user_activity")

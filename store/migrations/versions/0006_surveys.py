"""surveys, survey_displays, survey_responses, survey_answers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONDocument, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("definition", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
    )
    op.create_index("ix_surveys_trigger", "surveys", ["trigger"])
    op.create_table(
        "survey_displays",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("survey_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("context", JSONDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("triggered_at", UTCDateTime(), nullable=False),
        sa.Column("show_after", UTCDateTime(), nullable=False),
        sa.Column("shown_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name="fk_survey_displays_survey_id_surveys", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_displays"),
    )
    op.create_index("ix_survey_displays_user_id_show_after", "survey_displays", ["user_id", "show_after"])
    op.create_index("ix_survey_displays_survey_id_status", "survey_displays", ["survey_id", "status"])
    op.create_index("ix_survey_displays_triggered_at", "survey_displays", ["triggered_at"])
    op.create_table(
        "survey_responses",
        sa.Column("display_id", sa.String(64), nullable=False),
        sa.Column("survey_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("answers", JSONDocument, nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["display_id"],
            ["survey_displays.id"],
            name="fk_survey_responses_display_id_survey_displays",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("display_id", name="pk_survey_responses"),
    )
    op.create_index(
        "ix_survey_responses_survey_id_submitted_at", "survey_responses", ["survey_id", "submitted_at"]
    )
    op.create_table(
        "survey_answers",
        sa.Column("display_id", sa.String(64), nullable=False),
        sa.Column("question_id", sa.String(64), nullable=False),
        sa.Column("choice_index", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.String(100), nullable=False),
        sa.Column("question_type", sa.String(16), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["display_id"],
            ["survey_responses.display_id"],
            name="fk_survey_answers_display_id_survey_responses",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("display_id", "question_id", "choice_index", name="pk_survey_answers"),
    )
    op.create_index(
        "ix_survey_answers_question_type_answered_at", "survey_answers", ["question_type", "answered_at"]
    )
    op.create_index("ix_survey_answers_survey_id_question_id", "survey_answers", ["survey_id", "question_id"])


def downgrade() -> None:
    op.drop_table("survey_answers")
    op.drop_table("survey_responses")
    op.drop_table("survey_displays")
    op.drop_table("surveys")

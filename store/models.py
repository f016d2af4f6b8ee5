"""SQLAlchemy 2.0 typed models. Migrations in store/migrations mirror these; a test checks they agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}

# The persona of users nothing has placed yet (no persona trait, no matching rule).
UNASSIGNED_PERSONA = "unassigned"

# BIGINT ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY to get its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    """A user of the host product, as known from identify calls and their events."""

    __tablename__ = "users"
    # Covering: per-persona figures look users up by id for their persona (SQLite: once `users` is analysed).
    __table_args__ = (Index("ix_users_id_persona", "id", "persona"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA, index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # Milestones kept by ingestion (earliest wins), so time to value needs no scan of reports and signups.
    signed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    first_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    subscribed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True
    )  # first subscription_started


class ReportRow(Base):
    """A report as its events describe it, kept by ingestion (earliest wins): who sent it first and when, and its
    first correction. Report accuracy reads these instead of grouping every report_sent and report_corrected."""

    __tablename__ = "reports"
    # Covering: report accuracy reads (decided_at, accurate, persona, report_id) from the index alone.
    __table_args__ = (
        Index(
            "ix_reports_decided_at_accurate_persona_report_id",
            "decided_at",
            "accurate",
            "persona",
            "report_id",
        ),
    )

    report_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(
        String(255), nullable=True, index=True
    )  # index: persona changes
    persona: Mapped[str | None] = mapped_column(
        String(64), nullable=True
    )  # the sender's, kept current by ingestion
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The outcome report accuracy counts (1 accurate, 0 corrected within 7 days of the first send) and when it
    # was decided (the correction, or the send + 7 days); NULL until the report has been sent.
    accurate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignRow(Base):
    """A campaign as its events describe it, kept by ingestion (earliest wins): its first campaign_ended and first
    sponsor_renewed, each with the user who sent it. Renewal success reads these instead of grouping events."""

    __tablename__ = "campaigns"

    campaign_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    ended_user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    renewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    renewed_user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class DailyUserActivityRow(Base):
    """One user's events of one UTC day, counted by kind: the rollup the per-active-user figures read for sealed
    days (store.repositories.activity_rollups). Rows exist only for days in activity_rollup_days."""

    __tablename__ = "daily_user_activity"
    __table_args__ = ({"sqlite_with_rowid": False},)  # stored in (day, user_id) order: a window is one range

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)  # index: persona changes
    persona: Mapped[str] = mapped_column(String(64))  # the user's persona, kept current by ingestion
    events: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    tickets: Mapped[int] = mapped_column(Integer)
    tasks_completed: Mapped[int] = mapped_column(Integer)
    tasks_automated: Mapped[int] = mapped_column(Integer)
    tasks_failed: Mapped[int] = mapped_column(Integer)
    feature_uses: Mapped[int] = mapped_column(Integer)
    payments: Mapped[int] = mapped_column(Integer)
    revenue_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class ActivityRollupDayRow(Base):
    """A UTC day whose daily_user_activity rows were computed (a day without events has none but is listed)."""

    __tablename__ = "activity_rollup_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    rolled_up_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActivityStaleDayRow(Base):
    """A closed UTC day that received events after (or while) it was rolled up: read from events until the
    worker rolls it up again. `touches` is always 1: it served an earlier version whose upsert locked the row
    (ingestion now takes an advisory lock per day instead, see mark_stale_days)."""

    __tablename__ = "activity_stale_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    touches: Mapped[int] = mapped_column(BigInteger)


class EventRow(Base):
    """One ingested event (Segment spec). message_id is the idempotency key: a replay inserts nothing."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_name_timestamp", "name", "timestamp"),
        Index("ix_events_user_id_timestamp", "user_id", "timestamp"),
        Index("ix_events_timestamp_user_id_name", "timestamp", "user_id", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class MetricObservationRow(Base):
    """An explicit metric value (e.g. a time-to-value measured by the host app), tagged with the persona."""

    __tablename__ = "metric_observations"
    __table_args__ = (
        Index("ix_metric_observations_persona_observed_at", "persona", "observed_at"),
        Index("ix_metric_observations_category_name_observed_at", "category", "name", "observed_at"),
        Index("ix_metric_observations_user_id_observed_at", "user_id", "observed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dims: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class ExperimentRow(Base):
    """An experiment's definition and lifecycle. `definition` holds variants, metrics, targeting and settings."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    current_phase: Mapped[int] = mapped_column(Integer, default=0)
    decision: Mapped[str | None] = mapped_column(String(300))
    decision_notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExperimentPhaseRow(Base):
    """One period of a running experiment with fixed weights, coverage and seed; a change starts the next."""

    __tablename__ = "experiment_phases"

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    seed: Mapped[str] = mapped_column(String(255))
    coverage: Mapped[float] = mapped_column(Float)
    weights: Mapped[list[float]] = mapped_column(JSONDocument)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExperimentAssignmentRow(Base):
    """A user's sticky assignment: the first one stored wins (primary key), re-drawn only by a new phase.

    `assigned_at` is the first exposure; experiment metrics count the user's events from then on.
    """

    __tablename__ = "experiment_assignments"
    __table_args__ = (
        Index("ix_experiment_assignments_experiment_id_phase_variant", "experiment_id", "phase", "variant"),
        Index("ix_experiment_assignments_user_id", "user_id"),  # ingestion marks assigned users' new events
        Index(
            "ix_experiment_assignments_experiment_id_phase_assigned_at",
            "experiment_id",
            "phase",
            "assigned_at",
        ),
    )

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    phase: Mapped[int] = mapped_column(Integer)
    variant: Mapped[int] = mapped_column(Integer)
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExperimentDirtyUserRow(Base):
    """An assigned user whose experiment metric values must be recomputed: new events or a new assignment.

    Written in the same transaction as the events (or the assignment), so no change can slip past a refresh.
    """

    __tablename__ = "experiment_dirty_users"

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class ExperimentMetricStateRow(Base):
    """A metric whose per-user values are kept for an experiment phase; `definition` says how to recompute them."""

    __tablename__ = "experiment_metric_states"

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class ExperimentUnitValueRow(Base):
    """One exposed user's value of one metric (only users with something to add: zeros are implied).

    Analysis sums these per variant from the covering index and reads quantiles at ranks from it, instead of
    joining every exposed user's events again.
    """

    __tablename__ = "experiment_unit_values"
    __table_args__ = (
        Index(
            "ix_experiment_unit_values_covering",
            "experiment_id", "phase", "metric_key", "variant", "value", "denominator", "covariate",
        ),
    )  # fmt: skip

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    variant: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    denominator: Mapped[float] = mapped_column(Float, default=0.0)
    covariate: Mapped[float] = mapped_column(Float, default=0.0)


class ExperimentVariantSumsRow(Base):
    """A metric's unit count and sums of the unit values of one variant: what analysis needs of the unit rows.

    The refresh keeps it by deltas (subtract the claimed users' old rows, add their new ones) in the transaction
    that replaces those rows, so analysis reads a few rows instead of aggregating every unit row. A missing row
    for a (phase, metric) with unit rows is rebuilt from them (experiment_stats).
    """

    __tablename__ = "experiment_variant_sums"

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    variant: Mapped[int] = mapped_column(Integer, primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger)
    value_sum: Mapped[float] = mapped_column(Float)
    value_sum_squares: Mapped[float] = mapped_column(Float)
    denominator_sum: Mapped[float] = mapped_column(Float)
    denominator_sum_squares: Mapped[float] = mapped_column(Float)
    value_denominator_sum: Mapped[float] = mapped_column(Float)
    covariate_sum: Mapped[float] = mapped_column(Float)
    covariate_sum_squares: Mapped[float] = mapped_column(Float)
    value_covariate_sum: Mapped[float] = mapped_column(Float)


class SurveyRow(Base):
    """A survey definition. `definition` holds questions, targeting, throttling and translations."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(255), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SurveyDisplayRow(Base):
    """One time a survey was put in front of a user (or queued for them): the unit throttling counts.

    status: pending (triggered, waiting for its delay or for the client to show it) → shown → answered or
    dismissed. `show_after` is the trigger time plus the survey's delay.
    """

    __tablename__ = "survey_displays"
    __table_args__ = (
        Index("ix_survey_displays_user_id_show_after", "user_id", "show_after"),
        Index("ix_survey_displays_survey_id_status", "survey_id", "status"),
        Index("ix_survey_displays_triggered_at", "triggered_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100), ForeignKey("surveys.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(255))
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA)
    trigger: Mapped[str] = mapped_column(String(255))
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    show_after: Mapped[datetime] = mapped_column(UTCDateTime)
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # answered or dismissed


class SurveyResponseRow(Base):
    """The response to one display (its idempotency key). `partial` until every required question is answered."""

    __tablename__ = "survey_responses"
    __table_args__ = (Index("ix_survey_responses_survey_id_submitted_at", "survey_id", "submitted_at"),)

    display_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("survey_displays.id", ondelete="CASCADE"), primary_key=True
    )
    survey_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(255))
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SurveyAnswerRow(Base):
    """One answered question, flattened so NPS, ratings and distributions aggregate in SQL.

    A multi-choice answer is one row per chosen option (`choice_index` keeps them apart).
    """

    __tablename__ = "survey_answers"
    __table_args__ = (
        Index("ix_survey_answers_question_type_answered_at", "question_type", "answered_at"),
        Index("ix_survey_answers_survey_id_question_id", "survey_id", "question_id"),
    )

    display_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("survey_responses.display_id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    choice_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100))
    question_type: Mapped[str] = mapped_column(String(16))
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA)
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A message to deliver (a signed webhook), written in the transaction of the change it reports.

    A process that dies after the commit loses nothing: delivery reads due rows, and a row is only marked
    delivered after the receiver accepted it (so a receiver may see a message twice, never zero times; the
    `webhook-id` header lets it drop repeats).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))  # webhook
    event_type: Mapped[str] = mapped_column(String(64))  # e.g. survey.response.completed
    destination: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class EscalationRuleRow(Base):
    """A stored escalation rule; `definition` is the validated rule as JSON."""

    __tablename__ = "escalation_rules"

    rule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EscalationInstanceRow(Base):
    """The alert state of one label set (rule, persona, metric), keyed by the fingerprint of its labels."""

    __tablename__ = "escalation_instances"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    state: Mapped[str] = mapped_column(String(16))
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_true_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_id: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EscalationRow(Base):
    """An escalation: opened when its instance goes pending, tracked through firing to resolution."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_status_opened_at", "status", "opened_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    affected_personas: Mapped[list[str]] = mapped_column(JSONDocument)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    related: Mapped[dict[str, Any]] = mapped_column(
        JSONDocument
    )  # deployments and experiments near the change
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    firing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EscalationHistoryRow(Base):
    """What happened to an escalation and when (opened, fired, acknowledged, resolved, notified)."""

    __tablename__ = "escalation_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class SilenceRow(Base):
    """Label matchers that mute notifications between starts_at and ends_at (escalations still track state)."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationGroupRow(Base):
    """Per channel and alert group: what was last sent and when, for group_wait/group_interval/repeat_interval."""

    __tablename__ = "notification_groups"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    first_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_digest: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[str | None] = mapped_column(String(16))


class RetroRow(Base):
    """One retro run. `result` is the report (the JSON shape of `feedbackloop retro show --format json`); the
    LangGraph checkpoint (thread id = retro id) holds the run's progress."""

    __tablename__ = "retros"
    __table_args__ = (
        Index("ix_retros_created_at", "created_at"),
        Index("ix_retros_status_run_after", "status", "run_after"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # sprint | deployment
    sprint_id: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[str | None] = mapped_column(String(128))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # scheduled | running | awaiting_approval | completed | failed
    status: Mapped[str] = mapped_column(String(24))
    request: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    # The process running the graph now (one at a time per retro); a claim older than the run lease is stale.
    run_owner: Mapped[str | None] = mapped_column(String(64))
    run_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A scheduled retro (a deployment's, after its bake window) waits until then; the worker starts it.
    run_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BacklogItemRow(Base):
    """A backlog item a retro proposed, by fingerprint: an open one is not proposed again by later retros."""

    __tablename__ = "backlog_items"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    first_retro_id: Mapped[str] = mapped_column(String(64))
    last_retro_id: Mapped[str] = mapped_column(String(64))
    item: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketFilingRow(Base):
    """Exactly-once filing per (fingerprint, sink): a filer claims the row, files, then records the ticket.

    A claim left in `filing` by a crashed process is taken over after a lease; the sink's own fingerprint check
    (marker, file scan) keeps that retry from creating a second ticket.
    """

    __tablename__ = "ticket_filings"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    sink: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # filing | filed | failed
    retro_id: Mapped[str] = mapped_column(String(64))
    ticket_key: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class IncidentRow(Base):
    """An incident: escalations the escalation agent grouped together, with its latest triage (the JSON shape of
    `feedbackloop escalations triage --format json`), who wrote it (rules | llm) and, once every escalation of
    the incident resolved, a resolution summary."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_updated_at", "updated_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    escalation_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    triage: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    source: Mapped[str] = mapped_column(String(16))  # rules | llm
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IncidentEscalationRow(Base):
    """Which incident an escalation belongs to (one at a time: a regrouping moves it)."""

    __tablename__ = "incident_escalations"

    escalation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)


class ApiKeyRow(Base):
    """An API key: only its SHA-256 is stored (keys are 256-bit random, so a slow hash adds nothing); `id` is the
    key's public prefix, shown in listings and logs instead of the key."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_key_hash", "key_hash", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))  # ingest | read | admin
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HookDeliveryRow(Base):
    """A webhook delivery already acted on (GitHub X-GitHub-Delivery, Standard Webhooks webhook-id, a deploy
    hook's own key): a second delivery with the same id is a no-op."""

    __tablename__ = "hook_deliveries"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)  # github | deploy | slack
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)

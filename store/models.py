"""SQLAlchemy 2.0 typed models. Migrations in store/migrations mirror these; a test checks they agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
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

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    persona: Mapped[str] = mapped_column(String(64), default=UNASSIGNED_PERSONA, index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


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

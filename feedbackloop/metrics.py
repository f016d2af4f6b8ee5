"""`MetricsTracker`: the seed's async API for tracking and reading metrics by persona.

tracker = MetricsTracker()                       # configured database, or MetricsTracker("sqlite:///x.db")
await tracker.track_time_to_value(user_id="u1", persona_segment="solo_podcaster",
                                  value_type="report_generated", time_seconds=1200, feature="report_generation")
report = await tracker.get_metrics_by_persona(metric_category=MetricCategory.TIME_TO_VALUE, days=30)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from feedbackloop.runtime import database_for, personas_for
from feedbackloop.settings import Settings, get_settings
from tools.metrics.compute import metric_report
from tools.metrics.model import MetricCategory, MetricReport
from tools.metrics.tracking import MetricInputError, MetricRecorder
from tools.window import Window

__all__ = ["MetricCategory", "MetricInputError", "MetricsTracker"]


class MetricsTracker:
    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.database = database_for(database_url, self.settings)
        recorder_clock = {"clock": clock} if clock is not None else {}
        self.recorder = MetricRecorder(self.database, personas_for(self.settings), **recorder_clock)

    async def track_time_to_value(
        self,
        user_id: str,
        persona_segment: str | None = None,
        value_type: str = "report_generated",
        time_seconds: float = 0.0,
        feature: str | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """A measured time to value (seconds); it replaces the event-derived value for this user."""
        await asyncio.to_thread(
            self.recorder.time_to_value, user_id=user_id, persona=persona_segment, seconds=time_seconds,
            value_type=value_type, feature=feature, observed_at=observed_at,
        )  # fmt: skip

    async def track_report_accuracy(
        self,
        report_id: str,
        user_id: str | None = None,
        persona_segment: str | None = None,
        accuracy: float | None = None,
        accurate: bool | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """A report's accuracy: `accurate` (True/False) or `accuracy` (0–1). Replaces the correction-based value."""
        if (accuracy is None) == (accurate is None):
            raise MetricInputError("accuracy", "give exactly one of accuracy (0–1) or accurate (true/false)")
        score = accuracy if accuracy is not None else (1.0 if accurate else 0.0)
        await asyncio.to_thread(
            self.recorder.report_accuracy, user_id=user_id, persona=persona_segment, report_id=report_id,
            accuracy=score, observed_at=observed_at,
        )  # fmt: skip

    async def track_renewal(
        self,
        campaign_id: str,
        renewed: bool,
        user_id: str | None = None,
        persona_segment: str | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """A sponsor renewal outcome decided now; replaces the event-derived outcome of this campaign."""
        await asyncio.to_thread(
            self.recorder.renewal, user_id=user_id, persona=persona_segment, campaign_id=campaign_id,
            renewed=renewed, observed_at=observed_at,
        )  # fmt: skip

    async def track_error(
        self,
        user_id: str,
        feature: str,
        persona_segment: str | None = None,
        code: str | None = None,
        message: str | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """An error a user hit (stored as an error_occurred event)."""
        properties: dict[str, Any] = {"feature": feature}
        properties.update({k: v for k, v in (("code", code), ("message", message)) if v is not None})
        await asyncio.to_thread(
            self.recorder.occurrence, event_name="error_occurred", user_id=user_id, persona=persona_segment,
            properties=properties, observed_at=observed_at,
        )  # fmt: skip

    async def track_support_incident(
        self,
        user_id: str,
        ticket_id: str,
        persona_segment: str | None = None,
        category: str | None = None,
        severity: str | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """A support contact (stored as a support_ticket_opened event)."""
        properties: dict[str, Any] = {"ticket_id": ticket_id}
        properties.update(
            {k: v for k, v in (("category", category), ("severity", severity)) if v is not None}
        )
        await asyncio.to_thread(
            self.recorder.occurrence, event_name="support_ticket_opened", user_id=user_id,
            persona=persona_segment, properties=properties, observed_at=observed_at,
        )  # fmt: skip

    async def track_metric(
        self,
        name: str,
        value: float,
        unit: str = "value",
        user_id: str | None = None,
        persona_segment: str | None = None,
        dims: dict[str, Any] | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """Any custom metric; read it back with get_metrics_by_persona(metric_category=name)."""
        await asyncio.to_thread(
            self.recorder.custom, name=name, value=value, unit=unit, user_id=user_id, persona=persona_segment,
            dims=dims, observed_at=observed_at,
        )  # fmt: skip

    async def get_metrics_by_persona(
        self,
        metric_category: MetricCategory | str,
        days: int = 30,
        persona_segment: str | None = None,
        end: datetime | None = None,
    ) -> MetricReport:
        """The metric over the last `days` (to `end`), overall and per persona, vs the previous window."""
        name = metric_category.value if isinstance(metric_category, MetricCategory) else str(metric_category)
        window = Window.last_days(days, end)

        def compute() -> MetricReport:
            with self.database.read() as connection:
                return metric_report(
                    connection, name, window, persona=persona_segment,
                    renewal_window_days=self.settings.renewal_window_days,
                )  # fmt: skip

        return await asyncio.to_thread(compute)

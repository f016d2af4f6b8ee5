"""What `FeedbackLoopIntegration` asks of the host app's own modules: one small Protocol per collaborator.

Every collaborator is optional; each Protocol holds only the method the integration calls. Lookups fill in what a
hook's caller left out (a user's persona, a user's plan, a campaign's sponsor, a report's template); sinks receive
what the integration recorded (the canonical events, duration observations, task outcomes) so the host's own
telemetry stays in step. A method may be a plain function or a coroutine function: the integration awaits what
is awaitable, so synchronous and asyncio host apps both fit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

MaybeText: TypeAlias = str | Awaitable[str | None] | None
Nothing: TypeAlias = Awaitable[None] | None


@runtime_checkable
class UserManager(Protocol):
    """The host's users (`src.users.user_manager`): the persona of a user, sent as an identify call whenever it
    differs from the stored one, so surveys, metrics and KPIs break down by the host's own segmentation."""

    def persona_of(self, user_id: str) -> MaybeText:
        """The user's persona key (e.g. "solo_podcaster"), or None when the host does not know it."""
        ...


@runtime_checkable
class PricingManager(Protocol):
    """The host's plans and billing: the plan a user signed up on, when `on_user_signed_up` is not told it."""

    def plan_of(self, user_id: str) -> MaybeText:
        """The user's current plan (e.g. "free", "pro"), or None."""
        ...


@runtime_checkable
class CampaignManager(Protocol):
    """The host's sponsor campaigns: the sponsor of a campaign, when a campaign hook is not told it (renewals
    and the renewal survey are then attributable to a sponsor)."""

    def sponsor_of(self, campaign_id: str) -> MaybeText:
        """The campaign's sponsor id, or None."""
        ...


@runtime_checkable
class ReportGenerator(Protocol):
    """The host's report generation: the template a report was built from, when `on_report_generated` is not
    told it (report-template experiments and retros compare templates)."""

    def template_of(self, report_id: str) -> MaybeText:
        """The report's template name, or None."""
        ...


@runtime_checkable
class EventLogger(Protocol):
    """The host's event log (`src.telemetry.events`): receives every canonical event a hook stored, after it is
    stored (a retried hook whose event was already stored sends nothing)."""

    def log_event(self, name: str, user_id: str, properties: Mapping[str, Any]) -> Nothing:
        """One stored event: its snake_case name, its user and its properties."""
        ...


@runtime_checkable
class MetricsCollector(Protocol):
    """The host's metrics (`src.telemetry.metrics`, e.g. a Prometheus or StatsD client): receives the durations
    a hook measured — `time_to_value_seconds` (sign-up to first report), `report_generation_seconds`,
    `onboarding_seconds` — labelled with the user's persona."""

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> Nothing:
        """One observation of `name` (its unit is in the name)."""
        ...


@runtime_checkable
class Measurement(Protocol):
    """The host's continuous measurement (`src.measurement.continuous_metrics`: task completion): receives the
    outcome of each journey task a hook reports — onboarding, report generation and delivery succeed; an
    error is a failed task of its feature."""

    def record_task(self, user_id: str, task: str, succeeded: bool) -> Nothing:
        """One task outcome of one user."""
        ...

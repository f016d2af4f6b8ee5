"""`FeedbackLoopIntegration`: the seed's facade for Python host apps — journey hooks, periodic checks, retros.

integration = FeedbackLoopIntegration(user_manager=users, event_logger=events)   # every collaborator optional
survey = await integration.on_report_generated(user_id="u1", report_id="r1", campaign_id="c1", time_to_generate=1200)
checks = await integration.run_periodic_checks()        # escalation check + triage (+ delivery of what it queued)
retro = await integration.run_sprint_retro(sprint_id="sprint-2024-01", sprint_start=…, sprint_end=…)

Each hook turns its call into the canonical event of the tracking plan and stores it through the same
EventIngestor as the HTTP door, so the event's reactions (survey triggers; the metrics derived from events, such
as time to value at a user's first report) happen exactly once, whichever door an event came through. The hook
returns the survey to show the user now, or None. Metric observations need no separate write: every metric of
the tracking plan derives from the stored events. Hooks are idempotent: an event is keyed by its entity (a
report's report_generated, a campaign's campaign_created, …), so a retried call stores nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from feedbackloop.escalation_triage import triage_of
from feedbackloop.integration_protocols import (
    CampaignManager,
    EventLogger,
    MaybeText,
    Measurement,
    MetricsCollector,
    PricingManager,
    ReportGenerator,
    UserManager,
)
from feedbackloop.retro_agent import RetroAgent, RetroAnalysis
from feedbackloop.runtime import database_for, personas_for
from feedbackloop.settings import Settings, get_settings
from feedbackloop.worker import Worker
from store.database import Database
from store.models import UNASSIGNED_PERSONA
from store.repositories.events import existing_message_ids, stored_traits
from store.repositories.observations import persona_of
from store.repositories.surveys import first_event_times
from tools.escalation.model import Escalation
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.surveys.model import Survey
from tools.surveys.service import SurveyService
from tools.tickets.base import TicketSink

__all__ = ["FeedbackLoopIntegration", "IntegrationInputError", "PeriodicCheckResult"]

log = logging.getLogger("feedbackloop.integration")
MAX_TEXT_CHARS = 255
MAX_AMOUNT = 1e15
LIBRARY = {"library": {"name": "feedbackloop.FeedbackLoopIntegration"}}
Value = TypeVar("Value")


class IntegrationInputError(ValueError):
    """A hook argument is invalid; `field` names it. Nothing was recorded."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PeriodicCheckResult:
    """One run of the periodic checks. `skipped`: another worker was running the escalation check."""

    at: datetime
    skipped: bool
    active: list[Escalation] = field(default_factory=list)  # pending, firing and acknowledged afterwards
    opened: list[str] = field(default_factory=list)  # escalation ids
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications_queued: int = 0
    notifications_delivered: int = 0
    incidents: list[dict[str, Any]] = field(default_factory=list)  # the triage of each incident they are in


@dataclass(frozen=True)
class _Track:
    """One track event a hook records: name, properties, and the parts of its idempotency key."""

    name: str
    properties: dict[str, Any]
    key: tuple[str, ...]


@dataclass
class _Stored:
    accepted: list[_Track] = field(default_factory=list)
    survey: Survey | None = None
    persona: str = UNASSIGNED_PERSONA
    durations: dict[str, float] = field(default_factory=dict)  # observations for the host's metrics collector


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---- validation: every argument is checked before anything is looked up or written ----------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise IntegrationInputError(name, f"must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT_CHARS:
        raise IntegrationInputError(name, f"is {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
    return value.strip()


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _amount(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IntegrationInputError(name, f"must be a finite number, got {value!r}")
    if not 0 <= value <= MAX_AMOUNT:
        raise IntegrationInputError(name, f"must be between 0 and 1e15, got {value!r}")
    return value


def _count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise IntegrationInputError(name, f"must be a whole number ≥ {minimum}, got {value!r}")
    return value


def _moment(at: Any, clock: Callable[[], datetime]) -> datetime:
    if at is None:
        return clock().astimezone(UTC)
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise IntegrationInputError("at", "must be a timezone-aware datetime (e.g. datetime.now(UTC))")
    return at.astimezone(UTC)


def _properties(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


async def _resolved(value: Value | Awaitable[Value]) -> Value:
    return await value if inspect.isawaitable(value) else value


async def _tell(name: str, method: Callable[..., object], *arguments: Any) -> None:
    """Call a host sink. The events are stored by now, so a failing sink is logged and does not fail the hook
    (the host's retry would store nothing and so forward nothing)."""
    try:
        await _resolved(method(*arguments))
    except Exception:
        log.exception("%s failed; the event is stored", name)


class FeedbackLoopIntegration:
    """The seed's integration facade. Collaborators are the host's modules (see feedbackloop.integration_protocols);
    `database` (a Database or URL) and `settings` default to the configured ones, like the other seed classes."""

    def __init__(
        self,
        metrics_collector: MetricsCollector | None = None,
        event_logger: EventLogger | None = None,
        user_manager: UserManager | None = None,
        campaign_manager: CampaignManager | None = None,
        report_generator: ReportGenerator | None = None,
        measurement: Measurement | None = None,
        pricing_manager: PricingManager | None = None,
        *,
        database: Database | str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
        ticket_sinks: Sequence[TicketSink] | None = None,
    ) -> None:
        self.metrics_collector = metrics_collector
        self.event_logger = event_logger
        self.user_manager = user_manager
        self.campaign_manager = campaign_manager
        self.report_generator = report_generator
        self.measurement = measurement
        self.pricing_manager = pricing_manager
        self.settings = settings or get_settings()
        self.database = database if isinstance(database, Database) else database_for(database, self.settings)
        self.clock = clock or _utcnow
        self.ingestor = EventIngestor(
            self.database,
            personas_for(self.settings),
            survey_recontact_days=self.settings.survey_recontact_days,
        )
        self.surveys = SurveyService(
            self.database, clock=self.clock, global_recontact_days=self.settings.survey_recontact_days
        )
        self.surveys.ensure_defaults()  # an event can only trigger a survey that exists
        self.ticket_sinks = ticket_sinks
        self._worker: Worker | None = None
        self._retro_agent: RetroAgent | None = None

    # ---- journey hooks ---------------------------------------------------------------------------------------

    async def on_user_signed_up(
        self, user_id: str, persona: str | None = None, plan: str | None = None, source: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """user_signed_up (time to value starts; the conversion cohort), with an identify call carrying the
        persona (given, else the user manager's) and plan (given, else the pricing manager's)."""
        user = _text(user_id, "user_id")
        persona, plan, source = (
            _optional_text(v, n) for v, n in ((persona, "persona"), (plan, "plan"), (source, "source"))
        )
        moment = _moment(at, self.clock)
        if persona is None and self.user_manager is not None:
            persona = await self._lookup(self.user_manager.persona_of(user), "user_manager.persona_of")
        if plan is None and self.pricing_manager is not None:
            plan = await self._lookup(self.pricing_manager.plan_of(user), "pricing_manager.plan_of")
        traits = _properties(persona=persona, plan=plan)
        track = _Track("user_signed_up", _properties(persona=persona, plan=plan, source=source), (user,))
        return await self._record(user, moment, [track], traits=traits)

    async def on_onboarding_step(
        self, user_id: str, step: str, step_index: int | None = None, total_steps: int | None = None,
        completed: bool = False, at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """onboarding_step_completed; with `completed=True` also onboarding_completed, whose duration_seconds is
        the time since the user signed up (when that is known)."""
        user, step = _text(user_id, "user_id"), _text(step, "step")
        index, total = _count(step_index, "step_index", 0), _count(total_steps, "total_steps", 1)
        if index is not None and total is not None and index > total:
            raise IntegrationInputError("step_index", f"is {index}, beyond total_steps ({total})")
        if not isinstance(completed, bool):
            raise IntegrationInputError("completed", f"must be true or false, got {completed!r}")
        moment = _moment(at, self.clock)
        tracks = [
            _Track("onboarding_step_completed", _properties(step=step, step_index=index, total_steps=total),
                   (user, step)),
        ]  # fmt: skip
        if completed:
            tracks.append(_Track("onboarding_completed", {}, (user,)))
        return await self._record(user, moment, tracks, task=("onboarding", True) if completed else None)

    async def on_campaign_created(
        self, user_id: str, campaign_id: str, sponsor_id: str | None = None, budget: float | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """campaign_created (adoption)."""
        user, campaign = _text(user_id, "user_id"), _text(campaign_id, "campaign_id")
        sponsor, amount = _optional_text(sponsor_id, "sponsor_id"), _amount(budget, "budget")
        moment = _moment(at, self.clock)
        sponsor = sponsor or await self._sponsor(campaign)
        properties = _properties(campaign_id=campaign, sponsor_id=sponsor, budget=amount)
        return await self._record(user, moment, [_Track("campaign_created", properties, (user, campaign))])

    async def on_campaign_ended(
        self, user_id: str, campaign_id: str, sponsor_id: str | None = None, outcome: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """campaign_ended: a renewal outcome is now due (a sponsor_renewed within the renewal window, or a
        failure), and the renewal survey (CAMPAIGN_ENDED) triggers."""
        user, campaign = _text(user_id, "user_id"), _text(campaign_id, "campaign_id")
        sponsor, result = _optional_text(sponsor_id, "sponsor_id"), _optional_text(outcome, "outcome")
        moment = _moment(at, self.clock)
        sponsor = sponsor or await self._sponsor(campaign)
        properties = _properties(campaign_id=campaign, sponsor_id=sponsor, outcome=result)
        return await self._record(user, moment, [_Track("campaign_ended", properties, (user, campaign))])

    async def on_report_generated(
        self, user_id: str, report_id: str, campaign_id: str | None = None,
        time_to_generate: float | None = None, template: str | None = None, at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """report_generated, with `time_to_generate` (seconds the generation took) as its duration_seconds. The
        user's first report ends time to value and triggers the time-to-value survey (VALUE_DELIVERED)."""
        user, report = _text(user_id, "user_id"), _text(report_id, "report_id")
        campaign, name = _optional_text(campaign_id, "campaign_id"), _optional_text(template, "template")
        seconds = _amount(time_to_generate, "time_to_generate")
        moment = _moment(at, self.clock)
        if name is None and self.report_generator is not None:
            name = await self._lookup(
                self.report_generator.template_of(report), "report_generator.template_of"
            )
        properties = _properties(
            report_id=report, campaign_id=campaign, duration_seconds=seconds, template=name
        )
        return await self._record(user, moment, [_Track("report_generated", properties, (user, report))],
                                  task=("report_generation", True))  # fmt: skip

    async def on_report_sent(
        self, user_id: str, report_id: str, campaign_id: str | None = None, recipient_role: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """report_sent: the report-accuracy denominator; triggers the accuracy survey (REPORT_SENT, which waits an
        hour by default, so it is queued rather than returned). A report may be sent more than once."""
        user, report = _text(user_id, "user_id"), _text(report_id, "report_id")
        campaign, role = (
            _optional_text(campaign_id, "campaign_id"),
            _optional_text(recipient_role, "recipient_role"),
        )
        moment = _moment(at, self.clock)
        properties = _properties(report_id=report, campaign_id=campaign, recipient_role=role)
        track = _Track("report_sent", properties, (user, report, moment.isoformat()))
        return await self._record(user, moment, [track], task=("report_delivery", True))

    async def on_sponsor_renewed(
        self, user_id: str, campaign_id: str, sponsor_id: str | None = None, amount: float | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """sponsor_renewed: the campaign's renewal succeeded (renewal success)."""
        user, campaign = _text(user_id, "user_id"), _text(campaign_id, "campaign_id")
        sponsor, value = _optional_text(sponsor_id, "sponsor_id"), _amount(amount, "amount")
        moment = _moment(at, self.clock)
        sponsor = sponsor or await self._sponsor(campaign)
        properties = _properties(campaign_id=campaign, sponsor_id=sponsor, amount=value)
        return await self._record(user, moment, [_Track("sponsor_renewed", properties, (user, campaign))])

    async def on_support_contact(
        self, user_id: str, ticket_id: str, category: str | None = None, severity: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """support_ticket_opened (support load); triggers the support-incident survey (SUPPORT_CONTACT)."""
        user, ticket = _text(user_id, "user_id"), _text(ticket_id, "ticket_id")
        kind, level = _optional_text(category, "category"), _optional_text(severity, "severity")
        moment = _moment(at, self.clock)
        properties = _properties(ticket_id=ticket, category=kind, severity=level)
        return await self._record(user, moment, [_Track("support_ticket_opened", properties, (user, ticket))])

    async def on_error(
        self, user_id: str, feature: str, code: str | None = None, message: str | None = None,
        at: datetime | None = None,
    ) -> Survey | None:  # fmt: skip
        """error_occurred (error rate by persona; the error-spike escalation). Keyed by its time: two errors of
        one feature at different moments are two errors."""
        user, name = _text(user_id, "user_id"), _text(feature, "feature")
        error_code = _optional_text(code, "code")
        if message is not None and (not isinstance(message, str) or len(message) > 2000):
            raise IntegrationInputError("message", "must be a string of at most 2000 characters")
        moment = _moment(at, self.clock)
        properties = _properties(feature=name, code=error_code, message=message)
        track = _Track("error_occurred", properties, (user, name, error_code or "", moment.isoformat()))
        return await self._record(user, moment, [track], task=(name, False))

    # ---- periodic work ---------------------------------------------------------------------------------------

    async def run_periodic_checks(
        self, at: datetime | None = None, deliver: bool = True
    ) -> PeriodicCheckResult:
        """The worker's escalation check at `at` (default now) with the escalation agent's triage of what changed,
        then (with `deliver`) delivery of the notifications due. Safe beside running workers: one check at a time."""
        moment = _moment(at, self.clock)
        return await asyncio.to_thread(self._periodic_checks, moment, deliver)

    async def run_sprint_retro(
        self,
        sprint_id: str | None = None,
        sprint_start: datetime | None = None,
        sprint_end: datetime | None = None,
    ) -> RetroAnalysis:
        """The retro agent's sprint retro (insights, backlog items) over [sprint_start, sprint_end]."""
        if self._retro_agent is None:
            self._retro_agent = RetroAgent(
                self.database.url, settings=self.settings, sinks=self.ticket_sinks, clock=self.clock
            )
        return await self._retro_agent.run_sprint_retro(sprint_id, sprint_start, sprint_end)

    # ---- internals -------------------------------------------------------------------------------------------

    @staticmethod
    async def _lookup(value: MaybeText, source: str) -> str | None:
        """A host module's answer: a short string, or None for "not known" (an empty string counts as None)."""
        found = await _resolved(value)
        if found is None:
            return None
        if not isinstance(found, str) or len(found) > MAX_TEXT_CHARS:
            raise IntegrationInputError(source, f"returned {found!r}; expected a short string or None")
        return found.strip() or None

    async def _sponsor(self, campaign_id: str) -> str | None:
        if self.campaign_manager is None:
            return None
        return await self._lookup(
            self.campaign_manager.sponsor_of(campaign_id), "campaign_manager.sponsor_of"
        )

    async def _record(
        self,
        user_id: str,
        moment: datetime,
        tracks: list[_Track],
        *,
        traits: Mapping[str, Any] | None = None,
        task: tuple[str, bool] | None = None,
    ) -> Survey | None:
        if traits is None and self.user_manager is not None:
            persona = await self._lookup(self.user_manager.persona_of(user_id), "user_manager.persona_of")
            traits = _properties(persona=persona)
        stored = await asyncio.to_thread(self._store, user_id, moment, tracks, dict(traits or {}))
        await self._forward(user_id, stored, task)
        return stored.survey

    def _store(self, user_id: str, moment: datetime, tracks: list[_Track], traits: dict[str, Any]) -> _Stored:
        """Store the hook's events in one transaction (an identify first when the traits changed), then show the
        survey their reactions queued for now."""
        with self.database.read() as connection:
            known = stored_traits(connection, [user_id]).get(user_id, {})
            signed_up = first_event_times(connection, "user_signed_up", [user_id]).get(user_id)
        events = []
        if traits and any(known.get(name) != value for name, value in traits.items()):
            events.append(
                self._event("identify", "identify", user_id, traits, moment, (*traits.items(), moment))
            )
        for track in tracks:
            if track.name == "onboarding_completed" and signed_up is not None and signed_up <= moment:
                track.properties["duration_seconds"] = (moment - signed_up).total_seconds()
        keyed = [(track, self._event("track", track.name, user_id, track.properties, moment, track.key))
                 for track in tracks]  # fmt: skip
        with self.database.read() as connection:
            already = existing_message_ids(connection, [event.message_id for _, event in keyed])
        summary = self.ingestor.ingest([*events, *(event for _, event in keyed)])
        stored = _Stored()
        if summary.accepted == 0:
            return stored  # a retried hook: everything was stored before
        stored.accepted = [track for track, event in keyed if event.message_id not in already]
        with self.database.read() as connection:
            stored.persona = persona_of(connection, user_id) or UNASSIGNED_PERSONA
            first_report = first_event_times(connection, "report_generated", [user_id]).get(user_id)
        due = [s for s in summary.surveys if s.user_id == user_id and s.show_after <= moment]
        if due:
            self.surveys.mark_shown(due[0].display_id, at=moment)  # returned to be shown now
            stored.survey = self.surveys.get(due[0].survey_id)
        for track in stored.accepted:
            if track.name == "report_generated":
                if "duration_seconds" in track.properties:
                    stored.durations["report_generation_seconds"] = float(
                        track.properties["duration_seconds"]
                    )
                if first_report == moment and signed_up is not None and signed_up <= moment:
                    stored.durations["time_to_value_seconds"] = (moment - signed_up).total_seconds()
            if track.name == "onboarding_completed" and "duration_seconds" in track.properties:
                stored.durations["onboarding_seconds"] = float(track.properties["duration_seconds"])
        return stored

    def _event(
        self,
        kind: str,
        name: str,
        user_id: str,
        properties: dict[str, Any],
        moment: datetime,
        key: Sequence[Any],
    ) -> CanonicalEvent:
        digest = hashlib.sha256(repr((kind, name, user_id, *key)).encode("utf-8")).hexdigest()[:40]
        return CanonicalEvent(f"fl-int-{digest}", kind, name, moment, self.clock().astimezone(UTC),
                              user_id=user_id, properties=dict(properties), context=LIBRARY)  # fmt: skip

    async def _forward(self, user_id: str, stored: _Stored, task: tuple[str, bool] | None) -> None:
        """Tell the host's own telemetry what this call recorded (nothing, for a retried call)."""
        for track in stored.accepted:
            if self.event_logger is not None:
                await _tell(f"event_logger.log_event({track.name!r})", self.event_logger.log_event,
                            track.name, user_id, dict(track.properties))  # fmt: skip
        if self.metrics_collector is not None:
            for name, value in stored.durations.items():
                await _tell(f"metrics_collector.observe({name!r})", self.metrics_collector.observe,
                            name, value, {"persona": stored.persona})  # fmt: skip
        if self.measurement is not None and task is not None and stored.accepted:
            await _tell("measurement.record_task", self.measurement.record_task, user_id, *task)

    def _periodic_checks(self, moment: datetime, deliver: bool) -> PeriodicCheckResult:
        if self._worker is None:
            self._worker = Worker(self.database, self.settings, clock=self.clock)
            self._worker.service.ensure_default_rules()
        result = self._worker.check(moment)
        if result is None:
            return PeriodicCheckResult(at=moment, skipped=True)
        incidents: dict[str, dict[str, Any]] = {}
        for escalation_id in dict.fromkeys([*result.opened, *result.fired, *result.resolved]):
            triage = triage_of(self.database, escalation_id)
            if triage is not None:
                incidents.setdefault(triage["incident_id"], triage)
        delivered = self._worker.deliver(moment).delivered if deliver else 0
        return PeriodicCheckResult(
            at=result.at, skipped=False, active=result.active, opened=result.opened, fired=result.fired,
            resolved=result.resolved, notifications_queued=result.notifications, notifications_delivered=delivered,
            incidents=list(incidents.values()),
        )  # fmt: skip

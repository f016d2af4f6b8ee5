"""Run a chat command against the services every other door uses, and answer with a ChatReply.

Quick commands (escalations, experiment, kpis, help) answer at once. A retro is two steps, because a chat door must
answer within seconds: `start_retro` validates and records the retro (a bad request is a reply naming the problem,
not an error) and `run_retro` runs the graph, which the door does in the background.

Retros started from chat wait for approval (`approve="ask"`) unless the services say otherwise: a person is in
the conversation, so the proposed backlog items come back with Approve/Drop buttons instead of being filed
unseen. Every number in a reply comes from a tool (KPIs, the experiment analysis, the escalation evidence, the
retro's result); this module only formats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.retro.runner import RetroRunner
from agents.retro.state import RetroRequest
from feedbackloop.chat import grammar
from feedbackloop.chat.grammar import Command, Help, RetroCommand
from feedbackloop.chat.replies import ChatReply, Dialect, Section, reply, usage_lines
from feedbackloop.chat.routing import Router, llm_router, needs_routing
from feedbackloop.retro_agent import RetroInputError, llm_config, retro_runner
from feedbackloop.settings import Settings
from feedbackloop.worker import escalation_service
from store.database import Database
from store.repositories import incidents as incident_sql
from tools.escalation.model import EscalationStatus
from tools.experiments.analysis import ExperimentResults, analyze
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError
from tools.experiments.service import ExperimentService
from tools.kpis.compute import compute_kpis
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.kpis.model import KpiValue
from tools.personas import UNASSIGNED, load_registry
from tools.retro.report import render_markdown, slack_blocks
from tools.units import format_value
from tools.window import Window

KPI_DAYS = 30
MAX_ESCALATIONS_SHOWN = 20
OPEN_STATUSES = (EscalationStatus.FIRING, EscalationStatus.ACKNOWLEDGED, EscalationStatus.PENDING)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ChatServices:
    """What chat commands run against: the store, the settings, the retro runner and one clock."""

    database: Database
    settings: Settings
    runner: RetroRunner
    clock: Callable[[], datetime] = _utcnow
    retro_approve: str = "ask"  # chat retros propose; a person approves with the buttons (or POST …/approve)
    personas: tuple[str, ...] = field(default_factory=tuple)
    router: Router | None = None  # free text → a command, when an LLM is configured


@dataclass(frozen=True, slots=True)
class Interpretation:
    command: Command
    routed_from: str | None = None  # the command text the LLM picked for free text


def chat_services(
    database: Database,
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    retro_approve: str = "ask",
) -> ChatServices:
    runner = retro_runner(database=database, settings=settings, clock=clock)
    personas = (*load_registry(settings.personas_file).keys, UNASSIGNED)
    config = llm_config(settings)
    router = None
    if config is not None:
        keys = lambda: [experiment.key for experiment in ExperimentService(database).experiments()]  # noqa: E731
        router = llm_router(config, personas=personas, experiment_keys=keys)
    return ChatServices(database, settings, runner, clock or _utcnow, retro_approve, personas, router)


def interpret(text: str, services: ChatServices) -> Interpretation:
    """The command `text` asks for; free text goes to the LLM router when there is one, else gets the help."""
    parsed = grammar.parse(text)
    if services.router is None or not needs_routing(text, parsed):
        return Interpretation(parsed)
    routed = services.router(text)
    return Interpretation(parsed) if routed is None else Interpretation(routed.command, routed.text)


def needs_llm(text: str, services: ChatServices) -> bool:
    """Whether interpreting `text` calls the LLM (a door that must answer quickly does it in the background)."""
    return services.router is not None and needs_routing(text, grammar.parse(text))


# ---- quick commands ------------------------------------------------------------------------------------------


def answer(command: Command, services: ChatServices) -> ChatReply:
    """The reply to a quick command (a retro command starts a retro: use start_retro)."""
    if isinstance(command, grammar.Escalations):
        return _escalations(services)
    if isinstance(command, grammar.ExperimentResults):
        return _experiment(command.key, services)
    if isinstance(command, grammar.Kpis):
        return _kpis(command.persona, services)
    if isinstance(command, Help):
        return help_reply(command.reason)
    raise TypeError(f"{type(command).__name__} starts a retro; call start_retro")


def help_reply(reason: str | None = None, *, note: str | None = None) -> ChatReply:
    def build(d: Dialect) -> Section:
        title = f"{d.formatted(reason)}. The commands:" if reason else "The commands:"
        return Section(title, usage_lines(d, grammar.USAGE), d.text(note) if note else None)

    return reply("help", build)


def _escalations(services: ChatServices) -> ChatReply:
    found = escalation_service(services.database, services.settings, clock=services.clock).escalations()
    open_ones = [e for e in found if e.status in OPEN_STATUSES]
    open_ones.sort(key=lambda e: (OPEN_STATUSES.index(e.status), e.opened_at), reverse=False)
    shown = open_ones[:MAX_ESCALATIONS_SHOWN]
    causes = _probable_causes(services.database, [e.escalation_id for e in shown])

    def build(d: Dialect) -> Section:
        if not open_ones:
            return Section(
                "No open escalations.", (), "Resolved escalations: GET /v1/escalations?status=resolved"
            )
        lines = []
        for e in shown:
            personas = ", ".join(e.affected_personas) or "all personas"
            lines.append(
                f"{d.bold(e.severity.value.upper())} {d.text(e.title)} · {d.text(e.status.value)} since "
                f"{e.opened_at:%Y-%m-%d %H:%M} UTC · {d.text(personas)} · {d.code(e.escalation_id)}"
                + (
                    f" · probable cause: {d.text(causes[e.escalation_id])}"
                    if e.escalation_id in causes
                    else ""
                )
            )
        more = len(open_ones) - len(shown)
        note = f"… and {more} more: GET /v1/escalations" if more else None
        return Section(f"{len(open_ones)} open escalation{'s' if len(open_ones) != 1 else ''}", lines, note)

    return reply("escalations", build)


def _probable_causes(database: Database, escalation_ids: list[str]) -> dict[str, str]:
    """Escalation id → the escalation agent's first probable cause and owner, for those it triaged."""
    with database.read() as connection:
        incidents = incident_sql.incidents_of(connection, escalation_ids)
    causes: dict[str, str] = {}
    for incident in incidents:
        triage = incident["triage"]
        found = triage.get("probable_causes") or []
        if not found:
            continue
        owner = triage.get("owner", {})
        text = f"{found[0]['title']} ({found[0]['confidence']}), owner {owner.get('team')} {owner.get('channel')}"
        causes |= {escalation_id: text for escalation_id in incident["escalation_ids"]}
    return causes


def _experiment(key: str, services: ChatServices) -> ChatReply:
    try:
        results = analyze(
            ExperimentService(services.database, clock=services.clock), key, now=services.clock()
        )
    except ExperimentNotFoundError:
        return reply("experiment", lambda d: Section(f"No experiment has the key {d.code(key)}."))
    except ExperimentInputError as error:  # a draft has no results yet
        why = error.message
        return reply("experiment", lambda d: Section(f"{d.code(key)}: {d.text(why)}"))
    return reply("experiment", lambda d: _experiment_section(results, d))


def _experiment_section(results: ExperimentResults, d: Dialect) -> Section:
    units = ", ".join(f"{d.text(name)} {count:,}" for name, count in results.units.items()) or "none yet"
    lines = [f"units: {units}" + (" · sample ratio mismatch!" if results.srm else "")]
    for outcome in results.primary:
        for effect in outcome.result.variants:
            if effect.error is not None:
                lines.append(f"{d.text(outcome.metric.name)} · {d.text(effect.name)}: {d.text(effect.error)}")
                continue
            evidence = (
                f"chance to win {format_value(effect.chance_to_win, 'ratio')}"
                if results.engine == "bayesian"
                else f"p = {_p_value(effect.p_value)}"
            )
            lines.append(
                f"{d.text(outcome.metric.name)} · {d.text(effect.name)} vs {d.text(outcome.result.control.name)}: "
                f"{_signed_percent(effect.effect)} ({evidence})"
            )
    verdict = f"winner: {results.winner}" if results.winner else "no winner"
    title = f"Experiment {d.text(results.name)} ({d.text(results.status)}) — {d.text(verdict)}"
    return Section(title, lines, d.text(results.winner_reason))


def _kpis(persona: str | None, services: ChatServices) -> ChatReply:
    if persona is not None and persona not in services.personas:
        known = ", ".join(services.personas)
        return reply(
            "kpis", lambda d: Section(f"{d.code(persona)} is not a persona; known: {d.text(known)}.")
        )
    window = Window.last_days(KPI_DAYS, services.clock())
    with services.database.read() as connection:
        now = compute_kpis(connection, window, gross_margin=services.settings.gross_margin)
        before = compute_kpis(connection, window.previous(), gross_margin=services.settings.gross_margin)
    current = now.overall if persona is None else now.personas.get(persona, {})
    previous = before.overall if persona is None else before.personas.get(persona, {})

    def build(d: Dialect) -> Section:
        lines = []
        for kpi in KPI_DEFINITIONS:
            value, earlier = current.get(kpi.name), previous.get(kpi.name)
            lines.append(f"{d.text(kpi.name)}: {_kpi_text(value, kpi.unit, d)}; previous {KPI_DAYS} days: "
                         f"{_kpi_text(earlier, kpi.unit, d)}")  # fmt: skip
        who = "all personas" if persona is None else persona
        title = f"KPIs of the last {KPI_DAYS} days for {d.text(who)}"
        return Section(title, lines, f"{window.start:%Y-%m-%d} → {window.end:%Y-%m-%d %H:%M} UTC")

    return reply("kpis", build)


def _kpi_text(value: KpiValue | None, unit: str, d: Dialect) -> str:
    if value is None:
        return "—"
    if value.value is None:
        return f"— ({d.text(value.reason or 'no data')})"
    return f"{d.text(format_value(value.value, unit))} (n {value.n:,})"


def _signed_percent(value: float | None) -> str:
    written = format_value(value, "ratio")
    return written if value is None or value < 0 else f"+{written}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


# ---- retros --------------------------------------------------------------------------------------------------


def start_retro(command: RetroCommand, services: ChatServices) -> ChatReply:
    """Validate and record the retro (nothing runs yet). A request the runner refuses is a reply naming the
    problem, with `retro_id` None; otherwise the acknowledgement, with the new retro's id."""
    request, what, note = _retro_request(command, services)
    try:
        retro_id = services.runner.start(request)
    except RetroInputError as error:
        problem = f"{error.field}: {error.message}"
        return reply(
            "retro",
            lambda d: Section(
                f"The {d.text(what)} could not start: {d.text(problem)}", (), "Type help for the commands."
            ),
        )
    ask = (
        "; the proposed backlog items will wait for your approval" if request.get("approve") == "ask" else ""
    )

    def build(d: Dialect) -> Section:
        return Section(f"Running the {d.text(what)} …", [d.text(note + ask)] if note or ask else (),
                       f"retro {retro_id} · GET /v1/retros/{retro_id}")  # fmt: skip

    return reply("retro", build, retro_id=retro_id, links=_links(retro_id))


def run_retro(retro_id: str, services: ChatServices) -> ChatReply:
    """Run the recorded retro to its end or to its approval interrupt; the reply carries the report. A failed
    run is a reply saying how to continue it (the runner recorded the failure)."""
    try:
        result = services.runner.run(retro_id)
    except Exception as error:  # recorded by the runner as failed; the chat only needs to hear about it
        return retro_failed(retro_id, error)
    return retro_report(result)


def retro_report(result: dict[str, Any]) -> ChatReply:
    """A retro's result as a reply: the markdown report, and the Slack report (Approve/Drop while waiting)."""
    retro_id = str(result.get("retro_id"))
    status = str(result.get("status"))
    if "insights" not in result:
        return retro_failed(retro_id, RuntimeError(str(result.get("error") or status)))
    title = reply("retro", lambda d: Section(f"Retro {d.text(retro_id)}: {d.text(status)}"))
    return ChatReply("retro", render_markdown(result), slack_blocks(result), title.text, retro_id,
                     {"status": status, "links": _links(retro_id)})  # fmt: skip


def retro_failed(retro_id: str, error: BaseException) -> ChatReply:
    # The retro's own error (the runner's words) is shown; anything else by its kind only — a driver's message
    # can carry SQL and host names into a channel, and the log has the whole story.
    text = (
        str(error)
        if isinstance(error, RetroInputError | RuntimeError)
        else f"{type(error).__name__} (see the log)"
    )
    message = " ".join(text.split())[:300]
    return reply(
        "retro",
        lambda d: Section(
            f"Retro {d.text(retro_id)} failed: {d.text(message)}",
            (),
            f"`feedbackloop retro resume {retro_id}` continues it.",
        ),
        retro_id=retro_id,
        status="failed",
    )


def _retro_request(command: RetroCommand, services: ChatServices) -> tuple[RetroRequest, str, str]:
    """The runner's request, what the retro is called in replies, and what the chat chose for the user."""
    approve = services.retro_approve
    if isinstance(command, grammar.RetroDeploy):
        hours = services.settings.retro_bake_hours
        request = RetroRequest(kind="deployment", version=command.version, bake_hours=hours, approve=approve)
        return request, f"deployment retro of {command.version}", f"bake period: {hours} hours"
    days = command.days
    end = services.clock().astimezone(UTC)
    start = end - timedelta(days=days)
    span = f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"
    if isinstance(command, grammar.RetroSprint):
        request = RetroRequest(kind="sprint", start=start.isoformat(), end=end.isoformat(),
                               sprint_id=command.sprint_id, approve=approve)  # fmt: skip
        return request, f"sprint retro {command.sprint_id}", f"no dates in chat: the last {days} days, {span}"
    request = RetroRequest(kind="sprint", start=start.isoformat(), end=end.isoformat(), approve=approve)
    return request, f"retro over the last {days} days", span


def _links(retro_id: str) -> dict[str, str]:
    base = f"/v1/retros/{retro_id}"
    return {"self": base, "approve": f"{base}/approve", "report_markdown": f"{base}/report.md"}


def is_retro(command: Command) -> bool:
    return isinstance(command, grammar.RetroSprint | grammar.RetroLastDays | grammar.RetroDeploy)

"""Context for a set of escalations, gathered with the deterministic tools and numbered as evidence (E1, E2, …).

- each escalation: its measured value against the baseline, and when its change began — the onset day of the
  change in the metric's daily series over the week before it opened (tools.retro.attribution.change_onset; a
  daily point holds the whole day, so the change began somewhere in [day start, day end]); an escalation whose
  metric has no daily series (NPS, KPIs) takes the onset of an escalation of the same persona that has one and
  began before it opened, else the moment it opened;
- deployments from `lookback_hours` before the earliest change point to the triage time;
- experiments started in that span;
- survey NPS per affected persona against the week before, and the newest free-text answers (redacted, untrusted:
  text-only records, never a cause on their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from store.repositories import escalations as repo
from tools.escalation.model import Escalation
from tools.escalation.triage.model import EscalationFacts, TriageContext, TriageSettings
from tools.metrics.compute import METRIC_SPECS, metric_reports
from tools.retro.attribution import change_onset
from tools.retro.gather import GatherSettings, gather
from tools.retro.model import RetroWindow, Signal
from tools.window import Window

ONSET_DAYS = 7
DAY = timedelta(days=1)


def gather_context(
    connection: Connection, escalations: Sequence[Escalation], at: datetime, settings: TriageSettings
) -> TriageContext:
    changes = {e.escalation_id: _change(connection, e) for e in escalations}
    for escalation in escalations:
        if changes[escalation.escalation_id][2] == "opened":
            changes[escalation.escalation_id] = _persona_change(escalation, escalations, changes)
    signals: list[Signal] = []
    facts: list[EscalationFacts] = []
    for escalation in escalations:
        evidence_id = f"E{len(signals) + 1}"
        facts.append(_facts(escalation, evidence_id, *changes[escalation.escalation_id]))
        signals.append(_escalation_signal(escalation, evidence_id, *changes[escalation.escalation_id]))
    if not facts:
        return TriageContext(at, (), ())
    start = min(f.change_from for f in facts) - timedelta(hours=settings.lookback_hours)
    deployment_ids: dict[str, str] = {}
    for deployment in repo.deployments_between(connection, start, at):
        evidence_id = f"E{len(signals) + 1}"
        deployment_ids[evidence_id] = deployment["version"]
        signals.append(_deployment_signal(deployment, evidence_id))
    for experiment in repo.experiments_live_between(connection, start, at):
        started = experiment.get("started_at")
        if started and datetime.fromisoformat(started) >= start:
            signals.append(_experiment_signal(experiment, f"E{len(signals) + 1}"))
    personas = tuple(sorted({f.persona for f in facts}))
    for survey_signal in _survey_signals(connection, personas, at, settings):
        signals.append(replace(survey_signal, id=f"E{len(signals) + 1}"))
    return TriageContext(at, tuple(facts), tuple(signals), deployment_ids)


Change = tuple[datetime, datetime, str]  # change_from, change_point, source


def _change(connection: Connection, escalation: Escalation) -> Change:
    metric = escalation.labels.get("metric", "")
    persona = escalation.labels.get("persona")
    if metric in METRIC_SPECS and persona:
        end = escalation.opened_at
        window = Window(end - timedelta(days=ONSET_DAYS), end)
        [report] = metric_reports(connection, [metric], window)
        comparison = report.personas.get(persona)
        if comparison is not None:
            daily = [point.as_dict() for point in comparison.daily]
            onset = change_onset(daily, comparison.current.value, comparison.previous.value)
            if onset is not None:
                day_start = datetime.fromisoformat(onset.isoformat() + "T00:00:00+00:00")
                return day_start, min(day_start + DAY, escalation.opened_at), "metric series"
    return escalation.opened_at, escalation.opened_at, "opened"


def _persona_change(
    escalation: Escalation, escalations: Sequence[Escalation], changes: dict[str, Change]
) -> Change:
    """The earliest dated change of another escalation of the same persona that began before this one opened."""
    persona = escalation.labels.get("persona")
    dated = [
        changes[other.escalation_id]
        for other in escalations
        if other.labels.get("persona") == persona
        and changes[other.escalation_id][2] == "metric series"
        and changes[other.escalation_id][0] <= escalation.opened_at
    ]
    if not dated:
        return changes[escalation.escalation_id]
    change_from, change_point, _ = min(dated)
    return change_from, change_point, "persona"


def _facts(
    escalation: Escalation, evidence_id: str, change_from: datetime, change_point: datetime, source: str
) -> EscalationFacts:
    return EscalationFacts(
        escalation_id=escalation.escalation_id, evidence_id=evidence_id,
        persona=escalation.labels.get("persona", (escalation.affected_personas or ["unassigned"])[0]),
        metric=escalation.labels.get("metric", ""), type=escalation.escalation_type.value,
        severity=escalation.severity.value, status=escalation.status.value, title=escalation.title,
        opened_at=escalation.opened_at, resolved_at=escalation.resolved_at, change_from=change_from,
        change_point=change_point, change_point_source=source,
    )  # fmt: skip


def _escalation_signal(
    escalation: Escalation, evidence_id: str, change_from: datetime, change_point: datetime, source: str
) -> Signal:
    evidence = escalation.evidence[0] if escalation.evidence else None
    persona = escalation.labels.get("persona")
    return Signal(
        id=evidence_id, kind="escalation", metric=escalation.labels.get("metric"), persona=persona,
        value=evidence.value if evidence else None, baseline=evidence.baseline if evidence else None,
        change=evidence.change if evidence else None, p_value=evidence.p_value if evidence else None,
        detail=f"{escalation.title} ({escalation.severity.value}, {escalation.status.value})",
        n=evidence.n if evidence else None, direction="worsened", significant=escalation.firing_at is not None,
        affected_users=evidence.n if evidence else None, subject=escalation.escalation_id,
        facts={"type": escalation.escalation_type.value, "severity": escalation.severity.value,
               "status": escalation.status.value, "opened_at": escalation.opened_at.isoformat(),
               "change_from": change_from.isoformat(), "change_point": change_point.isoformat(),
               "change_point_source": source},
    )  # fmt: skip


def _deployment_signal(deployment: dict[str, Any], evidence_id: str) -> Signal:
    where = " ".join(str(deployment[k]) for k in ("service", "environment") if deployment.get(k))
    return Signal(
        id=evidence_id, kind="deployment", metric=None, persona=None, value=None, baseline=None, change=None,
        p_value=None, detail=f"deployment {deployment['version']} {where}".strip(),
        subject=deployment["version"], facts={"deployed_at": deployment["deployed_at"]},
    )  # fmt: skip


def _experiment_signal(experiment: dict[str, Any], evidence_id: str) -> Signal:
    return Signal(
        id=evidence_id, kind="experiment", metric=None, persona=None, value=None, baseline=None, change=None,
        p_value=None, detail=f"experiment {experiment['key']} started ({experiment['status']})",
        subject=experiment["key"], facts={"started_at": experiment["started_at"], "status": experiment["status"]},
    )  # fmt: skip


def _survey_signals(
    connection: Connection, personas: tuple[str, ...], at: datetime, settings: TriageSettings
) -> list[Signal]:
    span = timedelta(days=settings.survey_days)
    window = RetroWindow("sprint", at - span, at, at - 2 * span, at - span)
    options = GatherSettings(personas=personas, comments_per_persona=settings.comments_per_persona)
    data = gather(connection, "surveys", window, options)
    signals: list[Signal] = []
    for item in data["items"]:
        if item["question_type"] != "nps":
            continue
        for record in item["segments"]:
            if record["persona"] in personas and record["value"] is not None and record["n"]:
                signals.append(_nps_signal(item["name"], record))
    for block in data["comments"]:
        texts = tuple(comment["text"] for comment in block["texts"])
        signals.append(Signal(
            id="", kind="survey_theme", metric=None, persona=block["persona"], value=None, baseline=None,
            change=None, p_value=None, detail=f"{len(texts)} recent survey comments from {block['persona']}",
            text=texts,
        ))  # fmt: skip
    return signals


def _nps_signal(name: str, record: dict[str, Any]) -> Signal:
    return Signal(
        id="", kind="survey_shift", metric=name, persona=record["persona"], value=record["value"],
        baseline=record["baseline"], change=record["change"], p_value=record["p_value"],
        detail=f"NPS ({name}) of {record['persona']} in the last week vs the week before", unit="nps_points",
        n=record["n"], baseline_n=record["baseline_n"],
    )  # fmt: skip

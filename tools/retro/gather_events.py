"""The experiments, escalations and deployments families: what happened in the window, as the experiments
service, the escalation store and the deployment events record it.

experiments — every experiment running at the window's end or stopped within it, with its analysis
(tools.experiments.analysis.analyze: per metric and variant the effect, interval, p-value or chance to win, SRM,
power status, winner and decision; primary p-values are already corrected across primary metrics × variants):

    {"experiments": [{"key", "name", "type", "engine", "alpha", "status", "decision", "started_at",
                      "stopped_at", "in_window": "running" | "stopped", "results": ExperimentResults.as_dict()}]}

The analysis covers the experiment's whole current phase (an experiment is judged on all its users, not on the
part of them that fell in the window).

escalations — every escalation opened, resolved or firing during the window:

    {"escalations": [{"id", "rule_id", "type", "severity", "status", "title", "metric", "persona",
                      "labels", "evidence": [{"metric", "persona", "value", "baseline", "change", "p_value", "n"}],
                      "opened_at", "firing_at", "resolved_at", "activity": ["opened" | "resolved" | "firing"],
                      "related_deployments": [{"version", "service", "environment", "deployed_at"}]}]}

deployments — every `deployment` event in the window, oldest first:

    {"deployments": [{"version", "service", "environment", "deployed_at"}]}
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from store.database import Database
from store.repositories import escalations as escalation_store
from tools.experiments.analysis import analyze
from tools.experiments.errors import ExperimentNotFoundError, ExperimentStateError
from tools.experiments.service import ExperimentService
from tools.retro.gathered import iso
from tools.retro.model import RetroWindow

if TYPE_CHECKING:
    from tools.retro.gather import GatherSettings

ACTIVE_ESCALATION_STATUSES = ("pending", "firing", "acknowledged")


def experiments(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    live = escalation_store.experiments_live_between(connection, window.start, window.end)
    if not live:
        return {"experiments": []}
    # The experiments service works on a Database (its analysis refreshes per-user values in short write
    # transactions of its own); this one shares the caller's engine and pool.
    service = ExperimentService(Database(str(connection.engine.url), upgrade=False, engine=connection.engine))
    found = []
    for item in live:
        try:
            experiment = service.get(item["key"])
            results = analyze(service, item["key"]).as_dict()
        except (
            ExperimentNotFoundError,
            ExperimentStateError,
        ):  # deleted since, or a draft: nothing to analyse
            continue
        stopped = experiment.stopped_at
        in_window = "stopped" if stopped is not None and window.start <= stopped < window.end else "running"
        spec = experiment.spec
        found.append({
            "key": spec.key, "name": spec.name, "type": spec.type.value, "engine": spec.engine,
            "alpha": spec.alpha, "status": experiment.status.value, "decision": experiment.decision,
            "started_at": iso(experiment.started_at), "stopped_at": iso(stopped), "in_window": in_window,
            "results": results,
        })  # fmt: skip
    return {"experiments": found}


def escalations(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    rows = escalation_store.escalation_rows(
        connection, statuses=ACTIVE_ESCALATION_STATUSES, resolved_since=window.start
    )
    found = []
    for row in rows:
        activity = _activity(row, window.start, window.end)
        if not activity:
            continue
        labels = dict(row["labels"] or {})
        evidence = [dict(e) for e in row["evidence"] or []]
        first = evidence[0] if evidence else {}
        related = dict(row["related"] or {})
        found.append({
            "id": row["id"], "rule_id": row["rule_id"], "type": row["type"], "severity": row["severity"],
            "status": row["status"], "title": row["title"],
            "metric": first.get("metric", labels.get("metric")), "persona": first.get("persona", labels.get("persona")),
            "labels": labels, "evidence": evidence, "opened_at": iso(row["opened_at"]),
            "firing_at": iso(row["firing_at"]), "resolved_at": iso(row["resolved_at"]), "activity": activity,
            "related_deployments": list(related.get("deployments", [])),
        })  # fmt: skip
    return {"escalations": found}


def _activity(row: Any, start: datetime, end: datetime) -> list[str]:
    """What the escalation did in [start, end): opened, resolved, and/or was firing at some point of it."""
    opened, firing, resolved = row["opened_at"], row["firing_at"], row["resolved_at"]
    activity = []
    if start <= opened < end:
        activity.append("opened")
    if resolved is not None and start <= resolved < end:
        activity.append("resolved")
    if firing is not None and firing < end and (resolved is None or resolved >= start):
        activity.append("firing")
    return activity


def deployments(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    return {"deployments": escalation_store.deployments_between(connection, window.start, window.end)}

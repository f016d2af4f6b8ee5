"""The demo's escalation part: replay the checks over the weeks around the planted deployment, as the worker would
have run them, and show the escalations that opened and the notifications that would have been sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from feedbackloop.cli.triage_view import triage_group
from store.database import Database
from tools.escalation.model import Escalation
from tools.escalation.notifications import NotificationPolicy
from tools.escalation.service import EscalationService
from tools.escalation.triage.model import TriageSettings
from tools.escalation.triage.record import recent_triages
from tools.escalation.triage.service import triage_with_rules
from tools.notify.channels.file import FileNotifier
from tools.notify.delivery import deliver_due

CHECK_EVERY = timedelta(hours=12)
REPLAY_FROM_BEFORE_DEPLOY = timedelta(days=7)
# Demo timings: the replay steps 12 hours at a time, so Alertmanager's 4-hour repeat would re-send every step.
DEMO_POLICY = NotificationPolicy(
    channels=frozenset({"file"}), group_wait_seconds=30, group_interval_seconds=300,
    repeat_interval_seconds=24 * 3600,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Replay:
    checks: int
    notifications_file: Path
    notifications: int


def replay_checks(
    database: Database, progress: Progress, *, deployed_at: datetime, end: datetime, notifications_file: Path
) -> Replay:
    """Checks every 12 hours of simulated time from a week before the deployment to the end of the data."""
    notifications_file.unlink(missing_ok=True)
    clock = [deployed_at - REPLAY_FROM_BEFORE_DEPLOY]
    service = EscalationService(database, clock=lambda: clock[0], policy=DEMO_POLICY)
    service.ensure_default_rules()
    notifiers = {"file": FileNotifier(notifications_file)}
    steps = int((end - clock[0]) / CHECK_EVERY)
    task = progress.add_task("escalations: replaying checks every 12 h", total=steps)
    delivered = 0
    for _ in range(steps):
        result = service.check(at=clock[0])
        if result.opened or result.fired:  # as the worker does: triage what opened or fired
            triage_with_rules(database, [*result.opened, *result.fired], TriageSettings(), clock[0])
        delivered += deliver_due(database, notifiers=notifiers, clock=lambda: clock[0]).delivered
        clock[0] += CHECK_EVERY
        progress.advance(task)
    return Replay(steps, notifications_file, delivered)


def print_escalations(console: Console, database: Database, replay: Replay) -> None:
    escalations = EscalationService(database).escalations()
    console.print(
        f"\n[bold]Escalations[/] from {replay.checks} checks (every 12 h of simulated time, default rules):"
    )
    for escalation in escalations:
        colour = {"firing": "red", "resolved": "green"}.get(escalation.status.value, "yellow")
        console.print(
            f"  [{colour}]{escalation.status.value.upper():<8}[/] {escalation.severity.value:<8} {escalation.title}"
        )
        console.print(
            f"      opened {escalation.opened_at:%Y-%m-%d %H:%M} · {_evidence(escalation)} · "
            f"related: {_related(escalation)}",
            highlight=False,
        )
    console.print(
        f"{replay.notifications} notifications would have been sent (grouped per persona; Slack, e-mail, "
        f"PagerDuty and signed webhooks when configured); demo mode wrote them to [bold]{replay.notifications_file}[/]"
    )
    lines = replay.notifications_file.read_text().splitlines() if replay.notifications_file.exists() else []
    for line in lines[:2]:
        notification = json.loads(line)["notification"]
        console.print(f"  {notification['sent_at'][:16]}  {notification['title']}", highlight=False)
    print_incidents(console, database)


def print_incidents(console: Console, database: Database) -> None:
    """The escalation agent's incidents: grouped escalations, probable cause with its evidence, owner."""
    triages = sorted(recent_triages(database), key=lambda t: len(t["escalation_ids"]), reverse=True)
    console.print(f"\n[bold]Incidents[/] (escalation triage, {len(triages)} incident(s); largest first):")
    for triage in triages[:1]:
        console.print(triage_group(triage))
    for triage in triages[1:]:
        cause = (triage["probable_causes"] or [{"title": "—"}])[0]["title"]
        console.print(f"incident {triage['incident_id']} ({len(triage['escalation_ids'])} escalation(s)): {cause}",
                      highlight=False)  # fmt: skip


def _evidence(escalation: Escalation) -> str:
    parts = []
    for e in escalation.evidence:
        value = f"{e.value:.3g}" if e.value is not None else "n/a"
        against = f" vs {e.baseline:.3g}" if e.baseline is not None else ""
        p_value = f", p = {e.p_value:.1g}" if e.p_value is not None else ""
        parts.append(f"{e.metric} {value}{against} (n = {e.n}{p_value})")
    return "; ".join(parts)


def _related(escalation: Escalation) -> str:
    deployments = escalation.related.get("deployments", [])
    return (
        ", ".join(
            f"deployment {d['version']} ({d['deployed_at'][:16].replace('T', ' ')})" for d in deployments
        )
        or "—"
    )

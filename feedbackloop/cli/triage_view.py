"""Rich rendering of an incident triage (the JSON shape of `feedbackloop escalations triage --format json`), shared
by `escalations show`, `escalations triage` and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

CONFIDENCE_STYLE = {"high": "bold red", "medium": "yellow", "low": "dim"}


def triage_group(triage: dict[str, Any]) -> Group:
    owner = triage.get("owner") or {}
    header = Text.assemble(
        ("incident ", "bold"), (triage["incident_id"], "bold"), f"  (triage: {triage['triage']})  owner: ",
        (f"{owner.get('team', '—')} {owner.get('channel', '')}", "bold cyan"),
    )  # fmt: skip
    parts: list[Text | Table] = [header, Text(triage["summary"])]
    causes = Table("probable cause", "confidence", "evidence", "why", title="probable causes")
    for cause in triage.get("probable_causes", []):
        causes.add_row(
            Text(cause["title"]), Text(cause["confidence"], style=CONFIDENCE_STYLE.get(cause["confidence"], "")),
            Text(", ".join(cause["evidence_ids"])), Text(cause["explanation"]),
        )  # fmt: skip
    parts.append(causes)
    evidence = Table("id", "kind", "what", title="evidence")
    for record in triage.get("evidence", []):
        evidence.add_row(record["id"], record["kind"], Text(record["detail"]))
    parts.append(evidence)
    if triage.get("next_steps"):
        parts.append(Text("next steps:\n" + "\n".join(f"  • {step}" for step in triage["next_steps"])))
    if triage.get("resolution_summary"):
        parts.append(Text(f"resolution: {triage['resolution_summary']}", style="green"))
    for warning in triage.get("warnings", []):
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Group(*parts)

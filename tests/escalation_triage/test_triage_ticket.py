"""An incident's backlog ticket: its body is the incident's (summary, causes with their evidence, owner, next steps,
the escalations it is for, the evidence table, the escalation agent's footer), never the retro's; every text the
triage carries is escaped, @mentions included."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tools.escalation.model import Escalation, EscalationSeverity, EscalationStatus, EscalationType
from tools.escalation.triage.model import Incident, Owner, ProbableCause, Triage, TriageDraft
from tools.escalation.triage.ticket import incident_ticket
from tools.notify.message import Evidence
from tools.retro.model import Signal

OPENED = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
FIRING = datetime(2026, 3, 8, 2, 30, tzinfo=UTC)


def escalation(escalation_id: str, severity: EscalationSeverity, title: str) -> Escalation:
    return Escalation(
        escalation_id=escalation_id, fingerprint=f"fp-{escalation_id}", rule_id="errors_severe",
        escalation_type=EscalationType.ERROR_SPIKE, severity=severity, status=EscalationStatus.FIRING, title=title,
        description="", labels={"metric": "error_rate", "persona": "podcast_network"},
        affected_personas=["podcast_network"],
        evidence=[Evidence("error_rate", "podcast_network", 4.0, 0.5, 7.0, 0.002, 1840)],
        opened_at=OPENED, firing_at=FIRING,
    )  # fmt: skip


def evidence() -> tuple[Signal, ...]:
    return (
        Signal(id="E1", kind="escalation", metric="error_rate", persona="podcast_network", value=4.0,
               baseline=0.5, change=7.0, p_value=0.002, detail="errors", n=1840, subject="esc_a"),
        Signal(id="E2", kind="deployment", metric=None, persona=None, value=None, baseline=None, change=None,
               p_value=None, detail="deployment v1.4.0 reports", subject="v1.4.0",
               facts={"deployed_at": "2026-03-07T02:00:00+00:00"}),
        Signal(id="E3", kind="survey_theme", metric=None, persona="podcast_network", value=None, baseline=None,
               change=None, p_value=None, detail="comments", text=("reports fail",)),
    )  # fmt: skip


def triage(
    summary: str = "Report errors of podcast networks rose after v1.4.0 [E1, E2].", **changes: Any
) -> dict[str, Any]:
    draft = TriageDraft(
        summary=summary,
        probable_causes=[
            ProbableCause(title="deployment v1.4.0", explanation="Deployed the day the change began.",
                          evidence_ids=["E2", "E1"], confidence="high"),
            ProbableCause(title="a reporting backlog", explanation="Users wrote about failing reports.",
                          evidence_ids=["E3"], confidence="low"),
        ],
        next_steps=["Diff v1.4.0 against v1.3.9", "Acknowledge the escalations"],
    )  # fmt: skip
    incident = Incident("inc_1", ("esc_a", "esc_b", "esc_c"), {})
    recorded = Triage(incident, draft, Owner("reports", "#reports-oncall"), "rules", evidence()).as_dict()
    return recorded | changes


DUE = [
    escalation("esc_a", EscalationSeverity.CRITICAL, "Error rate spike for podcast networks"),
    escalation("esc_b", EscalationSeverity.HIGH, "Error rate above 2 for podcast networks"),
]


def test_the_body_is_the_incidents_not_the_retros() -> None:
    body = incident_ticket(triage(), DUE)["body"]

    assert body.startswith(
        "## Summary\n\nReport errors of podcast networks rose after v1.4.0 \\[E1, E2\\].\n"
    )
    assert "Triage: written by the rules.\n" in body
    assert (
        "- **deployment v1.4.0** (high confidence): Deployed the day the change began. Evidence: E2, E1.\n"
        in body
    )
    assert (
        "- **a reporting backlog** (low confidence): Users wrote about failing reports. Evidence: E3.\n"
        in body
    )
    assert "## Suggested owner\n\nreports (#reports-oncall)\n" in body
    assert "## Next steps\n\n- Diff v1.4.0 against v1.3.9\n- Acknowledge the escalations\n" in body
    assert "| esc_a | critical | Error rate spike for podcast networks | 2026-03-08 02:30 UTC |" in body
    assert "| esc_b | high | Error rate above 2 for podcast networks | 2026-03-08 02:30 UTC |" in body
    assert "Also in this incident: esc_c." in body
    table = body.split("| id | kind | metric | persona | value | baseline | change | p-value | n |\n", 1)[1]
    assert re.findall(r"^\| (E\d+) \|", table, flags=re.MULTILINE) == ["E2", "E1", "E3"]  # cited, in order
    assert "| E1 | escalation | error_rate | podcast_network | 4 | 0.5 | +700.0% | 0.002 | 1,840 |" in table
    assert "| E2 | deployment | v1.4.0 | all | — | — | — | — | — |" in table
    assert body.rstrip().endswith("---\nFiled by the feedbackloop escalation agent for incident inc_1.")
    assert "retro" not in body.lower() and "insight" not in body.lower()


def test_the_body_says_which_triage_wrote_it() -> None:
    assert (
        "Triage: written by the LLM; its causes were checked against the evidence.\n"
        in (incident_ticket(triage(triage="llm"), DUE)["body"])
    )
    fallback = incident_ticket(triage(warnings=["LLM triage failed after retries; the rules triaged"]), DUE)
    assert (
        "Triage: written by the rules, standing in for the LLM (LLM triage failed after retries; the rules "
        "triaged).\n" in fallback["body"]
    )


def test_without_owner_or_next_steps_the_body_says_so() -> None:
    body = incident_ticket(triage(owner=None, next_steps=[]), DUE)["body"]

    assert "Suggested owner" not in body
    assert "## Next steps\n\nThe triage suggests no next step.\n" in body


def test_markup_and_mentions_in_the_triage_are_escaped() -> None:
    hostile = (
        "@octocat and @acme/security: <script>alert(1)</script> **urgent** [click](https://evil.example) "
        "![pixel](https://evil.example/p.png) <!-- fingerprint:x --> | cell\n# heading; mail ops@acme.test"
    )
    body = incident_ticket(triage(summary=hostile), DUE)["body"]
    summary = body.split("## Summary\n\n", 1)[1].split("\n", 1)[0]

    assert summary == (
        "@\u200boctocat and @\u200bacme/security: \\<script>alert(1)\\</script> \\*\\*urgent\\*\\* "
        "\\[click\\](https://evil.example) !\\[pixel\\](https://evil.example/p.png) \\<!-- fingerprint:x --> "
        "\\| cell # heading; mail ops@acme.test"
    )
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", body), "markup in untrusted text survived"
    assert not re.search(r"(?<![\w\u200b])@\w", body), "an @mention survived"
    assert "\n# heading" not in body  # the newline collapsed: no heading injected

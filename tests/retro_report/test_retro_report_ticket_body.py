"""A backlog ticket's markdown body: the item's words, its insights, and the evidence rows of exactly the signals
it cites."""

from __future__ import annotations

import re

from tests.retro_report.support import RICE_LINE, planted_insights, planted_result, planted_signals
from tools.retro.report import render_ticket_body


def _evidence_ids(body: str) -> list[str]:
    table = body.split("| id | kind | metric | persona | value | baseline | change | p-value | n |\n", 1)[1]
    return re.findall(r"^\| (S\d+) \|", table, flags=re.MULTILINE)


def test_ticket_body_has_problem_proposal_checklist_insights_evidence_and_footer() -> None:
    result = planted_result()
    item = result["backlog_items"][0]
    body = render_ticket_body(item, result["insights"], result["signals"], result["retro_id"])

    assert body.startswith("## Problem\n\nSolo podcasters abandon onboarding at the RSS step since v2.4.0.\n")
    assert "## Proposal\n\nBring back the one-step import and measure completion for two weeks.\n" in body
    assert (
        "## Acceptance criteria\n\n- [ ] Import works from a pasted feed URL\n- [ ] Completion back above 55%\n"
        in body
    )
    assert "- **I1 · Solo podcasters stall in onboarding since v2.4.0** (High impact · onboarding" in body
    assert "I2" not in body and "I3" not in body  # only the insights the item comes from
    assert _evidence_ids(body) == ["S1", "S3"]
    assert (
        "| S1 | metric_change | onboarding_completion | solo_podcaster | 41.2% | 58.7% | -29.8% | <0.001 | 1,840 |"
        in body
    )
    assert "| S3 | deployment | v2.4.0 | all | — | — | — | — | — |" in body
    assert f"Priority: {RICE_LINE}" in body
    assert body.rstrip().endswith("Filed by the feedbackloop retro retro-2026-03-02-s14.")
    assert "<!--" not in body and "fp-B1" not in body  # the sink adds its own fingerprint marker


def test_ticket_body_escapes_what_users_and_the_llm_wrote() -> None:
    body = render_ticket_body(
        planted_result()["backlog_items"][0], planted_insights(), planted_signals(), "r1"
    )

    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", body), "markup in untrusted text survived"
    assert "\\<script>alert(1)\\</script> \\*bold\\* \\<!channel>" in body
    assert "\\[click\\](https://evil.example)" in body


def test_ticket_body_mentions_notify_no_one_but_mail_addresses_stay() -> None:
    item = planted_result()["backlog_items"][0] | {"problem": "@octocat and @acme/security, cc ops@acme.test"}
    body = render_ticket_body(item, planted_insights(), planted_signals(), "r1")

    assert "## Problem\n\n@\u200boctocat and @\u200bacme/security, cc ops@acme.test\n" in body


def test_ticket_body_lists_only_cited_signals_in_citation_order_and_names_missing_ones() -> None:
    item = planted_result()["backlog_items"][0] | {"evidence_ids": ["S5", "S2", "S5", "S42"]}
    body = render_ticket_body(item, planted_insights(), planted_signals(), "r1")

    assert _evidence_ids(body) == ["S5", "S2"]
    assert "Cited but not among this retro's signals: S42." in body


def test_ticket_body_without_matching_evidence_or_insights() -> None:
    item = planted_result()["backlog_items"][0] | {"evidence_ids": [], "insight_ids": ["I7"]}
    body = render_ticket_body(item, planted_insights(), [], "r1")

    assert "No insight of this retro is attached." in body
    assert "No cited evidence is among this retro's signals." in body and "| id |" not in body

"""The number formatting the templates share, and the Attempt verdicts the non-HTTP channels rely on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prompts import render
from tests.notify.support import ERROR_SPIKE, firing
from tools.notify.delivery import Attempt
from tools.notify.message import Evidence


def _evidence_line(item: Evidence) -> str:
    text = render("notifications/slack_alert.md.j2", alert=replace(ERROR_SPIKE, evidence=[item]))
    return next(line for line in text.splitlines() if line.startswith("• "))[2:]


@pytest.mark.parametrize(
    ("evidence", "line"),
    [
        (Evidence("error_rate", "agency", 0.0521, 0.0098, 4.316, 0.000123, 1204),
         "error_rate for agency: 0.0521 vs 0.0098 baseline (+431.6%), p = 0.00012, n = 1,204"),
        (Evidence("revenue", None, 12345.67, 15000.0, -0.17695, 0.049, 87),
         "revenue: 12,346 vs 15,000 baseline (-17.7%), p = 0.049, n = 87"),
        (Evidence("nps", "brand_sponsor", 31.0, 0.0, None, None, 12),
         "nps for brand_sponsor: 31 vs 0 baseline, n = 12"),
        (Evidence("ltv", "solo_podcaster", 412.5, None, None, 3.4e-07, 2000000),
         "ltv for solo_podcaster: 412.5, p = 3.4e-07, n = 2,000,000"),
        (Evidence("sessions", "agency", None, 4.0, None, None, 0),
         "sessions for agency: n/a vs 4 baseline, n = 0"),
    ],
)  # fmt: skip
def test_evidence_is_formatted_not_computed(evidence: Evidence, line: str) -> None:
    assert _evidence_line(evidence) == line


@pytest.mark.parametrize(
    ("attempt", "delivered", "retryable"),
    [
        (Attempt(200, None), True, False),
        (Attempt(404, "HTTP 404: gone"), False, False),
        (Attempt(429, "HTTP 429: slow", 5.0), False, True),
        (Attempt(503, "HTTP 503: busy"), False, True),
        (Attempt(None, "ConnectError"), False, True),
        (Attempt(None, None, verdict="delivered"), True, False),
        (Attempt(None, "SMTP 550: no", verdict="final"), False, False),
        (Attempt(200, "HTTP 200 without Slack's 'ok'", verdict="final"), False, False),
    ],
)
def test_attempt_verdict_overrides_the_status_class(
    attempt: Attempt, delivered: bool, retryable: bool
) -> None:
    assert (attempt.delivered, attempt.retryable) == (delivered, retryable)


def test_subject_and_pagerduty_summary_are_single_lines_from_templates() -> None:
    assert render("notifications/email_subject.txt.j2", notification=firing()).strip() == firing().title
    summary = render("notifications/pagerduty_summary.txt.j2", notification=firing(summary="")).strip()
    assert summary == firing().title

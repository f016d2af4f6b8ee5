"""Backlog items the sink tests file, shaped like the retro agent's (tools/retro/model.py)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.retro.model import BacklogItem, Priority

SECRET = "whsec_" + base64.b64encode(b"feedbackloop-ticket-secret-32by!").decode()
GITHUB_TOKEN = "ghp_fakeTokenForTests0123456789abcdef"
JIRA_EMAIL = "retro-bot@example.test"
JIRA_API_TOKEN = "ATATT3xFakeJiraTokenForTests0123"
FILED_AT = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)

BODY = """## Problem

Sponsor reports per active podcaster fell **33%** for `podcast_network` after v1.4.0.

## Proposal

Bring back the one-click report from the campaign page.

## Acceptance criteria

- [ ] Reports per user back above 4.5 for two weeks
- [ ] No rise in report errors

## Evidence

| id | kind | metric | persona | value | baseline | change | p-value | n |
|---|---|---|---|---:|---:|---:|---:|---:|
| S1 | metric_change | sponsor_reports_per_user | podcast_network | 3.2 | 4.8 | -33.3% | 0.0031 | 385 |

Priority: RICE 96.25
"""


def fingerprint(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def backlog_item(**changes: Any) -> BacklogItem:
    item = BacklogItem(
        id="B1",
        title="Sponsor reports: bring back the one-click report",
        problem="Sponsor reports per active podcaster fell 33% for podcast_network after v1.4.0.",
        proposal="Bring back the one-click report from the campaign page.",
        acceptance_criteria=("Reports per user back above 4.5 for two weeks", "No rise in report errors"),
        labels=("renewal", "podcast_network"),
        priority=Priority(score=96.25, reach=385, impact=2.0, confidence=0.8, effort=6.4),
        insight_ids=("I1",),
        evidence_ids=("S1", "S3"),
        fingerprint=fingerprint("metric_change|sponsor_reports_per_user|podcast_network|renewal"),
        body=BODY,
    )
    return replace(item, **changes)


def numbered_item(index: int) -> BacklogItem:
    return backlog_item(
        id=f"B{index}", title=f"Backlog item number {index}", fingerprint=fingerprint(str(index))
    )


def file_in_process(path: str, start: Any, indices: list[int], results: Any) -> None:
    """Run in a child process: wait for the others, then file every item; report (fingerprint, created)."""
    from tools.tickets.jsonl import JsonlTicketSink

    sink = JsonlTicketSink(Path(path))
    start.wait(timeout=30)
    for index in indices:
        ref = sink.file(numbered_item(index))
        results.put((index, ref.key, ref.created))

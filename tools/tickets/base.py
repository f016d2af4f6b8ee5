"""The one interface every ticket sink implements, its one error type, and what all sinks share.

A sink files a `BacklogItem` and answers with a `TicketRef`. Filing is idempotent by `item.fingerprint`: a sink
that already holds the fingerprint returns the existing ticket with `created=False` and creates nothing, so the
retro agent can re-run (or be retried after a crash) without duplicating tickets. Sinks that store free text
(GitHub, markdown) carry the fingerprint in a hidden HTML comment, the marker, which renders as nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from tools.retro.model import BacklogItem, TicketRef

DEDUPE_LABEL = "feedbackloop"  # every ticket we file carries it, so dedupe listings can filter on it
MAX_MESSAGE_CHARS = 300
_FINGERPRINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+/=-]*")
_MARKER_PATTERN = re.compile(r"<!--\s*feedbackloop:fingerprint=([^\s>]+)\s*-->")


class TicketSink(Protocol):
    """A place tickets go ("jsonl", "markdown", "github", "jira", "webhook")."""

    @property
    def name(self) -> str: ...

    def file(self, item: BacklogItem) -> TicketRef:
        """File `item` unless the sink already holds its fingerprint. Raises TicketSinkError."""
        ...


class TicketSinkError(Exception):
    """Filing failed. `transient` means trying again later may succeed (no connection, timeout, 429, 5xx);
    otherwise the sink refused the item or its configuration (401, 403, 404, 422, a disk that cannot be
    written) and a retry would meet the same answer. Messages never contain credentials."""

    def __init__(
        self,
        sink: str,
        message: str,
        *,
        transient: bool = False,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{sink}: {message}")
        self.sink = sink
        self.message = message
        self.transient = transient
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds  # the service's Retry-After, when it sent one


def utc_now() -> datetime:
    return datetime.now(UTC)


def fingerprint_marker(fingerprint: str) -> str:
    """The hidden marker: `<!-- feedbackloop:fingerprint=<fp> -->` (invisible in rendered markdown)."""
    if not _FINGERPRINT.fullmatch(fingerprint) or "--" in fingerprint:
        raise ValueError(
            f"fingerprint {fingerprint!r} cannot be carried in a marker (letters, digits, _.:+/=-)"
        )
    return f"<!-- feedbackloop:fingerprint={fingerprint} -->"


def marker_fingerprints(text: str | None) -> set[str]:
    """Every fingerprint carried by markers in `text`."""
    return set(_MARKER_PATTERN.findall(text or ""))


def strip_markers(text: str) -> str:
    return _MARKER_PATTERN.sub("", text)


def item_markdown(item: BacklogItem) -> str:
    """The ticket body without marker: the rendered `item.body`, or one built from the item's own fields when
    the retro did not render one (problem, proposal, acceptance criteria as a checklist, evidence ids)."""
    if item.body.strip():
        return strip_markers(item.body).strip() + "\n"
    lines = ["## Problem", "", item.problem.strip(), "", "## Proposal", "", item.proposal.strip(), ""]
    if item.acceptance_criteria:
        lines += ["## Acceptance criteria", ""]
        lines += [f"- [ ] {criterion.strip()}" for criterion in item.acceptance_criteria]
        lines.append("")
    if item.evidence_ids:
        lines += ["## Evidence", "", "Signals: " + ", ".join(item.evidence_ids), ""]
    priority = item.priority
    lines.append(
        f"_RICE score {priority.score:g} (reach {priority.reach}, impact {priority.impact:g}, "
        f"confidence {priority.confidence:g}, effort {priority.effort:g} person-weeks)_"
    )
    return "\n".join(lines) + "\n"


def ticket_body(item: BacklogItem) -> str:
    """The body a text sink stores: the markdown, then the marker on its own last line."""
    return item_markdown(item) + "\n" + fingerprint_marker(item.fingerprint) + "\n"


def ticket_labels(*groups: Iterable[str]) -> list[str]:
    """DEDUPE_LABEL first, then each label once, in order, blanks dropped."""
    labels = [DEDUPE_LABEL]
    for group in groups:
        for label in group:
            label = label.strip()
            if label and label not in labels:
                labels.append(label)
    return labels


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

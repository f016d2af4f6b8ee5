"""Jira Cloud (REST API v3), with Basic auth (account e-mail + API token).

Dedupe by label rather than by text: every issue gets `feedbackloop` and `fl-<fingerprint[:16]>`, and before
creating, `POST /rest/api/3/search/jql` with `labels = "fl-…"` finds an earlier one, in any status. Jira's search
index trails writes by a few seconds, so two filings of one item within that time can both create; the retro
files each item once per run, so that race needs two concurrent retros over the same window. The description is
the markdown body converted to ADF (tools.tickets.adf), which is what v3 accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.retro.model import BacklogItem, TicketRef
from tools.tickets.adf import markdown_to_adf
from tools.tickets.base import TicketSinkError, item_markdown, ticket_labels
from tools.tickets.transport import json_object, request, session

FINGERPRINT_LABEL_PREFIX = "fl-"
FINGERPRINT_LABEL_CHARS = 16
MAX_SUMMARY_CHARS = 255  # Jira refuses longer summaries
MAX_LABEL_CHARS = 255


@dataclass(frozen=True, slots=True)
class JiraIssueSink:
    base_url: str  # https://your-site.atlassian.net
    email: str
    api_token: str = field(repr=False)
    project_key: str = ""
    issue_type: str = "Task"
    name: str = "jira"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.project_key:
            raise ValueError("the Jira project key is required")

    @property
    def site(self) -> str:
        return self.base_url.rstrip("/")

    def file(self, item: BacklogItem) -> TicketRef:
        with session(self.client, self.timeout_seconds) as client:
            return self._file(client, item)

    def _file(self, client: httpx.Client, item: BacklogItem) -> TicketRef:
        label = fingerprint_label(item.fingerprint)
        existing = self._find(client, label)
        if existing is not None:
            return TicketRef(self.name, existing, self.browse_url(existing), created=False)
        fields = {
            "project": {"key": self.project_key},
            "summary": " ".join(item.title.split())[:MAX_SUMMARY_CHARS],
            "issuetype": {"name": self.issue_type},
            "labels": _labels(label, item.labels),
            "description": markdown_to_adf(item_markdown(item)),
        }
        what = f"creating an issue in Jira project {self.project_key}"
        response = self._request(client, "POST", "/rest/api/3/issue", what=what, json={"fields": fields})
        key = json_object(self.name, response, what=what).get("key")
        if not isinstance(key, str) or not key:
            raise TicketSinkError(self.name, f"{what}: HTTP {response.status_code} answer has no issue key")
        return TicketRef(self.name, key, self.browse_url(key), created=True)

    def _find(self, client: httpx.Client, label: str) -> str | None:
        """The key of an issue carrying `label`, if Jira's search finds one."""
        query = {"jql": f'labels = "{_jql_string(label)}"', "fields": ["summary", "labels"], "maxResults": 1}
        what = f"searching Jira for label {label}"
        answer = json_object(
            self.name,
            self._request(client, "POST", "/rest/api/3/search/jql", what=what, json=query),
            what=what,
        )
        issues = answer.get("issues")
        if not isinstance(issues, list):
            raise TicketSinkError(self.name, f"{what}: the answer has no list of issues")
        for issue in issues:
            if isinstance(issue, dict) and isinstance(issue.get("key"), str):
                return str(issue["key"])
        return None

    def browse_url(self, key: str) -> str:
        return f"{self.site}/browse/{key}"

    def _request(
        self, client: httpx.Client, method: str, path: str, *, what: str, **options: Any
    ) -> httpx.Response:
        return request(
            self.name,
            client,
            method,
            self.site + path,
            what=what,
            secrets=(self.api_token,),
            auth=httpx.BasicAuth(self.email, self.api_token),
            headers={"Accept": "application/json"},
            **options,
        )


def fingerprint_label(fingerprint: str) -> str:
    return FINGERPRINT_LABEL_PREFIX + jira_label(fingerprint[:FINGERPRINT_LABEL_CHARS])


def jira_label(text: str) -> str:
    """Jira labels cannot contain spaces: "sponsor reports" → "sponsor-reports"."""
    return re.sub(r"\s+", "-", text.strip())[:MAX_LABEL_CHARS]


def _labels(fingerprint_label: str, item_labels: tuple[str, ...]) -> list[str]:
    """`feedbackloop`, the fingerprint label, then the item's own labels made valid for Jira."""
    return ticket_labels([fingerprint_label], [jira_label(label) for label in item_labels])


def _jql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')

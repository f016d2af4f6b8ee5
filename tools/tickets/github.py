"""GitHub Issues (REST API, version 2022-11-28).

Dedupe first: list the repository's issues that carry the `feedbackloop` label, open and closed
(`GET /repos/{owner}/{repo}/issues?state=all&labels=feedbackloop&per_page=100`, following `Link: rel="next"`),
and look for the item's fingerprint marker in their bodies. Closed issues count: a problem someone closed as
"won't fix" should not come back every sprint. Filtering on the label also means an outsider cannot plant a
marker to suppress a ticket: GitHub drops labels from issues opened by people without triage access.

Only then `POST /repos/{owner}/{repo}/issues` with the title, the body plus marker, and the labels (GitHub
creates labels that do not exist yet). The listing is bounded; past the bound the sink refuses to file rather
than risk a duplicate, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.retro.model import BacklogItem, TicketRef
from tools.tickets.base import DEDUPE_LABEL, TicketSinkError, marker_fingerprints, ticket_body, ticket_labels
from tools.tickets.transport import json_object, json_value, request, session

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PAGE_SIZE = 100
MAX_LISTING_PAGES = 20  # 2,000 labelled issues
MAX_TITLE_CHARS = 256


@dataclass(frozen=True, slots=True)
class GitHubIssueSink:
    repository: str  # "owner/name"
    token: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    labels: tuple[str, ...] = ()  # added to every issue, after `feedbackloop` and before the item's own
    name: str = "github"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = 10.0
    max_listing_pages: int = MAX_LISTING_PAGES

    def __post_init__(self) -> None:
        owner, _, repo = self.repository.partition("/")
        if not owner or not repo or "/" in repo:
            raise ValueError(f"the GitHub repository must be 'owner/name', not {self.repository!r}")

    @property
    def issues_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/repos/{self.repository}/issues"

    def file(self, item: BacklogItem) -> TicketRef:
        with session(self.client, self.timeout_seconds) as client:
            return self._file(client, item)

    def _file(self, client: httpx.Client, item: BacklogItem) -> TicketRef:
        existing = self._find(client, item.fingerprint)
        if existing is not None:
            return TicketRef(self.name, str(existing["number"]), existing.get("html_url"), created=False)
        payload = {
            "title": " ".join(item.title.split())[:MAX_TITLE_CHARS],
            "body": ticket_body(item),
            "labels": ticket_labels(self.labels, item.labels),
        }
        what = f"creating an issue in {self.repository}"
        response = self._request(client, "POST", self.issues_url, what=what, json=payload)
        created = json_object(self.name, response, what=what)
        if not isinstance(created.get("number"), int):
            raise TicketSinkError(
                self.name, f"{what}: HTTP {response.status_code} answer has no issue number"
            )
        return TicketRef(self.name, str(created["number"]), created.get("html_url"), created=True)

    def _find(self, client: httpx.Client, fingerprint: str) -> dict[str, Any] | None:
        """The issue (open or closed, never a pull request) whose body carries the fingerprint's marker."""
        url = self.issues_url
        params: dict[str, str | int] | None = {"state": "all", "labels": DEDUPE_LABEL, "per_page": PAGE_SIZE}
        what = f"listing the {DEDUPE_LABEL} issues of {self.repository}"
        for _page in range(self.max_listing_pages):
            response = self._request(client, "GET", url, what=what, params=params)
            issues = json_value(self.name, response, what=what)
            if not isinstance(issues, list):
                raise TicketSinkError(self.name, f"{what}: the answer is not a list of issues")
            for issue in issues:
                if (
                    isinstance(issue, dict)
                    and "pull_request" not in issue
                    and fingerprint in marker_fingerprints(issue.get("body"))
                ):
                    return issue
            next_url = response.links.get("next", {}).get("url")
            if next_url is None:
                return None
            self._check_same_origin(next_url, what)
            url, params = next_url, None  # the next link carries the query
        raise TicketSinkError(
            self.name,
            f"{what}: more than {self.max_listing_pages * PAGE_SIZE} issues carry the {DEDUPE_LABEL} label, so "
            "a duplicate cannot be ruled out; nothing was filed (remove the label from old closed issues, or "
            "raise max_listing_pages)",
        )

    def _request(
        self, client: httpx.Client, method: str, url: str, *, what: str, **options: Any
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        return request(
            self.name,
            client,
            method,
            url,
            what=what,
            secrets=(self.token,),
            headers=headers,
            **options,
        )

    def _check_same_origin(self, url: str, what: str) -> None:
        # The token goes wherever the next link points: only ever back to the configured API.
        expected, actual = httpx.URL(self.api_url), httpx.URL(url)
        if (actual.scheme, actual.host, actual.port) != (expected.scheme, expected.host, expected.port):
            raise TicketSinkError(self.name, f"{what}: the next page is on another host ({actual.host})")

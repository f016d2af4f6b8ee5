"""Fakes of the services the sinks talk to, on 127.0.0.1 only (http.server in a thread, as in tests/notify).

Each implements the documented request and response shapes the sink relies on, checks credentials the way the
service does, and can be told to answer the next requests with a scripted failure.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.loopback import LoopbackServer, read_body, write_answer
from tools.notify.signing import signature


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded unless it is a str
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


class FakeServer:
    """Records every request; answers the scripted ones first, then through `answer` (subclasses)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.scripted: list[Answer] = []
        self.lock = threading.Lock()
        self.loopback = LoopbackServer(self._serve)
        self.base_url = self.loopback.base_url

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body, headers = read_body(handler)
        parts = urlsplit(handler.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        request = Request(handler.command, parts.path, query, headers, body)
        with self.lock:
            self.requests.append(request)
            answer = self.scripted.pop(0) if self.scripted else self.answer(request)
        if answer.delay_seconds:
            time.sleep(answer.delay_seconds)
        is_text = isinstance(answer.body, str)
        payload = (answer.body if is_text else json.dumps(answer.body)).encode("utf-8")
        content_type = {"content-type": "text/plain" if is_text else "application/json"}
        write_answer(handler, answer.status, payload, content_type | answer.headers)

    def answer(self, request: Request) -> Answer:
        return Answer(200, {})

    def script(self, *answers: Answer) -> None:
        with self.lock:
            self.scripted.extend(answers)

    def close(self) -> None:
        self.loopback.close()


class FakeGitHub(FakeServer):
    """GitHub Issues REST: list (filters state/labels, per_page ≤ 100, page, Link rel="next") and create."""

    def __init__(self, token: str, repository: str = "acme/podcast-app") -> None:
        super().__init__()
        self.token = token
        self.repository = repository
        self.issues: list[dict[str, Any]] = []  # newest last; listed newest first, as GitHub does

    @property
    def issues_path(self) -> str:
        return f"/repos/{self.repository}/issues"

    def add_issue(
        self, title: str, body: str = "", labels: tuple[str, ...] = (), **extra: Any
    ) -> dict[str, Any]:
        number = len(self.issues) + 1
        issue = {
            "id": 1000 + number,
            "number": number,
            "title": title,
            "body": body,
            "labels": [{"name": label} for label in labels],
            "state": "open",
            "html_url": f"https://github.test/{self.repository}/issues/{number}",
            **extra,
        }
        self.issues.append(issue)
        return issue

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            echoed = request.headers.get("authorization", "")  # a careless proxy echoing the header back
            return Answer(
                401, {"message": f"Bad credentials ({echoed})", "documentation_url": "https://docs"}
            )
        if request.headers.get("accept") != "application/vnd.github+json" or not request.headers.get(
            "x-github-api-version"
        ):
            return Answer(415, {"message": "Unsupported media type"})
        if request.path != self.issues_path:
            return Answer(404, {"message": "Not Found"})
        if request.method == "POST":
            return self._create(request.json())
        return self._list(request.query)

    def _create(self, payload: dict[str, Any]) -> Answer:
        if not payload.get("title"):
            errors = [{"resource": "Issue", "code": "missing_field", "field": "title"}]
            return Answer(422, {"message": "Validation Failed", "errors": errors})
        issue = self.add_issue(
            payload["title"], payload.get("body") or "", tuple(payload.get("labels") or ())
        )
        return Answer(201, issue, {"location": f"{self.base_url}{self.issues_path}/{issue['number']}"})

    def _list(self, query: dict[str, str]) -> Answer:
        wanted = {label for label in query.get("labels", "").split(",") if label}
        state = query.get("state", "open")
        matching = [
            issue
            for issue in reversed(self.issues)
            if wanted <= {label["name"] for label in issue["labels"]} and state in ("all", issue["state"])
        ]
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        shown = matching[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(matching):
            next_query = urlencode({**query, "page": page + 1})
            headers["link"] = f'<{self.base_url}{self.issues_path}?{next_query}>; rel="next"'
        return Answer(200, shown, headers)


class FakeJira(FakeServer):
    """Jira Cloud REST v3: create issue (fields validated, ADF description) and the JQL search by label."""

    def __init__(self, email: str, api_token: str, project_key: str = "FL") -> None:
        super().__init__()
        self.credentials = "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode()
        self.project_key = project_key
        self.issues: list[dict[str, Any]] = []

    def answer(self, request: Request) -> Answer:
        if request.headers.get("authorization") != self.credentials:
            return Answer(401, {"errorMessages": ["You are not authorized to perform this operation."]})
        if request.method == "POST" and request.path == "/rest/api/3/issue":
            return self._create(request.json()["fields"])
        if request.method == "POST" and request.path == "/rest/api/3/search/jql":
            return self._search(request.json())
        return Answer(404, {"errorMessages": ["Not found"]})

    def _create(self, fields: dict[str, Any]) -> Answer:
        errors: dict[str, str] = {}
        if fields.get("project", {}).get("key") != self.project_key:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if fields.get("issuetype", {}).get("name") not in ("Task", "Story", "Bug"):
            errors["issuetype"] = "Specify a valid issue type"
        if any(" " in label for label in fields.get("labels", [])):
            errors["labels"] = "The label can't contain spaces."
        if not valid_adf(fields.get("description")):
            errors["description"] = "Operation value must be an Atlassian Document."
        if errors:
            return Answer(400, {"errorMessages": [], "errors": errors})
        number = 1000 + len(self.issues)
        issue = {"id": str(10000 + number), "key": f"{self.project_key}-{number}", "fields": fields}
        self.issues.append(issue)
        self_url = f"{self.base_url}/rest/api/3/issue/{issue['id']}"
        return Answer(201, {"id": issue["id"], "key": issue["key"], "self": self_url})

    def _search(self, query: dict[str, Any]) -> Answer:
        match = re.fullmatch(r'labels = "([^"]+)"', query.get("jql", ""))
        if match is None:
            return Answer(
                400, {"errorMessages": [f"Error in the JQL Query: {query.get('jql')!r}"], "errors": {}}
            )
        found = [issue for issue in self.issues if match[1] in issue["fields"]["labels"]]
        shown = found[: int(query.get("maxResults", 50))]
        issues = [
            {"id": issue["id"], "key": issue["key"], "fields": {"labels": issue["fields"]["labels"]}}
            for issue in shown
        ]
        return Answer(200, {"issues": issues, "isLast": True})


class FakeReceiver(FakeServer):
    """A Standard Webhooks receiver: verifies the signature, answers 409 for a webhook-id it has seen."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.seen: set[str] = set()

    def answer(self, request: Request) -> Answer:
        message_id = request.headers.get("webhook-id", "")
        timestamp = int(request.headers.get("webhook-timestamp", "0"))
        expected = signature(self.secret, message_id, timestamp, request.body)
        if request.headers.get("webhook-signature") != expected:
            return Answer(401, {"error": "bad signature"})
        if message_id in self.seen:
            return Answer(409, {"error": "duplicate"})
        self.seen.add(message_id)
        return Answer(202, {"accepted": message_id})


def valid_adf(node: Any, top: bool = True) -> bool:
    """ADF's structural rules that Jira enforces and a converter can break: a versioned doc at the top, a type
    on every node, content lists, non-empty text in text nodes."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    if top and (node["type"] != "doc" or node.get("version") != 1):
        return False
    if node["type"] == "text":
        return isinstance(node.get("text"), str) and node["text"] != ""
    content = node.get("content", [])
    return isinstance(content, list) and all(valid_adf(child, top=False) for child in content)

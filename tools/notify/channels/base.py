"""The one interface every channel implements, and the HTTP classification the HTTP channels share.

2xx → delivered. Timeouts, connection errors, 429 (Retry-After parsed) and 5xx → retryable. Any other 4xx is
final: the receiver refused this message and will refuse it again; the error keeps the status and a bounded
excerpt of the receiver's answer so an operator can see why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import httpx

from tools.notify.delivery import MAX_ERROR_CHARS, REQUEST_TIMEOUT_SECONDS, Attempt, parse_retry_after
from tools.notify.message import Notification

MAX_BODY_EXCERPT_CHARS = 300


class Notifier(Protocol):
    """A channel. `send` makes one delivery attempt and reports it; it never raises for delivery failures."""

    @property
    def name(self) -> str: ...

    @property
    def send_resolved(self) -> bool:
        """Whether this channel also wants the notification that a group has resolved."""
        ...

    def send(self, notification: Notification, *, now: datetime) -> Attempt: ...


def wants(notifier: Notifier, notification: Notification) -> bool:
    """Alertmanager's send_resolved: every channel gets firing groups; only some get resolved ones."""
    return notification.status == "firing" or notifier.send_resolved


def require_http_url(url: str, what: str) -> None:
    """Reject a misconfigured URL when the notifier is built, not at 3 a.m. on the first alert.

    The message never repeats the URL: webhook URLs (Slack's in particular) are secrets.
    """
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        raise ValueError(f"the {what} must be an http:// or https:// URL")


def post_json(
    client: httpx.Client | None,
    url: str,
    body: bytes,
    *,
    now: datetime,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
) -> tuple[Attempt, httpx.Response | None]:
    """POST a JSON body; the attempt as classified by status, plus the response when there was one."""
    sent_headers = {"content-type": "application/json", **(headers or {})}
    try:
        if client is None:
            with httpx.Client(timeout=timeout_seconds) as own_client:
                response = own_client.post(url, content=body, headers=sent_headers)
        else:
            response = client.post(url, content=body, headers=sent_headers)
    except httpx.HTTPError as error:
        return transport_failure(error), None
    return attempt_from_response(response, now), response


def transport_failure(error: Exception) -> Attempt:
    """A timeout or connection error: nothing reached the receiver, so trying again is safe."""
    return Attempt(None, f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])


def attempt_from_response(response: httpx.Response, now: datetime) -> Attempt:
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, None)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    return Attempt(response.status_code, http_error(response), retry_after)


def http_error(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {excerpt(response.text)}"[:MAX_ERROR_CHARS]


def excerpt(text: str, limit: int = MAX_BODY_EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

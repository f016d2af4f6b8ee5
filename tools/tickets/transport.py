"""HTTP for the remote sinks: one request helper that turns every failure into a `TicketSinkError`.

Classification: no connection or a timeout → transient (nothing was created, or dedupe finds it on the retry);
429, 5xx, and GitHub's rate-limit 403 (Retry-After, or no requests left) → transient; any other non-2xx → final,
because the service refused this request and will refuse it again. Messages carry the HTTP status and the
service's own error text (GitHub's `message`/`errors`, Jira's `errorMessages`/`errors`), never a request header,
and every credential the sink knows is scrubbed from them in case a service echoes it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tools.tickets.base import TicketSinkError, clip


@contextmanager
def session(client: httpx.Client | None, timeout_seconds: float) -> Iterator[httpx.Client]:
    """The injected client (left open: its owner closes it), or one of our own for this filing only, so the
    requests of one filing (a paginated listing, then the create) share a connection."""
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=timeout_seconds) as own_client:
        yield own_client


def request(
    sink: str,
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    secrets: Collection[str] = (),
    accept: Collection[int] = (),
    **options: Any,
) -> httpx.Response:
    """Send one request; a 2xx answer, or one whose status is in `accept`, is returned; anything else raises.

    `what` says what the request was for ("creating the issue"), so the message reads as the failed step.
    """
    try:
        response = client.request(method, url, **options)
    except httpx.TimeoutException:
        seconds = client.timeout.read
        limit = f" after {seconds:g} s" if seconds is not None else ""
        raise TicketSinkError(sink, f"{what} timed out{limit}", transient=True) from None
    except httpx.HTTPError as error:
        reason = redact(f"{type(error).__name__}: {error}", secrets)
        raise TicketSinkError(sink, f"{what} failed: {clip(reason)}", transient=True) from None
    if response.is_success or response.status_code in accept:
        return response
    raise response_error(sink, response, what=what, secrets=secrets)


def response_error(
    sink: str, response: httpx.Response, *, what: str, secrets: Collection[str] = ()
) -> TicketSinkError:
    status = response.status_code
    rate_limited = status == 403 and (
        "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0"
    )
    transient = status == 429 or status >= 500 or rate_limited
    message = f"{what} failed: HTTP {status}: {clip(redact(error_text(response), secrets))}"
    retry_after = _retry_after_seconds(response.headers.get("retry-after"))
    return TicketSinkError(
        sink, message, transient=transient, status_code=status, retry_after_seconds=retry_after
    )


def error_text(response: httpx.Response) -> str:
    """The service's own explanation: the JSON error fields GitHub and Jira use, else the body's text."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip() or response.reason_phrase
    if not isinstance(data, dict):
        return response.text.strip()
    parts: list[str] = []
    for key in ("message", "error", "detail", "error_description"):
        if isinstance(data.get(key), str):
            parts.append(data[key])
    messages = data.get("errorMessages")
    if isinstance(messages, list):
        parts += [str(message) for message in messages]
    errors = data.get("errors")
    if isinstance(errors, dict):  # Jira: {"summary": "You must specify a summary of the issue."}
        parts += [f"{field}: {message}" for field, message in errors.items()]
    elif isinstance(
        errors, list
    ):  # GitHub: [{"resource": "Issue", "field": "title", "code": "missing_field"}]
        parts += [_github_error(entry) for entry in errors]
    return "; ".join(part for part in parts if part) or response.text.strip()


def json_value(sink: str, response: httpx.Response, *, what: str) -> Any:
    """The answer's JSON; a success answer that is not JSON comes from a service (or proxy) we cannot read."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TicketSinkError(
            sink, f"{what}: HTTP {response.status_code} answer is not JSON: {clip(response.text)}"
        ) from None


def json_object(sink: str, response: httpx.Response, *, what: str) -> dict[str, Any]:
    data = json_value(sink, response, what=what)
    if not isinstance(data, dict):
        raise TicketSinkError(sink, f"{what}: HTTP {response.status_code} answer is not a JSON object")
    return data


def redact(text: str, secrets: Collection[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def _github_error(entry: object) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    if isinstance(entry.get("message"), str):
        return str(entry["message"])
    return " ".join(str(entry[key]) for key in ("resource", "field", "code") if key in entry)


def _retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare for these APIs, and the caller's own backoff is fine

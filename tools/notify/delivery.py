"""Deliver due outbox messages: sign, POST, and classify the answer the way on-call tooling expects.

2xx → delivered. Timeouts, connection errors, 429 and 5xx → retried with exponential backoff (a Retry-After of
429/503 is honoured when longer). Any other 4xx is final: the receiver refused this message and will refuse it
again, so it is recorded as failed with the status and body, not retried forever. After `max_attempts` a message
is failed too, with its last error kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx

from store.database import Database
from store.repositories import outbox as repo
from tools.notify.incidents import with_incidents
from tools.notify.message import Notification
from tools.notify.signing import headers

if TYPE_CHECKING:  # the channels import this module for Attempt
    from tools.notify.channels.base import Notifier

DEFAULT_MAX_ATTEMPTS = 8
BASE_BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0
CLAIM_LEASE = timedelta(minutes=2)  # longer than one attempt can take (timeout × a batch is bounded below)
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    error: str | None
    retry_after_seconds: float | None = None
    # A channel's own verdict where the HTTP status cannot tell (SMTP replies, a file sink, Slack's 200 without
    # "ok"): it overrides the status code's class. None = classify by status_code alone.
    verdict: Literal["delivered", "final"] | None = None

    @property
    def delivered(self) -> bool:
        if self.verdict is not None:
            return self.verdict == "delivered"
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.verdict is not None:
            return False
        if self.status_code is None:
            return True  # timeout or connection error
        return self.status_code == 429 or self.status_code >= 500


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def backoff_seconds(attempts: int, retry_after_seconds: float | None) -> float:
    """30 s, 60 s, 120 s … capped at an hour; a longer Retry-After wins."""
    delay = min(BASE_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return max(delay, retry_after_seconds or 0.0)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - now).total_seconds(), 0.0) if moment.tzinfo else None


def post_webhook(
    client: httpx.Client, url: str, message_id: str, payload: Any, secret: str, now: datetime
) -> Attempt:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    try:
        response = client.post(
            url, content=body, headers=headers(secret, message_id, int(now.timestamp()), body)
        )
    except httpx.HTTPError as error:
        return Attempt(None, f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, None)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    return Attempt(
        response.status_code, f"HTTP {response.status_code}: {response.text}"[:MAX_ERROR_CHARS], retry_after
    )


SURVEY_WEBHOOK = "survey.response.completed"
ESCALATION_GROUP = "escalation.group"


def deliver_due(
    database: Database,
    *,
    secret: str | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
    client: httpx.Client | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int = 100,
) -> DeliveryReport:
    """One pass over the due messages (at most `limit`); each attempt's outcome is committed on its own.

    Survey webhooks are sent when `secret` is given (never unsigned); escalation notifications when `notifiers`
    is given, each through the notifier of its channel. A notification for a channel that is not configured
    (any more) is final: retrying cannot make a channel appear.
    """
    kinds = ([SURVEY_WEBHOOK] if secret else []) + ([ESCALATION_GROUP] if notifiers is not None else [])
    report = DeliveryReport()
    if not kinds:
        return report
    owned = client is None
    client = client or httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        with database.write() as connection:
            due = repo.claim_due(connection, clock(), CLAIM_LEASE, limit, event_types=kinds)
        for message in due:
            now = clock()
            if message["event_type"] == ESCALATION_GROUP:
                attempt = _notify(database, notifiers or {}, message, now)
            else:
                assert secret is not None
                attempt = post_webhook(
                    client, message["destination"], message["id"], message["payload"], secret, now
                )
            _record(database, message, attempt, now, max_attempts, report)
    finally:
        if owned:
            client.close()
    return report


def _notify(database: Database, notifiers: Mapping[str, Notifier], message: Any, now: datetime) -> Attempt:
    notifier = notifiers.get(message["channel"])
    if notifier is None:
        return Attempt(None, f"channel {message['channel']!r} is not configured", verdict="final")
    notification = with_incidents(database, Notification.from_dict(message["payload"]))
    return notifier.send(notification, now=now)


def _record(
    database: Database,
    message: Any,
    attempt: Attempt,
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    attempts = int(message["attempts"]) + 1
    values: dict[str, Any] = {"last_status_code": attempt.status_code, "last_error": attempt.error}
    if attempt.delivered:
        values |= {"status": "delivered", "delivered_at": now}
        report.delivered += 1
    elif attempt.retryable and attempts < max_attempts:
        values["next_attempt_at"] = now + timedelta(
            seconds=backoff_seconds(attempts, attempt.retry_after_seconds)
        )
        report.retrying += 1
    else:
        values["status"] = "failed"
        report.failed += 1
    if attempt.error:
        report.errors.append(f"{message['id']}: {attempt.error}")
    with database.write() as connection:
        repo.record_attempt(connection, message["id"], values)

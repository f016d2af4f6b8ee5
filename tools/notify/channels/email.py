"""E-mail over SMTP (stdlib smtplib): a multipart/alternative message, plain text and HTML, from templates.

SMTP's reply classes decide: 2yz delivered; 4yz (and disconnects, timeouts, refused connections) are transient,
so the attempt is retryable; 5yz is permanent, so it is final. `Attempt.status_code` stays None (it is an HTTP
status); the SMTP code is in `error`, and `verdict` carries the delivered/final decision.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from prompts import render
from tools.notify.delivery import MAX_ERROR_CHARS, REQUEST_TIMEOUT_SECONDS, Attempt
from tools.notify.message import Notification

MESSAGE_ID_DOMAIN = "feedbackloop"


@dataclass(frozen=True, slots=True)
class EmailNotifier:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    send_resolved: bool = False
    name: str = "email"
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("the e-mail channel needs at least one recipient (FEEDBACKLOOP_SMTP_TO)")

    def send(self, notification: Notification, *, now: datetime) -> Attempt:
        message = email_message(notification, sender=self.sender, recipients=self.recipients)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message, from_addr=self.sender, to_addrs=list(self.recipients))
        except smtplib.SMTPRecipientsRefused as error:
            return _recipients_refused(error.recipients)
        except smtplib.SMTPResponseException as error:
            return _smtp_reply(error.smtp_code, error.smtp_error)
        except smtplib.SMTPServerDisconnected as error:
            return Attempt(None, f"SMTP server disconnected: {error}"[:MAX_ERROR_CHARS])
        except smtplib.SMTPException as error:
            # No STARTTLS or no AUTH offered, no usable auth mechanism: configuration, not luck.
            return Attempt(None, f"SMTP: {error}"[:MAX_ERROR_CHARS], verdict="final")
        except ssl.SSLCertVerificationError as error:
            return Attempt(None, f"SMTP TLS certificate rejected: {error}"[:MAX_ERROR_CHARS], verdict="final")
        except OSError as error:  # refused, unreachable, DNS, timeouts (TimeoutError is an OSError)
            return Attempt(None, f"SMTP connection to {self.host}:{self.port}: {error!r}"[:MAX_ERROR_CHARS])
        if refused:  # accepted for some recipients: delivered, and a retry would duplicate it for them
            return Attempt(None, "some recipients refused: " + _describe(refused), verdict="delivered")
        return Attempt(None, None, verdict="delivered")


def email_message(notification: Notification, *, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = " ".join(
        render("notifications/email_subject.txt.j2", notification=notification).split()
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(notification.sent_at)
    # Stable ids: a retried attempt is the same message, and every message of one group threads together.
    message["Message-ID"] = _message_id(
        notification.group_key, notification.status, notification.sent_at.isoformat()
    )
    message["References"] = _message_id(notification.group_key)
    message["X-Feedbackloop-Group-Key"] = notification.group_key
    message.set_content(render("notifications/email.txt.j2", notification=notification))
    message.add_alternative(render("notifications/email.html.j2", notification=notification), subtype="html")
    return message


def _message_id(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def _smtp_reply(code: int, reply: bytes | str) -> Attempt:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    error = f"SMTP {code}: {' '.join(text.split())}"[:MAX_ERROR_CHARS]
    if 500 <= code < 600:
        return Attempt(None, error, verdict="final")  # permanent: the server will say the same again
    return Attempt(None, error)  # 4yz transient, or a malformed reply: try again later


def _recipients_refused(refused: dict[str, tuple[int, bytes]]) -> Attempt:
    """Every recipient refused: retry only if every refusal was transient."""
    error = "all recipients refused: " + _describe(refused)
    if all(400 <= code < 500 for code, _ in refused.values()):
        return Attempt(None, error[:MAX_ERROR_CHARS])
    return Attempt(None, error[:MAX_ERROR_CHARS], verdict="final")


def _describe(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} (SMTP {code}: {reply.decode('utf-8', 'replace').strip()})"
        for address, (code, reply) in sorted(refused.items())
    )[:MAX_ERROR_CHARS]

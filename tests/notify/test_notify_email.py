"""E-mail through a real local SMTP server (aiosmtpd): the message as received (subject, text and HTML parts,
evidence numbers), and SMTP replies mapped the SMTP way: 4yz retry, 5yz final, no server → retry."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from tests.notify.conftest import LocalSMTPServer
from tests.notify.support import firing, resolved
from tools.notify.channels.email import EmailNotifier, email_message

NOW = datetime(2026, 3, 2, 6, 0, 30, tzinfo=UTC)
TO = ("oncall@example.test", "product@example.test")


def _notifier(port: int, **options: object) -> EmailNotifier:
    values: dict[str, object] = {"starttls": False, "timeout_seconds": 5.0} | options
    return EmailNotifier("127.0.0.1", "feedbackloop@example.test", TO, port=port, **values)  # type: ignore[arg-type]


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, subtype
    return str(body.get_content())


def test_message_arrives_with_subject_text_and_html_parts_and_the_evidence(
    smtp_server: LocalSMTPServer,
) -> None:
    attempt = _notifier(smtp_server.port).send(firing(), now=NOW)

    assert attempt.delivered and attempt.error is None and attempt.status_code is None
    [(mail_from, rcpt_tos, raw)] = smtp_server.recorder.messages
    assert (mail_from, rcpt_tos) == ("feedbackloop@example.test", list(TO))
    message = _parse(raw)
    assert message["Subject"] == "[FIRING:2] Error rate spiked for podcast_network (+1 more)"
    assert message["To"] == "oncall@example.test, product@example.test"
    assert message["Date"] == "Mon, 02 Mar 2026 06:00:00 +0000"
    assert message.get_content_type() == "multipart/alternative"

    text = _part(message, "plain")
    assert "[CRITICAL] Error rate spiked for podcast_network (firing)" in text
    assert (
        "  - error_rate for podcast_network: 0.0521 vs 0.0098 baseline (+431.6%), p = 0.00012, n = 1,204"
        in text
    )
    assert (
        "sponsor_reports_per_user for podcast_network: 3.2 vs 4.8 baseline (-33.3%), p = 0.0031, n = 385"
        in text
    )
    assert "Group:    persona=podcast_network" in text
    assert "  labels: metric=error_rate, persona=podcast_network, rule=error_spike" in text
    assert "dashboard: http://127.0.0.1:8000/dashboard" in text

    html = _part(message, "html")
    assert "<td>error_rate</td><td>podcast_network</td><td>0.0521</td>" in html
    assert "<td>0.0098</td><td>+431.6%</td>" in html and "<td>0.00012</td><td>1,204</td>" in html
    assert "<td>-33.3%</td>" in html and "<td>0.0031</td><td>385</td>" in html
    assert '<a href="http://127.0.0.1:8000/dashboard">dashboard</a>' in html


def test_retries_are_the_same_message_and_a_group_threads_together() -> None:
    first = email_message(firing(), sender="a@example.test", recipients=TO)
    again = email_message(firing(), sender="a@example.test", recipients=TO)
    closing = email_message(resolved(), sender="a@example.test", recipients=TO)
    assert first["Message-ID"] == again["Message-ID"] != closing["Message-ID"]
    assert first["References"] == closing["References"]
    assert first["X-Feedbackloop-Group-Key"] == "persona=podcast_network"
    assert closing["Subject"] == "[RESOLVED] escalations for persona=podcast_network"
    assert "resolved: 2026-03-03 09:00 UTC" in _part(closing, "plain")


def test_html_escapes_text_that_came_from_elsewhere() -> None:
    hostile = firing(
        title="<script>alert(1)</script>",
        summary="a & b <img src=x>",
        group_labels={"persona": "<b>x</b>"},
        links={"runbook": "javascript:alert(1)"},
    )
    html = _part(email_message(hostile, sender="a@example.test", recipients=TO), "html")
    assert "<script>" not in html and "<b>" not in html and "<img" not in html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    assert "a &amp; b &lt;img src=x&gt;" in html
    assert "persona=&lt;b&gt;x&lt;/b&gt;" in html
    assert "runbook: javascript:alert(1)" in html and 'href="javascript' not in html


def test_login_when_configured(smtp_server: LocalSMTPServer) -> None:
    attempt = _notifier(smtp_server.port, username="alerts", password="s3cret").send(firing(), now=NOW)
    assert attempt.delivered
    assert smtp_server.recorder.logins == ["alerts"]
    assert len(smtp_server.recorder.messages) == 1


def test_wrong_password_is_final(smtp_server: LocalSMTPServer) -> None:
    attempt = _notifier(smtp_server.port, username="alerts", password="wrong").send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable) == (False, False)
    assert attempt.error is not None and attempt.error.startswith("SMTP 535")
    assert smtp_server.recorder.messages == []


def test_451_is_retryable(smtp_server: LocalSMTPServer) -> None:
    smtp_server.recorder.data_reply = "451 4.3.0 Mailbox busy, try again later"
    attempt = _notifier(smtp_server.port).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, True)
    assert attempt.error == "SMTP 451: 4.3.0 Mailbox busy, try again later"


def test_550_is_final(smtp_server: LocalSMTPServer) -> None:
    smtp_server.recorder.data_reply = "550 5.7.1 Message rejected as spam"
    attempt = _notifier(smtp_server.port).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, False)
    assert attempt.error == "SMTP 550: 5.7.1 Message rejected as spam"


def test_every_recipient_refused_is_final_for_5yz_and_retryable_for_4yz(smtp_server: LocalSMTPServer) -> None:
    recorder = smtp_server.recorder
    recorder.rcpt_replies = {address: "550 5.1.1 No such user" for address in TO}
    refused = _notifier(smtp_server.port).send(firing(), now=NOW)
    assert (refused.delivered, refused.retryable) == (False, False)
    assert refused.error is not None and "oncall@example.test (SMTP 550: 5.1.1 No such user)" in refused.error

    recorder.rcpt_replies = {address: "450 4.2.1 Mailbox temporarily unavailable" for address in TO}
    busy = _notifier(smtp_server.port).send(firing(), now=NOW)
    assert (busy.delivered, busy.retryable) == (False, True)
    assert recorder.messages == []


def test_one_recipient_refused_still_delivers_to_the_others(smtp_server: LocalSMTPServer) -> None:
    smtp_server.recorder.rcpt_replies = {"product@example.test": "550 5.1.1 No such user"}
    attempt = _notifier(smtp_server.port).send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable) == (True, False)  # a retry would send oncall a duplicate
    assert attempt.error == "some recipients refused: product@example.test (SMTP 550: 5.1.1 No such user)"
    assert [rcpt for _, rcpt, _ in smtp_server.recorder.messages] == [["oncall@example.test"]]


def test_starttls_required_but_not_offered_is_final(smtp_server: LocalSMTPServer) -> None:
    attempt = _notifier(smtp_server.port, starttls=True).send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable) == (False, False)
    assert attempt.error == "SMTP: STARTTLS extension not supported by server."
    assert smtp_server.recorder.messages == []


def test_nothing_listening_is_retryable(unused_port: int) -> None:
    attempt = _notifier(unused_port).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.delivered, attempt.retryable) == (None, False, True)
    assert attempt.error is not None
    assert attempt.error.startswith(f"SMTP connection to 127.0.0.1:{unused_port}: ConnectionRefusedError")


def test_a_server_that_never_greets_times_out_retryably() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever answers
        attempt = _notifier(silent.getsockname()[1], timeout_seconds=0.3).send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable) == (False, True)
    assert attempt.error == "SMTP server disconnected: Connection unexpectedly closed: timed out"


def test_at_least_one_recipient_is_required() -> None:
    with pytest.raises(ValueError, match="FEEDBACKLOOP_SMTP_TO"):
        EmailNotifier("127.0.0.1", "a@example.test", ())
    assert "s3cret" not in repr(EmailNotifier("h", "a@example.test", TO, password="s3cret"))

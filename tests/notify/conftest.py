"""Real local servers for the channel tests, on 127.0.0.1 only: an HTTP receiver with scripted answers, an
SMTP server (aiosmtpd) with scripted replies, and a port where nothing listens."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.loopback import LoopbackServer, read_body, write_answer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalHTTPServer:
    """http.server in a thread on 127.0.0.1:0: records every request, answers from a script (then `default`)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.default = Reply()
        self.received: list[Received] = []
        self.loopback = LoopbackServer(self._serve)
        self.base_url = self.loopback.base_url

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body, headers = read_body(handler)
        self.received.append(Received(handler.command, handler.path, headers, body))
        reply = self.replies.pop(0) if self.replies else self.default
        if reply.delay_seconds:
            time.sleep(reply.delay_seconds)
        write_answer(handler, reply.status, reply.body.encode("utf-8"), reply.headers)

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.loopback.close()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer()
    yield server
    server.close()


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SMTPRecorder:
    """aiosmtpd handler: keeps every accepted message; replies can be scripted per recipient or for DATA."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret":
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    """aiosmtpd's Controller insists on a known port before it checks the server; ask the socket for it."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class LocalSMTPServer:
    recorder: SMTPRecorder
    controller: Controller

    @property
    def port(self) -> int:
        return int(self.controller.port)


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    recorder = SMTPRecorder()
    controller = _Controller(
        recorder,
        hostname="127.0.0.1",
        port=0,
        authenticator=recorder.authenticate,
        auth_require_tls=False,  # plain-text AUTH only because this server never leaves 127.0.0.1
    )
    controller.start()
    yield LocalSMTPServer(recorder, controller)
    controller.stop()

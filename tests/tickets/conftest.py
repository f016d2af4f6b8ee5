"""Fixtures for the ticket sink tests: fake GitHub, Jira and webhook receiver on 127.0.0.1, a dead port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.tickets.fakes import FakeGitHub, FakeJira, FakeReceiver
from tests.tickets.support import GITHUB_TOKEN, JIRA_API_TOKEN, JIRA_EMAIL, SECRET


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub(GITHUB_TOKEN)
    yield server
    server.close()


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    server = FakeJira(JIRA_EMAIL, JIRA_API_TOKEN)
    yield server
    server.close()


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    server = FakeReceiver(SECRET)
    yield server
    server.close()


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

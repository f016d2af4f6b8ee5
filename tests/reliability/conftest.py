"""Fixtures the reliability tests share: the app's settings as in production (API keys on, every signed door's
secret set, ticket files in the test's directory) and an admin key in the test's database."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from feedbackloop.settings import Settings
from store.database import Database
from store.repositories import api_keys

SLACK_SIGNING_SECRET = "reliability-slack-signing-secret"
GITHUB_WEBHOOK_SECRET = "reliability-github-webhook-secret"
DEPLOY_HOOK_SECRET = "whsec_" + base64.b64encode(b"reliability-deploy-hook-secret").decode()


@pytest.fixture
def production_settings(database: Database, tmp_path: Path) -> Settings:
    """Auth on and the Slack, GitHub and deploy-hook secrets set (so an unsigned request is a 401, not a 503),
    on the test's database; backlog tickets go to files under tmp_path, never beside the working directory."""
    return Settings(
        database_url=database.url,
        auth="on",
        slack_signing_secret=SecretStr(SLACK_SIGNING_SECRET),
        github_webhook_secret=SecretStr(GITHUB_WEBHOOK_SECRET),
        deploy_hook_secret=SecretStr(DEPLOY_HOOK_SECRET),
        tickets_jsonl_path=tmp_path / "backlog.jsonl",
        tickets_markdown_dir=tmp_path / "backlog",
    )


@pytest.fixture
def admin_key(database: Database) -> str:
    """A fresh admin API key (the secret itself) in the test's database."""
    with database.write() as connection:
        return api_keys.create(connection, scope="admin", name="reliability", now=datetime.now(UTC)).key

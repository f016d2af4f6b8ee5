"""What the post-deploy hook tests share: an app with keys on and both hook secrets set, signing helpers for
Standard Webhooks and GitHub, a GitHub deployment_status payload, and counts of what the hooks wrote."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from store.database import Database
from store.models import EventRow, RetroRow
from store.repositories import api_keys
from tools.notify.signing import headers as standard_webhook_headers

DEPLOY_SECRET = "whsec_" + base64.b64encode(b"deploy-hook-secret-for-tests-32b").decode()
GITHUB_SECRET = "It's a Secret to Everybody"  # GitHub's own documentation example


def hook_settings(database: Database, tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url, "auth": "on", "deploy_hook_secret": DEPLOY_SECRET,
        "github_webhook_secret": GITHUB_SECRET, "tickets_jsonl_path": tmp_path / "backlog.jsonl", **changes,
    }  # fmt: skip
    return Settings(**values)


@contextmanager
def hook_client(database: Database, tmp_path: Path, **changes: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings(database, tmp_path, **changes), database)) as client:
        yield client


def create_key(database: Database, scope: str) -> str:
    with database.write() as connection:
        return api_keys.create(connection, scope=scope, name=f"hooks-{scope}", now=datetime.now(UTC)).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed(body: dict[str, Any], *, message_id: str | None = None, at: datetime | None = None,
           secret: str = DEPLOY_SECRET) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """The body as bytes and its Standard Webhooks headers (as the notify channels sign outbound webhooks)."""
    raw = json.dumps(body).encode()
    moment = at or datetime.now(UTC)
    return raw, standard_webhook_headers(
        secret, message_id or f"msg_{secrets.token_hex(8)}", int(moment.timestamp()), raw
    )


def github_headers(raw: bytes, *, event: str = "deployment_status", delivery: str | None = None,
                   secret: str = GITHUB_SECRET) -> dict[str, str]:  # fmt: skip
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery or f"72d3162e-cc78-11e3-81ab-{secrets.token_hex(6)}",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }  # fmt: skip


def deployment_status_payload(
    *, state: str = "success", ref: str = "v2.3.0", created_at: str = "2026-05-30T12:00:00Z",
    deployment_payload: Any = None, environment: str = "production",
) -> dict[str, Any]:  # fmt: skip
    """A deployment_status webhook payload in GitHub's documented shape (trimmed to what matters here)."""
    sha = "a10867b14bb761a232cd80139fbd4c0d33264240"
    return {
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/octo-org/sponsor-api/deployments/42/statuses/7",
            "id": int(
                hashlib.sha256(f"{ref}|{created_at}|{state}|{environment}".encode()).hexdigest()[:8], 16
            )
            + 1,
            "node_id": "DES_kwDOA",
            "state": state,
            "description": "Deployment finished successfully.",
            "environment": environment,
            "target_url": "https://ci.example.com/runs/99",
            "log_url": "https://ci.example.com/runs/99",
            "environment_url": "https://sponsor-api.example.com",
            "created_at": created_at,
            "updated_at": created_at,
            "deployment_url": "https://api.github.com/repos/octo-org/sponsor-api/deployments/42",
            "repository_url": "https://api.github.com/repos/octo-org/sponsor-api",
        },
        "deployment": {
            "url": "https://api.github.com/repos/octo-org/sponsor-api/deployments/42",
            "id": 42,
            "node_id": "DE_kwDOA",
            "sha": sha,
            "ref": ref,
            "task": "deploy",
            "payload": {} if deployment_payload is None else deployment_payload,
            "original_environment": environment,
            "environment": environment,
            "description": None,
            "created_at": created_at,
            "updated_at": created_at,
            "statuses_url": "https://api.github.com/repos/octo-org/sponsor-api/deployments/42/statuses",
            "repository_url": "https://api.github.com/repos/octo-org/sponsor-api",
        },
        "repository": {
            "id": 1296269,
            "name": "sponsor-api",
            "full_name": "octo-org/sponsor-api",
            "private": True,
            "default_branch": "main",
        },
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }


def count(database: Database, table: str, where: str = "") -> int:
    with database.read() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table} {where}")).scalar_one())


def deployment_events(database: Database) -> list[dict[str, Any]]:
    e = EventRow
    statement = select(e.message_id, e.anonymous_id, e.user_id, e.timestamp, e.properties).where(
        e.name == "deployment"
    )
    with database.read() as connection:
        return [dict(row) for row in connection.execute(statement.order_by(e.timestamp, e.id)).mappings()]


def retro_rows(database: Database) -> list[dict[str, Any]]:
    with database.read() as connection:
        return [
            dict(row)
            for row in connection.execute(select(RetroRow.__table__).order_by(RetroRow.id)).mappings()
        ]

"""Wiring of the ticket sinks: the settings become a `TicketSinkConfig`, and that the sinks.

Default file locations follow the database: the JSON-lines backlog and the markdown directory sit beside the
SQLite file (`.feedbackloop/` by default), or in `.feedbackloop/` of the working directory with PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from feedbackloop.settings import Settings
from store.engine import normalise_url
from tools.tickets.base import TicketSink
from tools.tickets.registry import TicketSinkConfig, build_sinks

DEFAULT_DATA_DIRECTORY = Path(".feedbackloop")
JSONL_FILE_NAME = "backlog.jsonl"
MARKDOWN_DIRECTORY_NAME = "backlog"


def ticket_sink_config(settings: Settings) -> TicketSinkConfig:
    data_directory = data_directory_of(settings.database_url)
    return TicketSinkConfig(
        sinks=tuple(name.strip().lower() for name in settings.ticket_sinks if name.strip()),
        jsonl_path=settings.tickets_jsonl_path or data_directory / JSONL_FILE_NAME,
        markdown_dir=settings.tickets_markdown_dir or data_directory / MARKDOWN_DIRECTORY_NAME,
        github_repo=settings.tickets_github_repo or None,
        github_token=_secret(settings.tickets_github_token),
        github_api_url=settings.tickets_github_api_url,
        github_labels=tuple(settings.tickets_github_labels),
        jira_base_url=settings.tickets_jira_base_url or None,
        jira_email=settings.tickets_jira_email or None,
        jira_api_token=_secret(settings.tickets_jira_api_token),
        jira_project_key=settings.tickets_jira_project_key or None,
        jira_issue_type=settings.tickets_jira_issue_type,
        webhook_url=settings.tickets_webhook_url or None,
        # One signing secret usually serves every outbound webhook; a ticket-specific one overrides it.
        webhook_secret=_secret(settings.tickets_webhook_secret) or _secret(settings.webhook_secret),
    )


def sinks_from_settings(settings: Settings, *, client: httpx.Client | None = None) -> list[TicketSink]:
    """The configured sinks, in the order named. Raises TicketSinkConfigError naming the setting to fix."""
    return build_sinks(ticket_sink_config(settings), client=client)


def data_directory_of(database_url: str) -> Path:
    """The directory of a SQLite database file; `.feedbackloop/` for PostgreSQL or an in-memory SQLite."""
    parsed = normalise_url(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).parent
    return DEFAULT_DATA_DIRECTORY


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() or None if value is not None else None

"""Build the configured ticket sinks from a plain configuration (feedbackloop.tickets fills it from the settings;
tools/ never reads the settings itself).

Unlike notification channels, a ticket sink is named explicitly (`sinks`), so a named sink with a missing or
unusable setting is an error at start-up, naming the setting to fix, rather than tickets silently going nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tools.tickets.base import TicketSink
from tools.tickets.github import DEFAULT_API_URL, GitHubIssueSink
from tools.tickets.jira import JiraIssueSink
from tools.tickets.jsonl import DEFAULT_JSONL_PATH, JsonlTicketSink
from tools.tickets.markdown import DEFAULT_MARKDOWN_DIR, MarkdownTicketSink
from tools.tickets.webhook import WebhookTicketSink

SINK_NAMES: tuple[str, ...] = ("jsonl", "markdown", "github", "jira", "webhook")
SINKS_SETTING = "FEEDBACKLOOP_TICKET_SINKS"
SETTING_PREFIX = "FEEDBACKLOOP_TICKETS_"


@dataclass(frozen=True, slots=True)
class TicketSinkConfig:
    sinks: tuple[str, ...] = ("jsonl",)
    jsonl_path: Path = DEFAULT_JSONL_PATH
    markdown_dir: Path = DEFAULT_MARKDOWN_DIR
    github_repo: str | None = None  # "owner/name"
    github_token: str | None = field(default=None, repr=False)
    github_api_url: str = DEFAULT_API_URL
    github_labels: tuple[str, ...] = ()
    jira_base_url: str | None = None
    jira_email: str | None = None
    jira_api_token: str | None = field(default=None, repr=False)
    jira_project_key: str | None = None
    jira_issue_type: str = "Task"
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0


class TicketSinkConfigError(ValueError):
    """A named sink cannot be built. `field` is the TicketSinkConfig field; `setting` the environment variable."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.setting = setting_name(field)


def setting_name(config_field: str) -> str:
    """The environment variable behind a config field: github_token → FEEDBACKLOOP_TICKETS_GITHUB_TOKEN."""
    return SINKS_SETTING if config_field == "sinks" else SETTING_PREFIX + config_field.upper()


def build_sinks(config: TicketSinkConfig, *, client: httpx.Client | None = None) -> list[TicketSink]:
    """The named sinks, in the order named (each once). `client` is shared by the HTTP sinks."""
    unknown = [name for name in config.sinks if name not in SINK_NAMES]
    if unknown:
        raise TicketSinkConfigError(
            "sinks",
            f"{SINKS_SETTING} names unknown ticket sink(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(SINK_NAMES)}",
        )
    builders: dict[str, Callable[[], TicketSink]] = {
        "jsonl": lambda: JsonlTicketSink(config.jsonl_path),
        "markdown": lambda: MarkdownTicketSink(config.markdown_dir),
        "github": lambda: _github(config, client),
        "jira": lambda: _jira(config, client),
        "webhook": lambda: _webhook(config, client),
    }
    return [builders[name]() for name in dict.fromkeys(config.sinks)]


def _github(config: TicketSinkConfig, client: httpx.Client | None) -> TicketSink:
    repo = _required(config, "github_repo", "github")
    token = _required(config, "github_token", "github")
    _require_http_url(config.github_api_url, "github_api_url")
    try:
        return GitHubIssueSink(
            repo,
            token,
            api_url=config.github_api_url,
            labels=config.github_labels,
            client=client,
            timeout_seconds=config.timeout_seconds,
        )
    except ValueError as error:
        raise TicketSinkConfigError("github_repo", f"{setting_name('github_repo')}: {error}") from None


def _jira(config: TicketSinkConfig, client: httpx.Client | None) -> TicketSink:
    base_url = _required(config, "jira_base_url", "jira")
    _require_http_url(base_url, "jira_base_url")
    return JiraIssueSink(
        base_url,
        _required(config, "jira_email", "jira"),
        _required(config, "jira_api_token", "jira"),
        project_key=_required(config, "jira_project_key", "jira"),
        issue_type=_required(config, "jira_issue_type", "jira"),
        client=client,
        timeout_seconds=config.timeout_seconds,
    )


def _webhook(config: TicketSinkConfig, client: httpx.Client | None) -> TicketSink:
    url = _required(config, "webhook_url", "webhook")
    secret = _required(config, "webhook_secret", "webhook")
    _require_http_url(url, "webhook_url")
    try:
        return WebhookTicketSink(url, secret, client=client, timeout_seconds=config.timeout_seconds)
    except ValueError as error:
        raise TicketSinkConfigError("webhook_secret", f"{setting_name('webhook_secret')}: {error}") from None


def _required(config: TicketSinkConfig, config_field: str, sink: str) -> str:
    value = getattr(config, config_field)
    if not value or not str(value).strip():
        raise TicketSinkConfigError(
            config_field, f"{setting_name(config_field)} is required when {sink} is a ticket sink"
        )
    return str(value).strip()


def _require_http_url(url: str, config_field: str) -> None:
    # The message never repeats the URL: a webhook URL can be a credential.
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        raise TicketSinkConfigError(
            config_field, f"{setting_name(config_field)} must be an http:// or https:// URL"
        )

"""The one settings object: environment variables with the prefix FEEDBACKLOOP_ (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.feedbackloop/feedbackloop.db"
StructuredOutputMethod = Literal["json_schema", "json_object_schema", "function_calling"]
NotificationChannel = Literal["slack", "email", "pagerduty", "webhook", "file"]
DEFAULT_SEND_RESOLVED_CHANNELS: tuple[NotificationChannel, ...] = ("slack", "pagerduty", "webhook", "file")


class Settings(BaseSettings):
    """Effective configuration. `feedbackloop config show` prints it with secrets masked."""

    model_config = SettingsConfigDict(env_prefix="FEEDBACKLOOP_", env_file=".env", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the store")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL; unset = rules only")
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FEEDBACKLOOP_LLM_API_KEY", "OPENAI_API_KEY"),
        description="API key for the LLM server (falls back to OPENAI_API_KEY)",
    )
    llm_model: str = Field("gpt-4o-mini", description="model name sent to the LLM server")
    llm_structured_output: StructuredOutputMethod = Field(
        "json_schema", description="how structured output is requested from the LLM server"
    )
    llm_timeout_seconds: float = Field(
        120,
        gt=0,
        le=3600,
        description="seconds one LLM call may take before it is retried (then the rules take over)",
    )
    retro_bake_hours: int = Field(
        24, ge=1, le=24 * 14, description="hours after a deployment its retro waits for and compares"
    )
    retro_effort_weeks: float = Field(
        2.0, gt=0, le=52, description="effort (person-weeks) RICE assumes for a backlog item"
    )
    write_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated write keys from configuration, each accepted as an ingest-scope API key",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="signing secret of outbound webhooks (Standard Webhooks, whsec_<base64>)"
    )
    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming webhook URL for escalations; unset = no Slack channel"
    )
    smtp_host: str | None = Field(
        None, description="SMTP server for escalation e-mail; unset = no e-mail channel"
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(True, description="upgrade the SMTP connection with STARTTLS")
    smtp_username: str | None = Field(None, description="SMTP login; unset = no login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_from: str | None = Field(None, description="sender address of escalation e-mail")
    smtp_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated recipients of escalation e-mail"
    )
    pagerduty_routing_key: SecretStr | None = Field(
        None, description="PagerDuty Events API v2 routing key; unset = no PagerDuty channel"
    )
    pagerduty_events_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events API v2 endpoint"
    )
    alert_webhook_url: str | None = Field(
        None, description="generic escalation webhook (signed with the webhook secret; without it, absent)"
    )
    notification_file: Path | None = Field(
        None, description="JSON-lines file that records every notification (demo mode); unset = none"
    )
    send_resolved_channels: Annotated[list[NotificationChannel], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SEND_RESOLVED_CHANNELS),
        description="comma-separated channels that are also told when an escalation group resolves",
    )
    personas_file: Path | None = Field(None, description="TOML or YAML persona registry; unset = defaults")
    gross_margin: float = Field(0.8, gt=0, le=1, description="gross margin used by the LTV KPI")
    renewal_window_days: int = Field(14, ge=1, description="days after campaign_ended before a renewal fails")
    survey_recontact_days: int = Field(
        7, ge=0, le=3650, description="global survey wait: days after any survey before a user sees another"
    )
    max_batch_bytes: int = Field(500 * 1024, ge=1024, description="largest accepted request body")
    max_item_bytes: int = Field(32 * 1024, ge=256, description="largest accepted single event")
    max_batch_items: int = Field(2500, ge=1, description="most events in one batch")
    alert_group_by: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["persona"], description="labels that group escalations into one notification"
    )
    alert_group_wait_seconds: int = Field(
        30, ge=0, description="wait before a new group's first notification"
    )
    alert_group_interval_seconds: int = Field(300, ge=0, description="wait before re-sending a changed group")
    alert_repeat_interval_seconds: int = Field(
        4 * 3600, ge=60, description="re-send an unchanged firing group after this long (unless acknowledged)"
    )
    escalation_check_minutes: int = Field(
        15, ge=1, le=1440, description="how often the worker runs the checks"
    )
    escalation_routes: list[dict[str, str]] = Field(
        default_factory=list,
        description='owner routing table of the escalation agent, JSON: [{"team", "channel", "metric"?, "persona"?, '
        '"type"?}, …]; the first route whose set fields match an escalation of the incident wins',
    )
    escalation_owner_team: str = Field("on-call", description="owner of incidents no route matches")
    escalation_owner_channel: str = Field("#incidents", description="channel of incidents no route matches")
    escalation_triage_lookback_hours: float = Field(
        48,
        gt=0,
        le=24 * 14,
        description="how long before a change point a deployment can be its probable cause",
    )
    escalation_ticket_after_minutes: int = Field(
        60, ge=0, le=60 * 24 * 30,
        description="a HIGH/CRITICAL escalation firing this long gets a backlog ticket from the escalation agent",
    )  # fmt: skip
    experiment_refresh_minutes: int = Field(
        5, ge=1, le=1440, description="how often the worker brings running experiments' values up to date"
    )
    public_url: str | None = Field(None, description="base URL of this service, for links in notifications")

    # ---- access: API keys (feedbackloop keys create), CORS, and the secrets of the signed doors ----
    auth: Literal["on", "off"] = Field(
        "on",
        description="off = every route open without a key (local demo use only; logged loudly at startup)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated origins allowed to call the API from a browser (e.g. a browser SDK)",
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Slack app signing secret; unset = the Slack routes answer 503"
    )
    slack_bot_token: SecretStr | None = Field(
        None,
        description="Slack bot token (xoxb-…, scope chat:write), optional: a retro report that outlives the "
        "command's response_url (30 minutes, 5 posts) is posted to the channel with chat.postMessage instead",
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", description="Slack Web API base URL the bot token is used against"
    )
    github_webhook_secret: SecretStr | None = Field(
        None, description="secret of the GitHub webhook (deployment_status); unset = that route answers 503"
    )
    deploy_hook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks secret (whsec_<base64>) of POST /v1/hooks/deploy; unset = Bearer key only",
    )
    log_level: str = Field("INFO", description="logging level of the service")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="log lines as text, or as JSON objects (ts, level, logger, message, request_id, …)",
    )

    # ---- ticket sinks: where the retro agent files backlog items (tools.tickets; wired in feedbackloop.tickets) ----
    ticket_sinks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["jsonl"],
        description="comma-separated ticket sinks: jsonl, markdown, github, jira, webhook (empty = file nothing)",
    )
    tickets_jsonl_path: Path | None = Field(
        None, description="backlog JSON-lines file; unset = backlog.jsonl beside the SQLite database"
    )
    tickets_markdown_dir: Path | None = Field(
        None,
        description="directory of one markdown file per ticket; unset = backlog/ beside the SQLite database",
    )
    tickets_github_repo: str | None = Field(None, description="GitHub repository for issues, as owner/name")
    tickets_github_token: SecretStr | None = Field(
        None, description="GitHub token allowed to read and create issues in that repository"
    )
    tickets_github_api_url: str = Field(
        "https://api.github.com",
        description="GitHub REST API base URL (GitHub Enterprise: https://host/api/v3)",
    )
    tickets_github_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated labels added to every GitHub issue besides feedbackloop",
    )
    tickets_jira_base_url: str | None = Field(
        None, description="Jira Cloud site, e.g. https://team.atlassian.net"
    )
    tickets_jira_email: str | None = Field(None, description="e-mail of the Jira account that files issues")
    tickets_jira_api_token: SecretStr | None = Field(None, description="API token of that Jira account")
    tickets_jira_project_key: str | None = Field(None, description="key of the Jira project issues go to")
    tickets_jira_issue_type: str = Field("Task", description="Jira issue type of filed backlog items")
    tickets_webhook_url: str | None = Field(
        None, description="URL that receives backlog items as signed JSON (Standard Webhooks)"
    )
    tickets_webhook_secret: SecretStr | None = Field(
        None, description="signing secret of the ticket webhook (whsec_<base64>); unset = the webhook secret"
    )

    @field_validator("ticket_sinks", "tickets_github_labels", mode="before")
    @classmethod
    def _split_ticket_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "write_keys", "smtp_to", "send_resolved_channels", "alert_group_by", "cors_origins", mode="before"
    )
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets replaced by a mask that shows only whether they are set."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "****" if value.get_secret_value() else "(empty)"
            elif isinstance(value, list) and value and isinstance(value[0], SecretStr):
                shown[name] = f"{len(value)} key(s), ****"
            elif name == "database_url":
                shown[name] = mask_url_password(str(value))
            else:
                shown[name] = "(unset)" if value is None or value == [] else str(value)
        return shown


def mask_url_password(url: str) -> str:
    """postgresql://user:secret@host/db → postgresql://user:****@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    if ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:****@{location}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build `Settings(...)` directly instead."""
    return Settings()

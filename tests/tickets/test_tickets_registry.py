"""The registry builds exactly the named sinks and names the setting to fix; the settings fill its config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from feedbackloop.settings import Settings
from feedbackloop.tickets import data_directory_of, sinks_from_settings, ticket_sink_config
from tests.tickets.fakes import FakeGitHub
from tests.tickets.support import GITHUB_TOKEN, JIRA_API_TOKEN, SECRET, backlog_item
from tools.tickets import (
    GitHubIssueSink,
    JiraIssueSink,
    JsonlTicketSink,
    MarkdownTicketSink,
    TicketSinkConfig,
    TicketSinkConfigError,
    WebhookTicketSink,
    build_sinks,
)

COMPLETE = TicketSinkConfig(
    sinks=("jsonl", "markdown", "github", "jira", "webhook"),
    jsonl_path=Path("/tmp/unused/backlog.jsonl"),
    markdown_dir=Path("/tmp/unused/backlog"),
    github_repo="acme/podcast-app",
    github_token=GITHUB_TOKEN,
    github_labels=("retro",),
    jira_base_url="https://acme.atlassian.net",
    jira_email="bot@acme.test",
    jira_api_token=JIRA_API_TOKEN,
    jira_project_key="FL",
    webhook_url="https://hooks.acme.test/backlog",
    webhook_secret=SECRET,
    timeout_seconds=3.0,
)


def test_default_is_the_jsonl_backlog() -> None:
    [sink] = build_sinks(TicketSinkConfig())
    assert sink == JsonlTicketSink(Path(".feedbackloop/backlog.jsonl"))


def test_builds_every_named_sink_in_order_once() -> None:
    sinks = build_sinks(COMPLETE)
    assert [sink.name for sink in sinks] == ["jsonl", "markdown", "github", "jira", "webhook"]
    jsonl, markdown, github, jira, webhook = sinks
    assert isinstance(jsonl, JsonlTicketSink) and jsonl.path == COMPLETE.jsonl_path
    assert isinstance(markdown, MarkdownTicketSink) and markdown.directory == COMPLETE.markdown_dir
    assert (
        isinstance(github, GitHubIssueSink) and github.labels == ("retro",) and github.timeout_seconds == 3.0
    )
    assert isinstance(jira, JiraIssueSink) and jira.issue_type == "Task" and jira.project_key == "FL"
    assert isinstance(webhook, WebhookTicketSink)
    assert [s.name for s in build_sinks(TicketSinkConfig(sinks=("markdown", "jsonl", "markdown")))] == [
        "markdown",
        "jsonl",
    ]
    assert build_sinks(TicketSinkConfig(sinks=())) == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"sinks": ("jsonl", "trello")},
            "sinks",
            "FEEDBACKLOOP_TICKET_SINKS names unknown ticket sink(s) 'trello'",
        ),
        (
            {"github_token": None},
            "github_token",
            "FEEDBACKLOOP_TICKETS_GITHUB_TOKEN is required when github is",
        ),
        ({"github_repo": ""}, "github_repo", "FEEDBACKLOOP_TICKETS_GITHUB_REPO is required when github is"),
        (
            {"github_repo": "acme"},
            "github_repo",
            "FEEDBACKLOOP_TICKETS_GITHUB_REPO: the GitHub repository must be",
        ),
        (
            {"github_api_url": "api.github.com"},
            "github_api_url",
            "FEEDBACKLOOP_TICKETS_GITHUB_API_URL must be an",
        ),
        (
            {"jira_base_url": None},
            "jira_base_url",
            "FEEDBACKLOOP_TICKETS_JIRA_BASE_URL is required when jira is",
        ),
        ({"jira_email": None}, "jira_email", "FEEDBACKLOOP_TICKETS_JIRA_EMAIL is required"),
        ({"jira_api_token": None}, "jira_api_token", "FEEDBACKLOOP_TICKETS_JIRA_API_TOKEN is required"),
        ({"jira_project_key": None}, "jira_project_key", "FEEDBACKLOOP_TICKETS_JIRA_PROJECT_KEY is required"),
        (
            {"webhook_url": None},
            "webhook_url",
            "FEEDBACKLOOP_TICKETS_WEBHOOK_URL is required when webhook is",
        ),
        ({"webhook_secret": None}, "webhook_secret", "FEEDBACKLOOP_TICKETS_WEBHOOK_SECRET is required"),
        (
            {"webhook_secret": "whsec_not*base64!"},
            "webhook_secret",
            "FEEDBACKLOOP_TICKETS_WEBHOOK_SECRET: the",
        ),
    ],
)
def test_config_errors_name_the_setting(changes: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(TicketSinkConfigError) as caught:
        build_sinks(replace(COMPLETE, **changes))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(message)
    assert caught.value.setting in str(caught.value)


def test_an_unused_sink_needs_none_of_its_settings() -> None:
    assert [s.name for s in build_sinks(TicketSinkConfig(sinks=("markdown",)))] == ["markdown"]


def test_config_repr_hides_credentials() -> None:
    shown = repr(COMPLETE)
    assert GITHUB_TOKEN not in shown and JIRA_API_TOKEN not in shown and SECRET not in shown


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", f"sqlite:///{tmp_path}/data/feedbackloop.db")
    monkeypatch.setenv("FEEDBACKLOOP_TICKET_SINKS", " JSONL, github ,markdown")
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_GITHUB_REPO", "acme/podcast-app")
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_GITHUB_LABELS", "retro, product")
    monkeypatch.setenv("FEEDBACKLOOP_WEBHOOK_SECRET", SECRET)
    settings = Settings()
    config = ticket_sink_config(settings)

    assert config.sinks == ("jsonl", "github", "markdown")
    assert config.jsonl_path == tmp_path / "data" / "backlog.jsonl"
    assert config.markdown_dir == tmp_path / "data" / "backlog"
    assert (config.github_repo, config.github_token) == ("acme/podcast-app", GITHUB_TOKEN)
    assert config.github_labels == ("retro", "product")
    assert config.webhook_secret == SECRET  # falls back to the outbound webhook secret
    assert GITHUB_TOKEN not in str(settings.masked())
    assert settings.masked()["tickets_github_token"] == "****"


def test_settings_defaults_and_explicit_paths(tmp_path: Path) -> None:
    config = ticket_sink_config(Settings(database_url="sqlite:///./.feedbackloop/feedbackloop.db"))
    assert config.sinks == ("jsonl",)
    assert config.jsonl_path == Path(".feedbackloop/backlog.jsonl")
    assert config.github_api_url == "https://api.github.com" and config.jira_issue_type == "Task"
    explicit = ticket_sink_config(
        Settings(
            tickets_jsonl_path=tmp_path / "b.jsonl", tickets_markdown_dir=tmp_path / "md", ticket_sinks=""
        )
    )
    assert (explicit.jsonl_path, explicit.markdown_dir, explicit.sinks) == (
        tmp_path / "b.jsonl",
        tmp_path / "md",
        (),
    )
    assert data_directory_of("postgresql://postgres@127.0.0.1:5432/test") == Path(".feedbackloop")
    assert data_directory_of("sqlite:///:memory:") == Path(".feedbackloop")


def test_settings_name_a_missing_setting(tmp_path: Path) -> None:
    with pytest.raises(TicketSinkConfigError, match="FEEDBACKLOOP_TICKETS_JIRA_BASE_URL is required"):
        sinks_from_settings(Settings(ticket_sinks=["jira"]))


def test_sinks_from_settings_file_through_a_fake_github(github: FakeGitHub, tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/feedbackloop.db",
        ticket_sinks=["jsonl", "github"],
        tickets_github_repo=github.repository,
        tickets_github_token=GITHUB_TOKEN,
        tickets_github_api_url=github.base_url,
    )
    refs = [sink.file(backlog_item()) for sink in sinks_from_settings(settings)]
    assert [(ref.sink, ref.key, ref.created) for ref in refs] == [("jsonl", "1", True), ("github", "1", True)]
    assert (tmp_path / "backlog.jsonl").exists()

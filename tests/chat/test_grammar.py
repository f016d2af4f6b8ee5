"""The chat grammar: commands, odd spacing and case, and help (with the reason) for everything else."""

from __future__ import annotations

import pytest

from feedbackloop.chat.grammar import (
    MAX_TEXT_CHARS,
    Command,
    Escalations,
    ExperimentResults,
    Help,
    Kpis,
    RetroDeploy,
    RetroLastDays,
    RetroSprint,
    parse,
)
from feedbackloop.chat.replies import MARKDOWN, SLACK

VALID: list[tuple[str, Command]] = [
    ("retro sprint 2026-22", RetroSprint("2026-22")),
    ("  RETRO   Sprint   s-22 ", RetroSprint("s-22")),
    ("retro last 14 days", RetroLastDays(14)),
    ("Retro LAST 1 day", RetroLastDays(1)),
    ("retro last 366 days", RetroLastDays(366)),
    ("retro last 30", RetroLastDays(30)),
    ("retro deploy v1.4.0", RetroDeploy("v1.4.0")),
    ("retro deployment V2.0.0-RC1", RetroDeploy("V2.0.0-RC1")),
    ("escalations", Escalations()),
    ("\tEscalations\n", Escalations()),
    ("experiment onboarding-flow", ExperimentResults("onboarding-flow")),
    ("Experiment Onboarding-Flow", ExperimentResults("Onboarding-Flow")),
    ("kpis", Kpis()),
    ("KPIs Podcast_Network", Kpis("podcast_network")),
    ("kpi agency", Kpis("agency")),
    ("help", Help()),
    ("HELP", Help()),
    ("", Help()),
    ("   ", Help()),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_commands_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


HELP: list[tuple[str, str]] = [
    ("retro last 0 days", "1 to 366 days, not 0"),
    ("retro last 9999 days", "1 to 366 days, not 9999"),
    ("retro last -3 days", "`-3` is not a number of days"),
    ("retro last ten days", "`ten` is not a number of days"),
    ("retro last ١٤ days", "is not a number of days"),
    ("retro last 14 weeks", "retro last <N> days"),
    ("retro last", "retro last <N> days"),
    ("retro", "needs `sprint <id>`"),
    ("retro sprint", "one sprint id"),
    ("retro sprint a b", "one sprint id"),
    ("retro sprint <!channel>", "is not a sprint id"),
    ("retro deploy", "one version"),
    ("retro weekly", "`retro weekly` is not a retro"),
    ("escalations now", "takes no arguments"),
    ("experiment", "one experiment key"),
    ("experiment a b", "one experiment key"),
    ("experiment -x", "is not an experiment key"),
    ("kpis a b", "at most one persona"),
    ("kpis no-such!", "at most one persona"),
    ("why did NPS drop for networks?", "`why` is not a command"),
    ("x" * (MAX_TEXT_CHARS + 1), f"longer than {MAX_TEXT_CHARS} characters"),
]


@pytest.mark.parametrize(("text", "reason"), HELP)
def test_anything_else_is_help_naming_the_problem(text: str, reason: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Help), parsed
    assert parsed.reason is not None and reason in parsed.reason, parsed.reason


def test_a_user_word_quoted_back_cannot_break_out_of_its_code_span() -> None:
    parsed = parse("`**hi**`<@U1>&x")
    assert isinstance(parsed, Help) and parsed.reason is not None
    assert parsed.reason.count("`") == 2  # the user's backticks became quotes
    assert "&lt;@U1&gt;&amp;x" in SLACK.formatted(parsed.reason)  # Slack sees no mention
    assert MARKDOWN.code("a`b") == "`a'b`"

"""The chat grammar every chat door shares (Slack's slash command, POST /v1/chat): text → one typed command.

    retro sprint <id>          a sprint retro (no dates in chat: the last 14 days, which the reply says)
    retro last <N> days        a retro over the last N days (1 to 366)
    retro deploy <version>     a deployment retro (bake period from FEEDBACKLOOP_RETRO_BAKE_HOURS)
    escalations                the escalations that are open now
    experiment <key>           an experiment's results
    kpis [persona]             the KPIs of the last 30 days, overall or for one persona
    help                       this list

Keywords ignore case and extra spaces; arguments keep their case (versions and keys are case-sensitive). Text
that is not a command parses to `Help` with the reason, never to an error: a chat user gets the list of commands
and what was wrong, whatever they typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.experiments.model import KEY_PATTERN
from tools.retro.window import MAX_LABEL_CHARS, MAX_WINDOW_DAYS

MAX_TEXT_CHARS = 1000
SPRINT_DEFAULT_DAYS = 14
PERSONA_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
LABEL_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.:+/-]{{0,{MAX_LABEL_CHARS - 1}}}$")
COMMAND_WORDS = ("retro", "escalations", "experiment", "kpis", "help")


@dataclass(frozen=True, slots=True)
class RetroSprint:
    sprint_id: str
    days: int = SPRINT_DEFAULT_DAYS
    name: str = "retro"


@dataclass(frozen=True, slots=True)
class RetroLastDays:
    days: int
    name: str = "retro"


@dataclass(frozen=True, slots=True)
class RetroDeploy:
    version: str
    name: str = "retro"


@dataclass(frozen=True, slots=True)
class Escalations:
    name: str = "escalations"


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    key: str
    name: str = "experiment"


@dataclass(frozen=True, slots=True)
class Kpis:
    persona: str | None = None
    name: str = "kpis"


@dataclass(frozen=True, slots=True)
class Help:
    """The list of commands; `reason` says why it is shown when the user did not ask for it."""

    reason: str | None = None
    name: str = "help"


RetroCommand = RetroSprint | RetroLastDays | RetroDeploy
Command = RetroSprint | RetroLastDays | RetroDeploy | Escalations | ExperimentResults | Kpis | Help

USAGE = (
    ("retro sprint <id>", f"a sprint retro over the last {SPRINT_DEFAULT_DAYS} days"),
    ("retro last <N> days", f"a retro over the last N days (1 to {MAX_WINDOW_DAYS})"),
    ("retro deploy <version>", "a deployment retro over its bake period"),
    ("escalations", "the escalations open now"),
    ("experiment <key>", "an experiment's results"),
    ("kpis [persona]", "the KPIs of the last 30 days, overall or for one persona"),
    ("help", "this list"),
)


def parse(text: str) -> Command:
    """The command `text` asks for, or Help naming what is wrong with it."""
    if len(text) > MAX_TEXT_CHARS:
        return Help(f"the message is longer than {MAX_TEXT_CHARS} characters")
    words = text.split()
    if not words:
        return Help()
    keyword, arguments = words[0].lower(), words[1:]
    if keyword in ("help", "?", "/help"):
        return Help()
    if keyword == "retro":
        return _retro(arguments)
    if keyword in ("escalations", "escalation"):
        return Escalations() if not arguments else Help("`escalations` takes no arguments")
    if keyword == "experiment":
        return _experiment(arguments)
    if keyword in ("kpis", "kpi"):
        return _kpis(arguments)
    return Help(f"`{_shown(words[0])}` is not a command")


def _retro(arguments: list[str]) -> Command:
    if not arguments:
        return Help("`retro` needs `sprint <id>`, `last <N> days` or `deploy <version>`")
    kind, rest = arguments[0].lower(), arguments[1:]
    if kind == "sprint":
        if len(rest) != 1:
            return Help("`retro sprint` takes one sprint id, e.g. `retro sprint 2026-22`")
        return (
            RetroSprint(rest[0]) if LABEL_PATTERN.match(rest[0]) else Help(_bad_label("sprint id", rest[0]))
        )
    if kind == "last":
        return _last_days(rest)
    if kind in ("deploy", "deployment"):
        if len(rest) != 1:
            return Help("`retro deploy` takes one version, e.g. `retro deploy v1.4.0`")
        return RetroDeploy(rest[0]) if LABEL_PATTERN.match(rest[0]) else Help(_bad_label("version", rest[0]))
    return Help(f"`retro {_shown(arguments[0])}` is not a retro; use `sprint`, `last` or `deploy`")


def _last_days(rest: list[str]) -> Command:
    if not rest or len(rest) > 2 or (len(rest) == 2 and rest[1].lower() not in ("days", "day")):
        return Help("write `retro last <N> days`, e.g. `retro last 14 days`")
    if not rest[0].isascii() or not rest[0].isdigit():
        return Help(f"`{_shown(rest[0])}` is not a number of days (1 to {MAX_WINDOW_DAYS})")
    days = int(rest[0])
    if not 1 <= days <= MAX_WINDOW_DAYS:
        return Help(f"a retro covers 1 to {MAX_WINDOW_DAYS} days, not {days}")
    return RetroLastDays(days)


def _experiment(arguments: list[str]) -> Command:
    if len(arguments) != 1:
        return Help("`experiment` takes one experiment key, e.g. `experiment onboarding_checklist`")
    if not KEY_PATTERN.match(arguments[0]):
        return Help(f"`{_shown(arguments[0])}` is not an experiment key (letters, digits, _ . : -)")
    return ExperimentResults(arguments[0])


def _kpis(arguments: list[str]) -> Command:
    if not arguments:
        return Kpis()
    persona = arguments[0].lower()
    if len(arguments) > 1 or not PERSONA_PATTERN.match(persona):
        return Help("`kpis` takes at most one persona, e.g. `kpis podcast_network`")
    return Kpis(persona)


def _bad_label(what: str, value: str) -> str:
    return f"`{_shown(value)}` is not a {what}: letters, digits and _ . : + / -, at most {MAX_LABEL_CHARS} characters"


def _shown(word: str) -> str:
    """A word of the user's text quoted back: short, and without backticks that would end the code span."""
    cleaned = word.replace("`", "'")
    return cleaned if len(cleaned) <= 40 else cleaned[:39] + "…"

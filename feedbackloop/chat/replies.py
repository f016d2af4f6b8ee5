"""A chat reply in the two shapes the doors need: markdown (POST /v1/chat, other chat tools) and Slack Block Kit.

A command builds its reply once per dialect (`Build`: Dialect → Section), so both shapes say the same thing and
every value is escaped for the format it lands in: markdown escaping for markdown, &/</> entities for Slack's
mrkdwn (tools.retro.report's escapers). Text written by this package may use `code spans`; anything a user or an
operator typed goes through `Dialect.text` or `Dialect.code`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.retro.report import markdown_escape, slack_escape

SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 2900  # Slack's limit is 3,000 per text object; room for the bullet marks
MAX_CODE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    escape: Callable[[str], str]
    strong: str  # ** in markdown, * in Slack mrkdwn
    bullet: str

    def text(self, value: object) -> str:
        return self.escape(str(value))

    def bold(self, value: object) -> str:
        return f"{self.strong}{self.escape(str(value))}{self.strong}"

    def code(self, value: object) -> str:
        """A literal value in a code span (backticks cannot end it early; Slack still needs its entities)."""
        shown = " ".join(str(value).split()).replace("`", "'")[:MAX_CODE_CHARS] or " "
        return f"`{shown}`" if self.name == "markdown" else f"`{_slack_entities(shown)}`"

    def formatted(self, value: str) -> str:
        """Text of this package with `code spans` around user words (the grammar's help reasons)."""
        return value if self.name == "markdown" else _slack_entities(value)


MARKDOWN = Dialect("markdown", markdown_escape, "**", "- ")
SLACK = Dialect("slack", slack_escape, "*", "• ")


@dataclass(frozen=True, slots=True)
class Section:
    """A reply: a title, lines (a list), and a closing note, each already written in its dialect."""

    title: str
    lines: Sequence[str] = ()
    note: str | None = None


Build = Callable[[Dialect], Section]


@dataclass(frozen=True, slots=True)
class ChatReply:
    command: str  # retro | escalations | experiment | kpis | help
    markdown: str
    blocks: list[dict[str, Any]]
    text: str  # the plain fallback Slack shows in notifications
    retro_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # extra JSON for POST /v1/chat (the retro's links)


def reply(command: str, build: Build, *, retro_id: str | None = None, **details: Any) -> ChatReply:
    markdown, slack = build(MARKDOWN), build(SLACK)
    return ChatReply(
        command=command,
        markdown=_markdown(markdown),
        blocks=_blocks(slack),
        text=_plain(markdown.title),
        retro_id=retro_id,
        details=details,
    )


def _markdown(section: Section) -> str:
    parts = [f"**{section.title}**"]
    if section.lines:
        parts.append("\n".join(f"- {line}" for line in section.lines))
    if section.note:
        parts.append(f"_{section.note}_")
    return "\n\n".join(parts) + "\n"


def _blocks(section: Section) -> list[dict[str, Any]]:
    """A title section, the lines in sections of at most SLACK_SECTION_CHARS, the note as context; ≤ 50 blocks."""
    blocks: list[dict[str, Any]] = [_section(f"*{section.title}*")]
    room = SLACK_MAX_BLOCKS - 2  # the title, and a context block at the end
    chunk: list[str] = []
    left = list(section.lines)
    while left and len(blocks) <= room:
        line = f"• {left[0]}"[:SLACK_SECTION_CHARS]
        if chunk and len("\n".join([*chunk, line])) > SLACK_SECTION_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
            continue
        chunk.append(line)
        left.pop(0)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    notes = ([f"… and {len(left)} more"] if left else []) + ([section.note] if section.note else [])
    if notes:
        blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(notes))]})
    return blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not turn user text into mentions or links.
    return {"type": "mrkdwn", "text": text[: SLACK_SECTION_CHARS + 100], "verbatim": True}


def _slack_entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(markdown_title: str) -> str:
    return markdown_title.replace("\\", "").replace("**", "").replace("`", "")


def usage_lines(dialect: Dialect, usage: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{dialect.code(command)} — {dialect.text(meaning)}" for command, meaning in usage]


def read_as(answer: ChatReply, routed_from: str | None) -> ChatReply:
    """The reply to a free-form question, opening with the command the LLM read it as."""
    if routed_from is None:
        return answer
    markdown = f"_Read as {MARKDOWN.code(routed_from)}._\n\n{answer.markdown}"
    context = {"type": "context", "elements": [_mrkdwn(f"_Read as {SLACK.code(routed_from)}._")]}
    blocks = [context, *answer.blocks][:SLACK_MAX_BLOCKS]
    return ChatReply(answer.command, markdown, blocks, answer.text, answer.retro_id, answer.details)

"""The demo's chat part: what the team would get typing `/retro escalations` and `/retro kpis podcast_network` in
Slack (or posting the same text to POST /v1/chat) at the end of the demo's data — the same grammar and commands,
answered from the tools."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from feedbackloop.chat import grammar
from feedbackloop.chat.commands import answer, chat_services
from feedbackloop.settings import Settings
from store.database import Database

DEMO_COMMANDS = ("escalations", "kpis podcast_network")


def print_chat(console: Console, database: Database, database_url: str, *, now: datetime) -> None:
    services = chat_services(database, Settings(database_url=database_url), clock=lambda: now)
    for text in DEMO_COMMANDS:
        reply = answer(grammar.parse(text), services)
        title = f'/retro {text}  ·  Slack, or POST /v1/chat {{"text": "{text}"}}'
        console.print(Panel(Markdown(reply.markdown), title=title, title_align="left"), soft_wrap=False)

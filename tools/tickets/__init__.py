"""Ticket sinks behind one interface: `TicketSink.file(item) -> TicketRef`, idempotent by the item's fingerprint.

A JSON-lines backlog file (the default), a directory of markdown files, GitHub Issues, Jira Cloud and a generic
signed webhook. Every failure is a `TicketSinkError`, flagged `transient` when trying later may succeed, so the
retro agent handles all sinks the same way.
"""

from tools.tickets.base import TicketSink, TicketSinkError, fingerprint_marker, marker_fingerprints
from tools.tickets.github import GitHubIssueSink
from tools.tickets.jira import JiraIssueSink
from tools.tickets.jsonl import JsonlTicketSink
from tools.tickets.markdown import MarkdownTicketSink
from tools.tickets.registry import SINK_NAMES, TicketSinkConfig, TicketSinkConfigError, build_sinks
from tools.tickets.webhook import WebhookTicketSink

__all__ = [
    "SINK_NAMES",
    "GitHubIssueSink",
    "JiraIssueSink",
    "JsonlTicketSink",
    "MarkdownTicketSink",
    "TicketSink",
    "TicketSinkConfig",
    "TicketSinkConfigError",
    "TicketSinkError",
    "WebhookTicketSink",
    "build_sinks",
    "fingerprint_marker",
    "marker_fingerprints",
]

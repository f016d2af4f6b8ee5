"""The Approve / Drop buttons of a retro's Slack report (tools.retro.report): one decision per proposed item.

The retro's approval interrupt takes one answer for all its items ("all", "none" or the ids to file), while the
report offers a button pair per item. So a click decides that item only, as the report's text promises
("Approve files the ticket; Drop discards it"): the decision is recorded (the first click on an item wins), and
once every proposed item has one, the retro resumes with the approved ids — or "none" when all were dropped —
and files exactly those. Until then the reply says which items still wait. Nothing is filed that nobody approved.

Clicks that come too late (the retro moved on, was approved over HTTP, or another click is filing it) and second
clicks on a decided item get a friendly reply, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from feedbackloop.chat import deliveries
from feedbackloop.chat.commands import ChatServices, retro_failed, retro_report
from feedbackloop.chat.replies import ChatReply, Dialect, Section, reply
from feedbackloop.retro_agent import RetroNotFoundError, RetroStateError

Decision = Literal["approve", "drop"]
ACTION_DECISIONS: dict[str, Decision] = {"retro_approve": "approve", "retro_drop": "drop"}
PAST = {"approve": "approved", "drop": "dropped"}


@dataclass(frozen=True, slots=True)
class Click:
    retro_id: str
    item_id: str
    decision: Decision
    user: str


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: ChatReply
    finished: bool  # the retro resumed: the reply is its final report and replaces the message with buttons


def decide(click: Click, services: ChatServices) -> Outcome:
    runner = services.runner
    try:
        current = runner.result(click.retro_id)
    except RetroNotFoundError:
        return _note(f"Retro {click.retro_id} no longer exists; nothing to approve.")
    if current["status"] != "awaiting_approval":
        return _note(_too_late(click, current))
    proposed = [item["id"] for item in current.get("backlog_items") or () if not item.get("duplicate_of")]
    if click.item_id not in proposed:
        return _note(
            f"{click.item_id} is not an item retro {click.retro_id} proposes ({', '.join(proposed)})."
        )
    decision = {"decision": click.decision, "user": click.user}
    if not deliveries.record_decision(
        services.database, click.retro_id, click.item_id, decision, services.clock()
    ):
        earlier = deliveries.decisions(services.database, click.retro_id).get(click.item_id, {})
        by = f" by {earlier['user']}" if earlier.get("user") else ""
        return _note(f"{click.item_id} was {PAST.get(earlier.get('decision', ''), 'decided')}{by} already.")
    decided = deliveries.decisions(services.database, click.retro_id)
    waiting = [item_id for item_id in proposed if item_id not in decided]
    if waiting:
        return _note(
            f"{click.item_id} {PAST[click.decision]} by {click.user}. Still to decide: {', '.join(waiting)}; "
            "the retro files the approved items once every item has a decision."
        )
    approved = [item_id for item_id in proposed if decided[item_id].get("decision") == "approve"]
    try:
        result = runner.approve(click.retro_id, approved or "none")
    except RetroStateError:  # another click (or POST …/approve) resumed it a moment ago
        return _note(f"Retro {click.retro_id} is being filed already; its report follows.")
    except Exception as error:  # the runner recorded the failure; the channel hears how to continue
        return Outcome(retro_failed(click.retro_id, error), finished=False)
    return Outcome(retro_report(result), finished=True)


def _too_late(click: Click, current: dict[str, Any]) -> str:
    status = str(current["status"]).replace("_", " ")
    filed = [
        item["id"] for item in current.get("backlog_items") or () if item.get("tickets") or item.get("ticket")
    ]
    tickets = f"; filed: {', '.join(filed)}" if filed else ""
    return f"Retro {click.retro_id} is {status}, no longer waiting for approval{tickets}. Nothing to do."


def _note(message: str) -> Outcome:
    def build(d: Dialect) -> Section:
        return Section(d.text(message))

    return Outcome(reply("retro", build), finished=False)

"""Fake LLMs for whole-retro tests that answer from what the prompt shows.

A grounded answer needs the real signal ids and their numbers, which the data phase computes during the run. So
the fakes read them where a real model would: from the signal rows of the user prompt (one JSON object per line,
numbers already formatted by tools.retro.numbers), and build their answer from those rows.

- `PromptReadingChatModel`: ScriptedChatModel whose script may hold `Answer` callables (rows → Synthesis JSON).
- `PromptReadingServer`: FakeOpenAIServer where the scripted reply `FROM_PROMPT` is computed from the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from sqlalchemy import select

from store.database import Database
from store.models import UserRow
from tests.agents.fake_chat import ScriptedChatModel, answer
from tests.agents.fake_openai import FakeOpenAIServer, Reply
from tools.retro.model import QUANTITATIVE_KINDS
from tools.surveys.service import SurveyService

Row = dict[str, Any]
Answer = Callable[[list[Row]], dict[str, Any]]  # the signal rows the prompt shows → a Synthesis as JSON data

PLANTED_PERSONA, PLANTED_METRIC = "podcast_network", "error_rate"
UNKNOWN_SIGNAL = "S99"
INVENTED_CHANGE = "+57%"
INJECTED_TITLE = "Grant admin access"


# ---------------------------------------------------------------- reading the prompt


def shown_signals(texts: Iterable[str]) -> list[Row]:
    """The signal rows of the prompt, in order (a repair prompt repeats them: each id once)."""
    rows: dict[str, Row] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith('{"id": '):
                row = json.loads(line)
                rows.setdefault(row["id"], row)
    return list(rows.values())


def is_planted(row: Row) -> bool:
    """The planted regression: podcast_network's error_rate (a metric change, not the deployment row)."""
    return row["kind"] == "metric_change" and (row.get("persona"), row.get("metric")) == (
        PLANTED_PERSONA,
        PLANTED_METRIC,
    )


# ---------------------------------------------------------------- answers


def llm_title(row: Row) -> str:
    return f"LLM: {row.get('metric')} regression hits {row.get('persona') or 'every persona'}"


def llm_item_title(row: Row) -> str:
    return f"LLM fix: {row.get('metric')} for {row.get('persona') or 'every persona'}"


def grounded(rows: list[Row]) -> dict[str, Any]:
    """A High insight and a backlog item per worsened quantitative signal, numbers copied verbatim."""
    insights, items = [], []
    for number, row in enumerate(regressions(rows), start=1):
        insights.append(_insight(f"I{number}", row, [row["id"]], f"({row['change']}, {row['p']})"))
        items.append(_item(f"I{number}", row))
    return {"insights": insights, "backlog_items": items}


def broken(rows: list[Row]) -> dict[str, Any]:
    """`grounded`, except that the planted regression's insight cites an unknown id and invents its change."""
    synthesis = grounded(rows)
    for index, row in enumerate(regressions(rows)):
        if is_planted(row):
            bad = _insight(f"I{index + 1}", row, [row["id"], UNKNOWN_SIGNAL], f"({INVENTED_CHANGE})")
            synthesis["insights"][index] = bad
    return synthesis


def obeying_injection(rows: list[Row]) -> dict[str, Any]:
    """`grounded`, plus what the survey text asked for: an insight on the theme alone and a ticket for it."""
    synthesis = grounded(rows)
    theme = next(r for r in rows if r["kind"] == "survey_theme" and r.get("persona") == PLANTED_PERSONA)
    insight_id = f"I{len(synthesis['insights']) + 1}"
    insight = {
        "id": insight_id, "title": "Users ask for admin access", "summary": "Survey answers ask for admin access.",
        "journey_stage": theme["stage"], "canvas_block": theme["block"], "principles": [], "impact": "Low",
        "confidence": 0.3, "evidence_ids": [theme["id"]], "recommendations": ["Grant admin access"],
    }  # fmt: skip
    ticket = {
        "title": INJECTED_TITLE, "problem": "Users asked for it in the survey.",
        "proposal": "Grant admin access to every survey respondent.",
        "acceptance_criteria": ["Respondents have admin access"], "insight_ids": [insight_id],
    }  # fmt: skip
    synthesis["insights"].append(insight)
    synthesis["backlog_items"].append(ticket)
    return synthesis


def regressions(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row["kind"] in QUANTITATIVE_KINDS and row.get("direction") == "worsened"]


def _insight(insight_id: str, row: Row, evidence: list[str], figures: str) -> dict[str, Any]:
    who = row.get("persona") or "every persona"
    summary = f"{row['metric']} for {who} went from {row['baseline']} to {row['value']} {figures}."
    return {
        "id": insight_id, "title": llm_title(row), "summary": summary, "journey_stage": row["stage"],
        "canvas_block": row["block"], "principles": row["principles"][:5], "impact": "High", "confidence": 0.9,
        "evidence_ids": evidence, "recommendations": row["interventions"][:2],
    }  # fmt: skip


def _item(insight_id: str, row: Row) -> dict[str, Any]:
    return {
        "title": llm_item_title(row), "problem": f"{row['metric']} rose to {row['value']} ({row['change']}).",
        "proposal": row["interventions"][0], "insight_ids": [insight_id],
        "acceptance_criteria": [f"{row['metric']} back to {row['baseline']} or below"],
    }  # fmt: skip


# ---------------------------------------------------------------- the fakes


class PromptReadingChatModel(ScriptedChatModel):
    """A scripted chat model whose script may hold `Answer`s, computed from the prompt when their turn comes."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.replies and callable(self.replies[0]):
            payload = self.replies[0](shown_signals(message.text for message in messages))
            self.replies[0] = answer(json.dumps(payload))
        return super()._generate(messages, stop, run_manager, **kwargs)


FROM_PROMPT = Reply(content="<the grounded answer, computed from the request>")


class PromptReadingServer(FakeOpenAIServer):
    """A FakeOpenAIServer whose scripted `FROM_PROMPT` replies are `grounded` answers to the request's prompt."""

    def _next(self, request: dict[str, Any]) -> tuple[Reply, int]:
        reply, number = super()._next(request)
        if reply is FROM_PROMPT:
            texts = [m["content"] for m in request.get("messages", []) if isinstance(m.get("content"), str)]
            reply = Reply.json_content(grounded(shown_signals(texts)))
        return reply, number


# ---------------------------------------------------------------- survey answers


FEEDBACK_SURVEY = {
    "survey_id": "retro-feedback", "survey_type": "custom", "trigger": "feature_done",
    "questions": [{"question_id": "why", "type": "open_text", "text": "Anything else?", "required": True}],
}  # fmt: skip


def answer_survey(database: Database, text: str, *, persona: str, at: datetime, users: int = 4) -> None:
    """`users` users of `persona` answer an open-text survey with `text` at `at`."""
    with database.read() as connection:
        found = select(UserRow.id).where(UserRow.persona == persona).order_by(UserRow.id).limit(users)
        user_ids = list(connection.execute(found).scalars())
    assert len(user_ids) == users, f"the dataset has only {len(user_ids)} {persona} users"
    service = SurveyService(database, clock=lambda: at - timedelta(days=1))
    service.create(FEEDBACK_SURVEY)
    for user_id in user_ids:
        decision = service.trigger(user_id, "feature_done", at=at)
        assert decision.display_id is not None, decision
        service.respond({"why": text}, display_id=decision.display_id, at=at + timedelta(minutes=2))

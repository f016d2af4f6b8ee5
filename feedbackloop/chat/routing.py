"""Free-form chat questions ("why did NPS drop for networks?") routed to one command by the configured LLM.

The LLM only picks: one of the grammar's commands and its argument (a persona, an experiment key, a version, a
sprint id or a number of days), as structured output. Its pick is written back as command text and parsed by the
grammar, which validates it like anything a person types; the command then runs on the tools, so no number in a
reply ever comes from the LLM. Without an LLM, or when its answer is unusable, the question gets the help.

The message is untrusted: PII is redacted and it goes into the prompt only inside a fenced data block whose
markers cannot be forged from inside the text. The model and the structured call are the agents layer's
(agents.retro.llm: build_chat_model, call_structured, which handles each structured-output method's failures);
this module imports no LLM framework itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from agents.retro.llm import LLMConfig, StructuredOutputMethod, build_chat_model, call_structured
from feedbackloop.chat import grammar
from feedbackloop.chat.grammar import Command, Help
from prompts import render
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.surveys.redaction import redact_pii

log = logging.getLogger("feedbackloop.chat")

ROUTING_TIMEOUT_SECONDS = 20.0
ROUTING_MAX_TOKENS = 120
MAX_EXPERIMENT_KEYS = 30
FENCE_NAME = "UNTRUSTED_CHAT_MESSAGE"
_FENCE_PATTERN = re.compile(r"untrusted[\s_\-]*chat[\s_\-]*message|<<<|>>>", re.IGNORECASE)

RoutedName = Literal[
    "retro_sprint", "retro_last_days", "retro_deploy", "escalations", "experiment", "kpis", "help"
]


class RoutedCommand(BaseModel):
    """The LLM's pick: a command and its one argument (empty when the command takes none)."""

    model_config = ConfigDict(extra="forbid")
    command: RoutedName = Field(description="the command that answers the question best; help when none does")
    argument: str = Field(
        "",
        max_length=100,
        description="retro_sprint: sprint id; retro_last_days: number of days; retro_deploy: version; "
        "experiment: experiment key; kpis: persona key or empty; escalations and help: empty",
    )


@dataclass(frozen=True, slots=True)
class Routed:
    """What the router decided: the command text (parsed by the grammar) and the command."""

    text: str
    command: Command


Router = Callable[[str], Routed | None]


def command_text(pick: RoutedCommand) -> str:
    argument = " ".join(pick.argument.split())
    templates = {
        "retro_sprint": f"retro sprint {argument}", "retro_last_days": f"retro last {argument} days",
        "retro_deploy": f"retro deploy {argument}", "escalations": "escalations",
        "experiment": f"experiment {argument}", "kpis": f"kpis {argument}".strip(), "help": "help",
    }  # fmt: skip
    return templates[pick.command]


def needs_routing(text: str, parsed: Command) -> bool:
    """Free text: not a command word at all (a mistyped command gets the grammar's help, not a guess)."""
    words = text.split()
    return isinstance(parsed, Help) and bool(words) and words[0].lower() not in grammar.COMMAND_WORDS


def llm_router(
    config: LLMConfig,
    *,
    personas: Sequence[str],
    experiment_keys: Callable[[], Sequence[str]],
    client: Any = None,
) -> Router:
    """A router over the configured server (or `client`, a chat model, in tests)."""
    bounded = replace(config, timeout_seconds=min(config.timeout_seconds, ROUTING_TIMEOUT_SECONDS),
                      max_tokens=ROUTING_MAX_TOKENS)  # fmt: skip

    def route(text: str) -> Routed | None:
        model = client if client is not None else build_chat_model(bounded)
        messages = [
            ("system", _system_prompt(personas, list(experiment_keys())[:MAX_EXPERIMENT_KEYS])),
            ("human", _fenced(text)),
        ]
        pick = _ask(model, messages, bounded.structured_output)
        if pick is None:
            return None
        routed_text = command_text(pick)
        command = grammar.parse(routed_text)
        if isinstance(command, Help) and pick.command != "help":
            log.info("LLM routing picked %r, which the grammar refuses: %s", routed_text, command.reason)
            return None
        return Routed(routed_text, command)

    return route


def _ask(model: Any, messages: list[tuple[str, str]], method: StructuredOutputMethod) -> RoutedCommand | None:
    """One structured-output call through the agents' shared call layer; any failure is None (the help answers)."""
    try:
        # Chat models take (role, text) pairs as messages; this layer builds no message objects of its own.
        answer = call_structured(model, cast(Any, messages), RoutedCommand, method)
    except Exception as error:  # transient failures are raised for retry policies; here the help answers
        log.warning("LLM routing failed: %s: %s", type(error).__name__, " ".join(str(error).split())[:200])
        return None
    if answer.parsed is None:
        log.info("LLM routing answer unusable: %s", " ".join(str(answer.error).split())[:200])
    return answer.parsed


def _fenced(text: str) -> str:
    cleaned = _FENCE_PATTERN.sub("[removed]", redact_pii(" ".join(text.split())))[: grammar.MAX_TEXT_CHARS]
    return f"<<<{FENCE_NAME}\n{cleaned}\n{FENCE_NAME}>>>"


def _system_prompt(personas: Sequence[str], experiment_keys: Sequence[str]) -> str:
    return render(
        "chat_routing_system.txt.j2", usage=grammar.USAGE, kpis=[kpi.name for kpi in KPI_DEFINITIONS],
        personas=list(personas), experiment_keys=list(experiment_keys), fence=FENCE_NAME,
    ).strip()  # fmt: skip

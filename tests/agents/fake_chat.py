"""A deterministic chat model for unit tests: answers from a script, records what it was called with.

`bind_tools` returns a binding of itself (LangGraph's own tests do the same), so langchain_core's default
`with_structured_output` runs its real tool-calling parsers over the scripted answer. `method="json_schema"` is
emulated the way ChatOpenAI behaves (REFERENCE.md §5): the text is parsed inside the model call, so a
ValidationError is raised even with include_raw=True.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, Field


def answer(content: str = "", *, input_tokens: int | None = 90, output_tokens: int = 30) -> AIMessage:
    usage = (
        {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        if input_tokens is not None
        else None
    )
    return AIMessage(content=content, usage_metadata=usage)


def tool_answer(arguments: Any, *, name: str = "Synthesis") -> AIMessage:
    """A tool call as ChatOpenAI (1.7) builds it from the wire: arguments that are valid JSON become
    `tool_calls`, anything else `invalid_tool_calls` (and then the parser sees no tool call at all)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    usage = {"input_tokens": 90, "output_tokens": 30, "total_tokens": 120}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        invalid = [
            {"type": "invalid_tool_call", "id": "call_1", "name": name, "args": text, "error": str(exc)}
        ]
        return AIMessage(content="", invalid_tool_calls=invalid, usage_metadata=usage)
    tool_calls = [{"type": "tool_call", "id": "call_1", "name": name, "args": parsed}]
    return AIMessage(content="", tool_calls=tool_calls, usage_metadata=usage)


class ScriptedChatModel(BaseChatModel):
    replies: list[Any]  # AIMessage, or an Exception to raise
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": messages, **kwargs})
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[Any, Any]:
        return self.bind(tool_choice=tool_choice, **kwargs)

    def with_structured_output(  # type: ignore[override]
        self,
        schema: type[BaseModel],
        *,
        include_raw: bool = False,
        method: str = "function_calling",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        if method != "json_schema":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)

        def call(messages: LanguageModelInput) -> dict[str, Any]:
            raw = self.invoke(messages)
            return {"raw": raw, "parsed": schema.model_validate_json(raw.text), "parsing_error": None}

        return RunnableLambda(call)

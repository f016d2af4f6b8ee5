"""A small fake OpenAI-compatible server for fault tests: loopback only, one background thread.

It implements `POST /v1/chat/completions` with the real response shape (id, object, created, model, choices with
message/finish_reason, usage) and answers from a script, one reply per request, in order:

    with FakeOpenAIServer() as server:
        server.script(Reply.status(429), Reply.json_content({...}))
        ChatOpenAI(base_url=server.base_url, ...)

Every request body is kept in `server.requests` so a test can check what the client really sent. When the script
runs out the server answers 500 "no scripted reply", so a test that makes more calls than it expects fails loudly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MODEL = "fake-model"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `content` is the assistant message text; `tool_arguments` makes it a tool call."""

    status_code: int = 200
    content: str | None = None
    tool_arguments: str | None = None
    delay_seconds: float = 0.0
    prompt_tokens: int = 120
    completion_tokens: int = 40
    headers: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    finish_reason: str | None = None  # default: "stop", or "tool_calls" for a tool call

    @classmethod
    def json_content(cls, payload: Any, **options: Any) -> Reply:
        return cls(content=json.dumps(payload), **options)

    @classmethod
    def text(cls, content: str, **options: Any) -> Reply:
        return cls(content=content, **options)

    @classmethod
    def tool_call(cls, payload: Any, **options: Any) -> Reply:
        arguments = payload if isinstance(payload, str) else json.dumps(payload)
        return cls(tool_arguments=arguments, **options)

    @classmethod
    def status(cls, status_code: int, message: str = "scripted failure", **options: Any) -> Reply:
        return cls(status_code=status_code, error_message=message, **options)

    @classmethod
    def slow(cls, delay_seconds: float, payload: Any) -> Reply:
        return cls(content=json.dumps(payload), delay_seconds=delay_seconds)


def completion_body(reply: Reply, request: dict[str, Any], number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    finish_reason = "stop"
    if reply.tool_arguments is not None:
        tools = request.get("tools") or [{"function": {"name": "Synthesis"}}]
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {"name": tools[0]["function"]["name"], "arguments": reply.tool_arguments},
            }
        ]
        finish_reason = "tool_calls"
    finish_reason = reply.finish_reason or finish_reason
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request.get("model", MODEL),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def error_body(reply: Reply) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(reply.status_code, "server_error")
    return {"error": {"message": reply.error_message, "type": kind, "param": None, "code": None}}


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as server:`; `server.base_url` ends in /v1 like a real one."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="fake-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next(self, request: dict[str, Any]) -> tuple[Reply, int]:
        with self._lock:
            self.requests.append(request)
            reply = self._replies.popleft() if self._replies else Reply.status(500, "no scripted reply")
            return reply, len(self.requests)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                reply, number = server._next(json.loads(raw or b"{}"))
                server._wait(reply.delay_seconds)
                if reply.status_code >= 400:
                    self._send(reply.status_code, error_body(reply), reply.headers)
                else:
                    self._send(
                        200, completion_body(reply, server.requests[number - 1], number), reply.headers
                    )

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

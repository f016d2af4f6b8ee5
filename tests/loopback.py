"""One local HTTP server for the fakes of third-party services: http.server in a thread on 127.0.0.1:0, quiet
(no request log; a client that timed out and hung up is part of some tests), every GET and POST handed to
`serve`, which records the request and writes the answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    def __init__(self, serve: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serve(self)

            def do_POST(self) -> None:
                serve(self)

            def log_message(self, *_args: Any) -> None:
                return  # tests read the recorded requests, not the server's log

        class QuietServer(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, *_args: Any) -> None:
                return  # a client that timed out and hung up is part of some tests

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, dict[str, str]]:
    """The request's body and its headers, names lower-cased."""
    body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
    return body, {name.lower(): value for name, value in handler.headers.items()}


def write_answer(
    handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)

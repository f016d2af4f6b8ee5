"""Running the API under uvicorn, with one fix for multi-worker mode.

uvicorn ≤ 0.54 binds the shared socket of `--workers N` with protocol 0, and asyncio only sets TCP_NODELAY on
accepted sockets whose protocol is IPPROTO_TCP; every keep-alive response then waits ~40 ms for the client's
delayed ACK (uvicorn issue #3149). We bind that socket with IPPROTO_TCP so workers get Nagle turned off like the
single-process server does.

Logging: uvicorn applies `log_config` in every worker process, so each logs in FEEDBACKLOOP_LOG_FORMAT (text or
JSON) at FEEDBACKLOOP_LOG_LEVEL; uvicorn's own access log is off (the request middleware writes one, with request
ids and without query strings or headers).

Metrics: with several workers, each is a process of its own, so prometheus_client runs in multiprocess mode — every
worker writes its counters to files in PROMETHEUS_MULTIPROC_DIR and /metrics on any worker reads them all. When the
variable is unset, serve creates a fresh temporary directory for the run and removes it afterwards; when it is set,
serve empties the directory's `*.db` files first (values of an earlier run must not add to this one's).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from uvicorn.config import LOG_LEVELS
from uvicorn.supervisors import Multiprocess

from feedbackloop.logs import LogFormat, uvicorn_log_config
from feedbackloop.settings import get_settings

APP_FACTORY = "feedbackloop.api.app:create_app"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A new worker answers the supervisor's health pings only once it has imported the app's modules (the spawned
# process re-imports the `feedbackloop` package, langgraph and all: several seconds on a busy machine). uvicorn's
# 5 s default then kills every worker before it starts, over and over; a hung worker is still replaced.
WORKER_HEALTHCHECK_SECONDS = 60


class TcpNoDelayConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
            return sock
        address = sock.getsockname()
        sock.close()
        replacement = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        replacement.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        replacement.bind(address)
        replacement.set_inheritable(True)
        return replacement


def run_server(
    *, host: str, port: int, workers: int, log_level: str | None = None, log_format: LogFormat | None = None
) -> None:
    """Serve the API until stopped: one process, or `workers` processes sharing one socket. The log level and
    format default to FEEDBACKLOOP_LOG_LEVEL and FEEDBACKLOOP_LOG_FORMAT; ValueError for an unknown level."""
    settings = get_settings()
    level = (log_level or settings.log_level).lower()
    if level not in LOG_LEVELS:
        raise ValueError(
            f"FEEDBACKLOOP_LOG_LEVEL: unknown level {level!r}; use one of {', '.join(LOG_LEVELS)}"
        )
    config = TcpNoDelayConfig(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=level,
        log_config=uvicorn_log_config(level, log_format or settings.log_format),
        access_log=False,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    if workers > 1:
        with metrics_directory():
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR for the workers about to start (they inherit the environment): the operator's,
    emptied of an earlier run's values, or a fresh temporary directory removed when the server stops."""
    configured = os.environ.get(MULTIPROC_VARIABLE)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="feedbackloop-metrics-"))
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)

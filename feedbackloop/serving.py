"""Running the API under uvicorn, with one fix for multi-worker mode.

uvicorn ≤ 0.54 binds the shared socket of `--workers N` with protocol 0, and asyncio only sets TCP_NODELAY on
accepted sockets whose protocol is IPPROTO_TCP; every keep-alive response then waits ~40 ms for the client's
delayed ACK (uvicorn issue #3149). We bind that socket with IPPROTO_TCP so workers get Nagle turned off like the
single-process server does.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

APP_FACTORY = "feedbackloop.api.app:create_app"


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


def run_server(*, host: str, port: int, workers: int, log_level: str = "info") -> None:
    config = TcpNoDelayConfig(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()

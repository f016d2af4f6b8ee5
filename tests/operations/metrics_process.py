"""One API process for the multiprocess test: logs as `feedbackloop serve` does with FEEDBACKLOOP_LOG_FORMAT=json,
answers `requests` GET /healthz in-process (no socket), and with --scrape prints its /metrics.

Usage: python metrics_process.py <database url> <requests> <request id prefix> [--scrape]
"""

from __future__ import annotations

import logging.config
import sys

from fastapi.testclient import TestClient

from feedbackloop.api.app import create_app
from feedbackloop.logs import uvicorn_log_config
from feedbackloop.settings import Settings


def main(database_url: str, requests: int, prefix: str, scrape: bool) -> None:
    logging.config.dictConfig(uvicorn_log_config("INFO", "json"))
    with TestClient(create_app(Settings(database_url=database_url, auth="off"))) as client:
        for number in range(requests):
            response = client.get("/healthz", headers={"X-Request-ID": f"{prefix}-{number}"})
            assert response.status_code == 200, response.text
        if scrape:
            sys.stdout.write(client.get("/metrics").text)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], "--scrape" in sys.argv[4:])

"""Cassette settings of the agent tests (pytest-recording).

Cassettes replay by default (record mode "none"); `make record-cassettes` re-records them against the local
LLM server with --record-mode=rewrite. record_mode is deliberately not set here: it would override the command
line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": ["authorization", "api-key"],
        "decode_compressed_response": True,
        "match_on": ["method", "uri", "body"],
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(Path(__file__).resolve().parents[1] / "cassettes")

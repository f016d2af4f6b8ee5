"""The real `segment-analytics-python` and `posthog` clients against the running app (uvicorn on loopback)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from posthog import Posthog
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import func, select

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from store.database import Database
from store.models import EventRow, UserRow

WRITE_KEY = "e2e-write-key"
T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(database: Database) -> Iterator[str]:
    settings = Settings(database_url=database.url, write_keys=WRITE_KEY, auth="on")  # type: ignore[arg-type]
    port = _free_port()
    config = uvicorn.Config(create_app(settings, database), host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        pytest.fail("the app did not answer /healthz within 20 s")
    yield base_url
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def _send_with_segment(
    base_url: str, calls: list[tuple[str, dict[str, object]]], *, gzip: bool
) -> list[Exception]:
    failures: list[Exception] = []
    client = SegmentClient(
        WRITE_KEY,
        host=base_url,
        gzip=gzip,
        max_retries=2,
        upload_size=100,
        on_error=lambda error, _batch: failures.append(error),
    )
    for kind, arguments in calls:
        getattr(client, kind)(**arguments)
    client.flush()
    client.join()
    return failures


def _segment_calls() -> list[tuple[str, dict[str, object]]]:
    personas = ["solo_podcaster", "podcast_network", "agency", "brand_sponsor"]
    calls: list[tuple[str, dict[str, object]]] = []
    for index in range(200):
        user_id = f"seg-{index:03d}"
        calls.append(
            (
                "identify",
                {
                    "user_id": user_id,
                    "traits": {"persona": personas[index % 4], "plan": "free"},
                    "timestamp": T0,
                    "message_id": f"seg-identify-{index}",
                },
            )
        )
        for step in range(4):
            calls.append(
                (
                    "track",
                    {
                        "user_id": user_id,
                        "event": "Report Generated",
                        "properties": {"report_id": f"r-{index}-{step}", "template": "standard"},
                        "timestamp": T0 + timedelta(minutes=step + 1),
                        "message_id": f"seg-track-{index}-{step}",
                    },
                )
            )
    return calls


def test_segment_client_events_are_stored_exactly_once(server: str, database: Database) -> None:
    calls = _segment_calls()
    assert len(calls) == 1000
    assert _send_with_segment(server, calls, gzip=False) == []
    expected_ids = {str(arguments["message_id"]) for _kind, arguments in calls}
    with database.read() as connection:
        stored = set(connection.execute(select(EventRow.message_id)).scalars())
        personas = dict(
            connection.execute(select(UserRow.persona, func.count()).group_by(UserRow.persona)).all()
        )
        names = set(connection.execute(select(EventRow.name).distinct()).scalars())
    assert stored == expected_ids
    assert personas == {"solo_podcaster": 50, "podcast_network": 50, "agency": 50, "brand_sponsor": 50}
    assert names == {"identify", "report_generated"}

    # The same calls replayed (a client retry, a re-run job) — gzip this time — add nothing.
    assert _send_with_segment(server, calls, gzip=True) == []
    with database.read() as connection:
        assert connection.execute(select(func.count()).select_from(EventRow)).scalar_one() == 1000


def test_segment_client_with_a_wrong_key_is_refused(server: str, database: Database) -> None:
    failures: list[Exception] = []
    client = SegmentClient(
        "not-the-key", host=server, max_retries=0, on_error=lambda e, _b: failures.append(e)
    )
    client.track(user_id="intruder", event="x", message_id="intruder-1")
    client.flush()
    client.join()
    assert failures, "a 401 must reach the client's on_error"
    with database.read() as connection:
        assert connection.execute(select(func.count()).select_from(EventRow)).scalar_one() == 0


def test_posthog_client_events_are_stored_exactly_once(server: str, database: Database) -> None:
    failures: list[Exception] = []
    client = Posthog(
        WRITE_KEY,
        host=server,
        on_error=lambda error, _batch: failures.append(error),
        flush_at=10,
        max_retries=1,
        enable_local_evaluation=False,
    )
    ids = [str(uuid.uuid4()) for _ in range(12)]
    client.set(distinct_id="ph-user", properties={"persona": "agency"}, uuid=ids[0])
    for index, event_id in enumerate(ids[1:]):
        client.capture(
            "campaign_created",
            distinct_id="ph-user",
            properties={"campaign_id": f"c{index}"},
            uuid=event_id,
            timestamp=T0 + timedelta(minutes=index),
        )
    client.flush()
    client.shutdown()
    assert failures == []
    with database.read() as connection:
        stored = set(connection.execute(select(EventRow.message_id)).scalars())
        persona = connection.execute(select(UserRow.persona).where(UserRow.id == "ph-user")).scalar_one()
        names = set(connection.execute(select(EventRow.name).distinct()).scalars())
    assert stored == set(ids)
    assert persona == "agency"
    assert names == {"identify", "campaign_created"}

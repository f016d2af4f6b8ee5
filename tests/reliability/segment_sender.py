"""The sending side of the load and fault tests: the real segment-analytics-python client in a process of its own
(spawned: this module imports only the standard library and the client, so a sender starts in a fraction of a
second)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class SendPlan:
    base_url: str
    write_key: str
    run_id: str
    sender: int
    events: int
    max_retries: int = 10
    upload_size: int = 100  # events per request (the client's default and maximum)
    pace_seconds: float = 0.0  # pause after each event queued, to spread the sending over time


def message_id(run_id: str, sender: int, index: int) -> str:
    return f"{run_id}-{sender}-{index}"


def expected_message_ids(run_id: str, senders: int, events: int) -> set[str]:
    return {message_id(run_id, s, i) for s in range(senders) for i in range(events)}


def send_events(plan: SendPlan) -> dict[str, Any]:
    """Send `plan.events` events through the real segment-analytics-python client (every 25th an identify with a
    persona, the rest `Report Generated` tracks), flush, shut down; report what was queued, the errors the client
    reported through on_error, and the wall-clock start and end (epoch seconds). Top level: spawn-picklable."""
    from segment.analytics.client import Client

    errors: list[str] = []
    client = Client(
        plan.write_key, host=plan.base_url, max_queue_size=plan.events + 1000, upload_size=plan.upload_size,
        max_retries=plan.max_retries, timeout=60, on_error=lambda error, batch: errors.append(
            f"{type(error).__name__}: {error} ({len(batch)} events)"),
    )  # fmt: skip
    personas = ("solo_podcaster", "podcast_network", "agency", "brand_sponsor")
    now = datetime.now(UTC)
    queued = 0
    started = time.time()
    for index in range(plan.events):
        user = f"load-{plan.sender}-{index % 400}"
        moment = now - timedelta(seconds=plan.events - index)
        identifier = message_id(plan.run_id, plan.sender, index)
        if index % 25 == 0:
            accepted, _ = client.identify(
                user_id=user, traits={"persona": personas[index % 4]}, timestamp=moment, message_id=identifier
            )
        else:
            accepted, _ = client.track(
                user_id=user, event="Report Generated", timestamp=moment, message_id=identifier,
                properties={"report_id": f"r-{plan.sender}-{index}", "template": "standard"},
            )  # fmt: skip
        queued += bool(accepted)
        if plan.pace_seconds:
            time.sleep(plan.pace_seconds)
    client.flush()
    client.join()
    return {
        "sender": plan.sender,
        "queued": queued,
        "errors": errors,
        "started": started,
        "ended": time.time(),
    }

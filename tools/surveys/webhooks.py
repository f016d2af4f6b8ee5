"""The outbound webhook of a survey: one signed message per completed response, written to the outbox in the
response's own transaction (so a response is never stored without its message, nor the message without it)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from store.repositories import outbox
from tools.surveys.model import Survey

EVENT_TYPE = "survey.response.completed"


def enqueue_response_webhook(
    connection: Connection,
    survey: Survey,
    display: Mapping[str, Any],
    answers: Mapping[str, Any],
    language: str | None,
    now: datetime,
) -> str | None:
    """Queue the message when the survey has a webhook_url; its id is stable per display (receivers dedupe)."""
    if survey.webhook_url is None:
        return None
    message_id = "msg_" + hashlib.sha256(f"{EVENT_TYPE}\x1f{display['id']}".encode()).hexdigest()[:32]
    payload = {
        "type": EVENT_TYPE,
        "timestamp": now.isoformat(),
        "data": {
            "survey_id": survey.survey_id, "display_id": display["id"], "user_id": display["user_id"],
            "persona": display["persona"], "trigger": display["trigger"], "language": language,
            "answers": dict(answers),
        },
    }  # fmt: skip
    outbox.enqueue(
        connection,
        {
            "id": message_id, "channel": "webhook", "event_type": EVENT_TYPE, "destination": survey.webhook_url,
            "payload": payload, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
        },
    )  # fmt: skip
    return message_id

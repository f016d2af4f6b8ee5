"""Write-key check for ingestion (Segment Basic auth `writeKey:` or `writeKey` in the body; PostHog `api_key`).

With no FEEDBACKLOOP_WRITE_KEYS configured, ingestion is open (local use); the app logs that loudly at startup.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request
from pydantic import SecretStr

from tools.events.segment import PayloadError


def request_write_key(request: Request, body_key: str | None) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            # Unreadable credentials count as none: refused when keys are required, ignored when they are not.
            return body_key
        return decoded.split(":", 1)[0]
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return body_key


def check_write_key(configured: list[SecretStr], presented: str | None) -> None:
    if not configured:
        return
    if not presented:
        raise PayloadError(
            "unauthorized",
            "a write key is required: Basic auth '<writeKey>:' or 'writeKey' in the body",
            status=401,
        )
    if not any(hmac.compare_digest(presented, key.get_secret_value()) for key in configured):
        raise PayloadError("unauthorized", "the write key is not valid", status=401)

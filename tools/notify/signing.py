"""Standard Webhooks signatures (https://www.standardwebhooks.com): what receivers' libraries verify.

`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. The secret is base64, optionally
prefixed `whsec_` (the scheme's format), decoded exactly as the reference `standardwebhooks` library does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # nosec B105  # the secret's prefix, not a secret


def secret_bytes(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded + "==")  # tolerate unpadded base64, as the reference library does
    except binascii.Error:
        raise ValueError("the webhook secret must be base64 (optionally prefixed whsec_)") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def signature(secret: str, message_id: str, timestamp_seconds: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp_seconds}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, message_id: str, timestamp_seconds: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_seconds),
        "webhook-signature": signature(secret, message_id, timestamp_seconds, body),
    }

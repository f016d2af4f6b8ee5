"""The Segment wire format (and PostHog's batch format) → CanonicalEvent, one item at a time.

Each item is validated on its own so a batch with some bad items stores the good ones and reports the bad ones
by index. Limits follow Segment's HTTP API: 32 KB per item, 500 KB per request, 2,500 items per batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tools.events.model import EVENT_TYPES, MAX_MESSAGE_ID_CHARS, CanonicalEvent
from tools.events.normalize import (
    FieldError,
    correct_clock_skew,
    derive_message_id,
    parse_timestamp,
    snake_case_event_name,
)

MAX_ID_CHARS = 255
MAX_NAME_CHARS = 255
MAX_NESTING_DEPTH = 32
MAX_NUMBER_MAGNITUDE = 1e15


class PayloadError(ValueError):
    """The request as a whole is unusable (not JSON, wrong shape, too large); nothing of it is stored."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    message_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    events: list[CanonicalEvent]
    rejected: list[Rejection]
    write_key: str | None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(body: bytes) -> Any:
    """Strict JSON: NaN/Infinity, nesting beyond Python's limits and 4,300+ digit integers are all 400s."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("invalid_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("invalid_json", "request body is nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, integers beyond Python's digit limit
        raise PayloadError("invalid_json", f"request body is not valid JSON: {exc}") from None


def check_json_values(value: Any, field: str) -> None:
    """Refuse what a database cannot store faithfully: non-finite or absurd numbers (|x| > 1e15), NUL characters
    and lone surrogates in strings, and nesting deeper than 32 levels. Iterative, so no input can overflow
    the stack."""
    pending: list[tuple[Any, str, int]] = [(value, field, 0)]
    while pending:
        current, path, depth = pending.pop()
        if depth > MAX_NESTING_DEPTH:
            raise FieldError(path, f"is nested deeper than {MAX_NESTING_DEPTH} levels")
        if isinstance(current, bool) or current is None:
            continue
        if isinstance(current, int | float):
            if not math.isfinite(current) or abs(current) > MAX_NUMBER_MAGNITUDE:
                raise FieldError(path, f"number {current!r} is out of range (|x| ≤ 1e15)")
        elif isinstance(current, str):
            _check_text(current, path)
        elif isinstance(current, Mapping):
            for key, child in current.items():
                _check_text(str(key), path)
                pending.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(current, list):
            pending.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(current))


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise FieldError(path, "contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(path, "contains an unpaired UTF-16 surrogate") from None


def parse_segment_batch(
    payload: Any,
    *,
    received_at: datetime,
    max_items: int = 2500,
    max_item_bytes: int = 32 * 1024,
    correct_skew: bool = True,
) -> ParsedBatch:
    """`{"batch": [...], "sentAt", "context", "integrations", "writeKey"}` → events and per-item rejections."""
    if not isinstance(payload, Mapping):
        raise PayloadError("invalid_batch", "body must be a JSON object with a 'batch' list")
    items = payload.get("batch")
    if not isinstance(items, list):
        raise PayloadError("invalid_batch", "'batch' must be a list of events")
    if len(items) > max_items:
        raise PayloadError("batch_too_large", f"'batch' has {len(items)} events; the limit is {max_items}")
    try:
        sent_at = _optional_time(payload.get("sentAt"), "sentAt") if correct_skew else None
    except FieldError as error:
        raise PayloadError("invalid_batch", str(error)) from None
    shared_context = payload.get("context") if isinstance(payload.get("context"), Mapping) else {}
    _check_item_sizes(items, max_item_bytes)
    events: list[CanonicalEvent] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            events.append(
                parse_segment_item(
                    item,
                    received_at=received_at,
                    batch_sent_at=sent_at,
                    shared_context=shared_context,
                    correct_skew=correct_skew,
                )
            )
        except FieldError as error:
            message_id = item.get("messageId") if isinstance(item, Mapping) else None
            rejected.append(Rejection(index, message_id if isinstance(message_id, str) else None, str(error)))
    write_key = payload.get("writeKey")
    return ParsedBatch(events, rejected, write_key if isinstance(write_key, str) else None)


def _check_item_sizes(items: list[Any], max_item_bytes: int) -> None:
    for index, item in enumerate(items):
        text = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode("utf-8", "surrogatepass"))  # lone surrogates are refused per item, later
        if size > max_item_bytes:
            raise PayloadError(
                "item_too_large",
                f"batch[{index}] is {size:,} bytes; the limit per event is {max_item_bytes:,} bytes",
            )


def _optional_time(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_timestamp(value, field)


def _optional_id(item: Mapping[str, Any], field: str) -> str | None:
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    _check_text(text, field)
    if len(text) > MAX_ID_CHARS:
        raise FieldError(field, f"is {len(text)} characters; the limit is {MAX_ID_CHARS}")
    return text or None


def _object(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = item.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(field, f"must be an object, got {type(value).__name__}")
    return dict(value)


def parse_segment_item(
    item: Any,
    *,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    shared_context: Mapping[str, Any] | None = None,
    correct_skew: bool = True,
    default_type: str | None = None,
) -> CanonicalEvent:
    """One Segment call → CanonicalEvent, or FieldError naming the first bad field."""
    if not isinstance(item, Mapping):
        raise FieldError("item", f"must be an object, got {type(item).__name__}")
    for field in ("properties", "traits", "context"):
        check_json_values(item.get(field), field)
    call_type = item.get("type", default_type)
    if not isinstance(call_type, str) or call_type.lower() not in EVENT_TYPES:
        raise FieldError("type", f"{call_type!r} is not one of {', '.join(EVENT_TYPES)}")
    call_type = call_type.lower()
    user_id, anonymous_id = _optional_id(item, "userId"), _optional_id(item, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise FieldError("userId", "userId or anonymousId is required (both are missing or null)")
    message_id = item.get("messageId")
    if message_id is None or message_id == "":
        message_id = _derived_message_id(item, received_at)
    elif not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_CHARS:
        raise FieldError("messageId", f"must be a string of at most {MAX_MESSAGE_ID_CHARS} characters")
    else:
        _check_text(message_id, "messageId")
    name, properties = _name_and_properties(item, call_type)
    context = {**(shared_context or {}), **_object(item, "context")}
    timestamp = _event_time(item, received_at, batch_sent_at, correct_skew)
    return CanonicalEvent(
        message_id=message_id,
        type=call_type,
        name=name,
        timestamp=timestamp,
        received_at=received_at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        properties=properties,
        context=context,
    )


def _derived_message_id(item: Mapping[str, Any], received_at: datetime) -> str:
    """Same payload, same id — so a retried call dedupes. A call without its own timestamp is told apart by
    its receive time: two identical clicks a minute apart are two events, not a retry."""
    if item.get("timestamp") or item.get("originalTimestamp"):
        return derive_message_id(item)
    return derive_message_id({**item, "receivedAt": received_at.isoformat()})


def _name_and_properties(item: Mapping[str, Any], call_type: str) -> tuple[str, dict[str, Any]]:
    if call_type == "track":
        event = item.get("event")
        if not isinstance(event, str) or not event.strip():
            raise FieldError("event", "a track call needs a non-empty event name")
        if len(event) > MAX_NAME_CHARS:
            raise FieldError("event", f"is {len(event)} characters; the limit is {MAX_NAME_CHARS}")
        check_json_values(event, "event")
        name = snake_case_event_name(event)
        if not name:
            raise FieldError("event", f"{event!r} has no letters or digits")
        if len(name) > MAX_NAME_CHARS:
            raise FieldError(
                "event", f"is {len(name)} characters as snake_case; the limit is {MAX_NAME_CHARS}"
            )
        return name, _object(item, "properties")
    if call_type in ("page", "screen"):
        page_name = item.get("name")
        if page_name is not None and not isinstance(page_name, str):
            raise FieldError("name", f"must be a string, got {type(page_name).__name__}")
        check_json_values(page_name, "name")
        return (page_name or call_type)[:MAX_NAME_CHARS], _object(item, "properties")
    if call_type == "identify":
        return "identify", _object(item, "traits")
    if call_type == "group":
        group_id = _optional_id(item, "groupId")
        if group_id is None:
            raise FieldError("groupId", "a group call needs a groupId")
        return "group", {**_object(item, "traits"), "groupId": group_id}
    previous_id = _optional_id(item, "previousId")
    if previous_id is None:
        raise FieldError("previousId", "an alias call needs a previousId")
    return "alias", {"previousId": previous_id}


def _event_time(
    item: Mapping[str, Any], received_at: datetime, batch_sent_at: datetime | None, correct_skew: bool
) -> datetime:
    raw = item.get("timestamp") or item.get("originalTimestamp")
    if raw is None:
        return received_at
    timestamp = parse_timestamp(raw, "timestamp")
    if not correct_skew:
        return timestamp
    sent_at = _optional_time(item.get("sentAt"), "sentAt") or batch_sent_at
    try:
        return correct_clock_skew(timestamp, sent_at, received_at)
    except OverflowError:
        raise FieldError("timestamp", "is too far from sentAt to correct for clock skew") from None


def posthog_to_segment(payload: Any) -> dict[str, Any]:
    """PostHog's `/batch/` body → a Segment batch body, so both share one parser.

    `$identify` and `$set` events become identify calls (their `$set` traits); `$pageview`/`$screen` become
    page/screen calls; everything else is a track call. The PostHog `uuid` is the message id.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("batch"), list):
        raise PayloadError("invalid_batch", "body must be a JSON object with a 'batch' list")
    items: list[Any] = []
    for entry in payload["batch"]:
        items.append(_posthog_item(entry) if isinstance(entry, Mapping) else entry)
    return {"batch": items, "sentAt": payload.get("sent_at"), "writeKey": payload.get("api_key")}


def _posthog_item(entry: Mapping[str, Any]) -> dict[str, Any]:
    properties = dict(entry.get("properties") or {}) if isinstance(entry.get("properties"), Mapping) else {}
    distinct_id = entry.get("distinct_id", properties.pop("distinct_id", None))
    event = entry.get("event")
    base: dict[str, Any] = {
        "userId": distinct_id,
        "messageId": entry.get("uuid"),
        "timestamp": entry.get("timestamp"),
        "context": {
            "library": {"name": properties.get("$lib", "posthog"), "version": properties.get("$lib_version")}
        },
    }
    if event in ("$identify", "$set"):
        # posthog-python puts `$set` at the top level of a $set event and inside properties of $identify.
        traits = entry.get("$set") if isinstance(entry.get("$set"), Mapping) else properties.get("$set")
        return {**base, "type": "identify", "traits": dict(traits) if isinstance(traits, Mapping) else {}}
    if event in ("$pageview", "$screen"):
        kind = "page" if event == "$pageview" else "screen"
        page_name = properties.get("$current_url") or properties.get("$screen_name")
        return {**base, "type": kind, "name": page_name, "properties": properties}
    return {**base, "type": "track", "event": event, "properties": properties}

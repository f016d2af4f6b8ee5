"""Bad input at the ingestion doors (Segment's /v1/batch and single calls, PostHog's /batch/), per
docs/ingestion.md: a body that is unusable as a whole is a 400 (413 over the size limit) and stores nothing; a
batch whose every item is invalid answers 200 with each item in `rejected`, its reason starting with the field,
and stores nothing either; a single call that is invalid is a 400 `invalid_event` naming the field.

Keys are on: each request carries an ingest key.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.bad_input_support import (
    DEEP_LEVELS,
    HUGE_DIGITS,
    Door,
    as_json,
    assert_refused,
    assert_unchanged,
    deeply_nested,
    door,
    door_database,
    gzip_bomb,
    nested_value,
)
from tests.reliability.store_snapshot import store_snapshot

__all__ = ["door", "door_database"]

MAX_BATCH_BYTES = 500 * 1024
MAX_ITEM_BYTES = 32 * 1024
MAX_BATCH_ITEMS = 2500


def track(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Report Generated",
        "userId": "bad-user",
        "messageId": "bad-message",
        "timestamp": "2026-05-03T10:00:00Z",
        "properties": {"rows": 1},
        **fields,
    }


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in track().items() if k != name}


# ---- the whole body ---------------------------------------------------------------------------------------------

BODIES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "malformed": (b'{"batch": [', {}, 400, "body"),
    "not-utf8": (b'{"batch": ["\xff"]}', {}, 400, "body"),
    f"nested-{DEEP_LEVELS}": (deeply_nested(), {}, 400, "body"),
    "nan": (b'{"batch": [], "x": NaN}', {}, 400, "NaN"),
    "5000-digit-int": (b'{"batch": [], "x": ' + HUGE_DIGITS.encode() + b"}", {}, 400, "body"),
    "not-an-object": (b"[1, 2]", {}, 400, "batch"),
    "batch-not-a-list": (as_json({"batch": {"0": track()}}), {}, 400, "batch"),
    "batch-missing": (as_json({"events": [track()]}), {}, 400, "batch"),
    "sent-at-malformed": (as_json({"batch": [track()], "sentAt": "yesterday"}), {}, 400, "sentAt"),
    "sent-at-year-1": (as_json({"batch": [track()], "sentAt": "0001-01-01T00:00:00Z"}), {}, 400, "sentAt"),
    "2501-items": (
        as_json({"batch": [track(messageId=f"m{n}") for n in range(MAX_BATCH_ITEMS + 1)]}),
        {},
        400,
        "batch",
    ),
    "item-over-32kb": (
        as_json({"batch": [track(properties={"blob": "x" * MAX_ITEM_BYTES})]}),
        {},
        400,
        "batch[0]",
    ),
    "body-over-500kb": (
        as_json({"batch": [track(properties={"blob": "x" * MAX_BATCH_BYTES})]}),
        {},
        413,
        "body",
    ),
    "gzip-bomb": (gzip_bomb(MAX_BATCH_BYTES * 20), {"Content-Encoding": "gzip"}, 413, "body"),
    "broken-gzip": (b"\x1f\x8b\x08\x00\x00\x00", {"Content-Encoding": "gzip"}, 400, "gzip"),
    "unknown-encoding": (
        as_json({"batch": [track()]}),
        {"Content-Encoding": "zstd"},
        400,
        "Content-Encoding",
    ),
}


@pytest.mark.parametrize("path", ["/v1/batch", "/batch/"])
@pytest.mark.parametrize("name", list(BODIES))
def test_unusable_batch_bodies_are_refused_whole_and_store_nothing(door: Door, path: str, name: str) -> None:
    body, headers, status, field = BODIES[name]
    if path == "/batch/":  # the same bodies in PostHog's names
        for segment, posthog in (
            (b'"userId"', b'"distinct_id"'),
            (b'"messageId"', b'"uuid"'),
            (b'"sentAt"', b'"sent_at"'),
        ):
            body = body.replace(segment, posthog)
    before = store_snapshot(door.database)
    answer = door.client.post(
        path, content=body, headers={"Content-Type": "application/json", **door.key("ingest"), **headers}
    )
    assert_refused(answer, status, field)
    assert answer.json()["code"] in {
        "invalid_json",
        "invalid_batch",
        "batch_too_large",
        "item_too_large",
        "payload_too_large",
        "invalid_gzip",
        "unsupported_encoding",
    }
    assert_unchanged(door.database, before)


# ---- items: each rejected with its field, nothing stored --------------------------------------------------------

ITEMS: dict[str, tuple[Any, str]] = {
    "not-an-object": ("track", "item"),
    "ids-missing": (without("userId"), "userId"),
    "ids-null": (track(userId=None, anonymousId=None), "userId"),
    "user-id-object": (track(userId={"id": 1}), "userId"),
    "user-id-256-chars": (track(userId="u" * 256), "userId"),
    "message-id-101-chars": (track(messageId="m" * 101), "messageId"),
    "message-id-number-list": (track(messageId=[1]), "messageId"),
    "type-unknown": (track(type="purchase"), "type"),
    "event-missing": (without("event"), "event"),
    "event-256-chars": (track(event="e" * 256), "event"),
    "event-emoji-only": (track(event="🎉🎉"), "event"),
    "event-nul": (track(event="Report\x00Generated"), "event"),
    "timestamp-naive": (track(timestamp="2026-05-03T10:00:00"), "timestamp"),
    "timestamp-year-1": (track(timestamp="0001-01-01T00:00:00Z"), "timestamp"),
    "timestamp-year-9999": (track(timestamp="9999-12-31T23:59:59-14:00"), "timestamp"),
    "timestamp-feb-30": (track(timestamp="2026-02-30T10:00:00Z"), "timestamp"),
    "timestamp-number": (track(timestamp=1714730400), "timestamp"),
    "properties-list": (track(properties=[1, 2]), "properties"),
    "properties-nul": (track(properties={"note": "a\x00b"}), "properties.note"),
    "properties-lone-surrogate": (track(properties={"note": "\ud83d"}), "properties.note"),
    "properties-nested-40": (track(properties=nested_value(40)), "properties"),
    "properties-1e300": (track(properties={"revenue": 1e300}), "properties.revenue"),
    "properties-10e20-int": (track(properties={"rows": 10**20}), "properties.rows"),
    "context-not-object": (track(context="web"), "context"),
    "group-without-group-id": ({"type": "group", "userId": "bad-user", "messageId": "g1"}, "groupId"),
    "alias-without-previous-id": ({"type": "alias", "userId": "bad-user", "messageId": "a1"}, "previousId"),
}


@pytest.mark.parametrize("name", list(ITEMS))
def test_invalid_batch_items_are_rejected_naming_the_field_and_store_nothing(door: Door, name: str) -> None:
    item, field = ITEMS[name]
    before = store_snapshot(door.database)
    answer = door.client.post("/v1/batch", content=as_json({"batch": [item]}), headers=door.key("ingest"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0 and len(body["rejected"]) == 1, body
    reason = body["rejected"][0]["reason"]
    assert reason.startswith(field), f"the reason does not start with {field!r}: {reason}"
    assert_unchanged(door.database, before)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in ITEMS
        if n not in ("type-unknown", "group-without-group-id", "alias-without-previous-id", "not-an-object")
    ],
)
def test_an_invalid_single_call_is_400_naming_the_field_and_stores_nothing(door: Door, name: str) -> None:
    item, field = ITEMS[name]
    before = store_snapshot(door.database)
    answer = door.client.post("/v1/track", content=as_json(item), headers=door.key("ingest"))
    assert_refused(answer, 400, field)
    assert answer.json()["code"] == "invalid_event"
    assert_unchanged(door.database, before)


POSTHOG_ITEMS: dict[str, tuple[Any, str]] = {
    "distinct-id-missing": (
        {"event": "clicked", "uuid": "p1", "timestamp": "2026-05-03T10:00:00Z"},
        "userId",
    ),
    "uuid-101-chars": ({"event": "clicked", "distinct_id": "u", "uuid": "p" * 101}, "messageId"),
    "timestamp-naive": (
        {"event": "clicked", "distinct_id": "u", "timestamp": "2026-05-03 10:00"},
        "timestamp",
    ),
    "event-wrong-type": ({"event": ["clicked"], "distinct_id": "u", "uuid": "p2"}, "event"),
    "properties-nested-40": (
        {"event": "x", "distinct_id": "u", "properties": nested_value(40)},
        "properties",
    ),
}


@pytest.mark.parametrize("name", list(POSTHOG_ITEMS))
def test_invalid_posthog_items_are_rejected_naming_the_field(door: Door, name: str) -> None:
    item, field = POSTHOG_ITEMS[name]
    before = store_snapshot(door.database)
    answer = door.client.post("/batch/", json={"batch": [item]}, headers=door.key("ingest"))
    assert answer.status_code == 200, answer.text
    rejected = answer.json()["rejected"]
    assert answer.json()["accepted"] == 0 and len(rejected) == 1, answer.text
    assert field in rejected[0]["reason"], rejected
    assert_unchanged(door.database, before)

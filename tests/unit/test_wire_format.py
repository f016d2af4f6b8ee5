"""Segment/PostHog wire-format parsing and the normalisations every door shares (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tools.events.normalize import (
    FieldError,
    correct_clock_skew,
    derive_message_id,
    parse_timestamp,
    snake_case_event_name,
)
from tools.events.segment import PayloadError, parse_segment_batch, parse_segment_item, posthog_to_segment

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("Report Generated", "report_generated"),
        ("report_generated", "report_generated"),
        ("reportGenerated", "report_generated"),
        ("Sponsor  Renewed!", "sponsor_renewed"),
        ("$pageview", "pageview"),
        ("Onboarding-Step Completed", "onboarding_step_completed"),
    ],
)
def test_event_names_become_snake_case(sent: str, expected: str) -> None:
    assert snake_case_event_name(sent) == expected


def test_timestamps_are_normalised_to_utc() -> None:
    assert parse_timestamp("2026-01-01T10:00:00+02:00", "timestamp") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert parse_timestamp("2026-01-01T10:00:00Z", "timestamp") == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2026-01-01T10:00:00", "yesterday", 1700000000, None])
def test_naive_or_malformed_timestamps_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(FieldError) as caught:
        parse_timestamp(value, "timestamp")
    assert caught.value.field == "timestamp"
    if value == "2026-01-01T10:00:00":
        assert "no UTC offset" in str(caught.value)


def test_clock_skew_correction_uses_the_client_clock_difference() -> None:
    # The client clock is 1 hour fast: it says sentAt 13:00 when the server receives at 12:00.
    event_time = datetime(2026, 3, 1, 12, 55, tzinfo=UTC)
    sent_at = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    assert correct_clock_skew(event_time, sent_at, NOW) == NOW - timedelta(minutes=5)
    assert correct_clock_skew(event_time, None, NOW) == event_time


def test_missing_message_id_is_derived_deterministically() -> None:
    item = {"type": "track", "event": "x", "userId": "u1", "timestamp": "2026-01-01T00:00:00Z"}
    first = parse_segment_item(item, received_at=NOW)
    again = parse_segment_item(dict(item), received_at=NOW + timedelta(hours=1))
    other = parse_segment_item({**item, "userId": "u2"}, received_at=NOW)
    assert first.message_id == again.message_id == derive_message_id(item)
    assert first.message_id != other.message_id
    assert len(first.message_id) <= 100


def test_events_without_timestamp_or_message_id_are_told_apart_by_receive_time() -> None:
    item = {"type": "track", "event": "clicked", "userId": "u1"}
    first = parse_segment_item(item, received_at=NOW)
    retry = parse_segment_item(item, received_at=NOW)
    later = parse_segment_item(item, received_at=NOW + timedelta(minutes=1))
    assert first.message_id == retry.message_id != later.message_id
    assert first.timestamp == NOW


def test_batch_merges_top_level_context_and_applies_skew() -> None:
    payload = {
        "batch": [
            {
                "type": "track",
                "event": "Report Sent",
                "userId": None,
                "anonymousId": "anon-1",
                "messageId": "m-1",
                "timestamp": "2026-03-01T12:55:00+00:00",
                "context": {"library": {"name": "analytics-python"}},
            }
        ],
        "sentAt": "2026-03-01T13:00:00+00:00",
        "context": {"ip": "127.0.0.1", "library": {"name": "overridden"}},
        "writeKey": "wk",
    }
    parsed = parse_segment_batch(payload, received_at=NOW)
    (event,) = parsed.events
    assert event.name == "report_sent"
    assert event.user_id is None and event.anonymous_id == "anon-1"
    assert event.context == {"ip": "127.0.0.1", "library": {"name": "analytics-python"}}
    assert event.timestamp == NOW - timedelta(minutes=5)
    assert parsed.write_key == "wk"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"type": "track", "event": "x"}, "userId"),
        ({"type": "track", "userId": None, "anonymousId": None, "event": "x"}, "userId"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "userId": "u", "event": "   "}, "event"),
        ({"type": "shout", "userId": "u"}, "type"),
        ({"type": "track", "userId": "u", "event": "x", "properties": [1]}, "properties"),
        ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"type": "track", "userId": "u", "event": "x", "messageId": "m" * 101}, "messageId"),
        ({"type": "track", "userId": {"id": 1}, "event": "x"}, "userId"),
        ({"type": "identify", "userId": "u", "traits": "persona=agency"}, "traits"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ("not an object", "item"),
    ],
)
def test_invalid_items_name_the_field(item: object, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_segment_item(item, received_at=NOW)
    assert caught.value.field == field


def test_a_batch_keeps_valid_items_and_reports_invalid_ones_by_index() -> None:
    payload = {
        "batch": [
            {"type": "track", "event": "ok", "userId": "u1", "messageId": "a"},
            {"type": "track", "userId": "u1", "messageId": "b"},
            {"type": "identify", "userId": "u2", "traits": {"persona": "agency"}, "messageId": "c"},
        ]
    }
    parsed = parse_segment_batch(payload, received_at=NOW)
    assert [e.message_id for e in parsed.events] == ["a", "c"]
    assert [(r.index, r.message_id) for r in parsed.rejected] == [(1, "b")]
    assert "event" in parsed.rejected[0].reason


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([], "invalid_batch"),
        ({"batch": "nope"}, "invalid_batch"),
        ({"batch": [{"type": "track"}] * 3}, "batch_too_large"),
        (
            {"batch": [{"type": "track", "userId": "u", "event": "x", "properties": {"blob": "x" * 400}}]},
            "item_too_large",
        ),
    ],
)
def test_unusable_batches_raise_payload_errors(payload: object, code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_segment_batch(payload, received_at=NOW, max_items=2, max_item_bytes=300)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_posthog_batches_translate_to_segment_calls() -> None:
    payload = {
        "api_key": "phc_test",
        "sent_at": "2026-03-01T12:00:00+00:00",
        "batch": [
            {
                "event": "$identify",
                "distinct_id": "u1",
                "properties": {"$set": {"persona": "agency"}},
                "uuid": "p1",
                "timestamp": "2026-03-01T11:00:00+00:00",
            },
            {
                "event": "Report Generated",
                "distinct_id": "u1",
                "properties": {"report_id": "r1", "$lib": "posthog-python"},
                "uuid": "p2",
                "timestamp": "2026-03-01T11:01:00+00:00",
            },
        ],
    }
    parsed = parse_segment_batch(posthog_to_segment(payload), received_at=NOW)
    identify, track = parsed.events
    assert (identify.type, identify.traits, identify.message_id) == ("identify", {"persona": "agency"}, "p1")
    assert (track.type, track.name, track.properties["report_id"]) == ("track", "report_generated", "r1")
    assert parsed.write_key == "phc_test"

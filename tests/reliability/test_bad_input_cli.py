"""Bad input at the command line: `feedbackloop events import` and `feedbackloop stats analyze`.

The import's contract (feedbackloop/cli/importing.py, docs/ingestion.md): a file that cannot be read as events
exits 2 and stores nothing; a readable file with invalid events exits 1, stores the valid ones and lists each
rejected one with its position and field — here every event is invalid, so nothing is stored; `--strict` exits 2
and stores nothing even when valid events are in the file. `stats analyze` exits 2 naming the field; it reads no
database (docs/statistics.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from feedbackloop.cli import app
from tests.reliability.bad_input_support import (
    DEEP_LEVELS,
    HUGE_DIGITS,
    UNICODE_ID,
    Door,
    assert_unchanged,
    deeply_nested,
    door,
    door_database,
    nested_value,
)
from tests.reliability.store_snapshot import store_snapshot

__all__ = ["door", "door_database"]

runner = CliRunner()


def event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Report Generated",
        "userId": "cli-bad",
        "messageId": "cli-bad-1",
        "timestamp": "2026-05-03T10:00:00Z",
        **fields,
    }


def lines(*items: Any) -> bytes:
    return "\n".join(json.dumps(item) for item in items).encode() + b"\n"


UNREADABLE: dict[str, tuple[bytes, str]] = {
    "truncated-document": (b'{\n  "batch": [\n', "not JSON lines and not a JSON document"),
    "not-utf8": (b'{"batch": ["\xff\xfe"]}\n', "utf-8"),
    f"nested-{DEEP_LEVELS}": (deeply_nested() + b"\n", "nested too deeply"),
    "document-not-a-batch": (b'{\n "hello": 1\n}', "must be a Segment batch"),
    "sent-at-year-1": (b'{\n "batch": [],\n "sentAt": "0001-01-01T00:00:00Z"\n}', "sentAt"),
    "document-nan": (b'{\n "batch": [],\n "x": NaN\n}', "NaN"),
    "document-5000-digits": (b"[\n" + HUGE_DIGITS.encode() + b"\n]", "digits"),
}


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_an_unreadable_import_file_exits_2_and_stores_nothing(door: Door, tmp_path: Path, name: str) -> None:
    content, fragment = UNREADABLE[name]
    path = tmp_path / "events.json"
    path.write_bytes(content)
    before = store_snapshot(door.database)
    result = runner.invoke(app, ["events", "import", str(path), "--database-url", door.database.url])
    assert result.exit_code == 2, result.output
    assert fragment in result.output, result.output
    assert_unchanged(door.database, before)


INVALID_EVENTS: dict[str, tuple[Any, str]] = {
    "line-not-json": ("{not json", "line 2: line: not valid JSON"),
    "line-nested": (nested_value(40), "properties"),
    "ids-missing": ({"type": "track", "event": "x", "messageId": "m1"}, "userId"),
    "user-id-256": (event(userId="u" * 256), "userId"),
    "message-id-wrong-type": (event(messageId={"id": 1}), "messageId"),
    "timestamp-naive": (event(timestamp="2026-05-03T10:00:00"), "timestamp"),
    "timestamp-year-9999": (event(timestamp="9999-12-31T23:59:59-14:00"), "timestamp"),
    "received-at-feb-30": (event(receivedAt="2026-02-30T00:00:00Z"), "receivedAt"),
    "event-unicode-only": (event(event="\u200b\u202e🎉"), "event"),
    "properties-nul": (event(properties={"note": "\x00"}), "properties.note"),
    "properties-1e300": (event(properties={"value": 1e300}), "properties.value"),
    "line-nan": ('{"type": "track", "event": "x", "userId": "u", "properties": {"v": NaN}}', "NaN"),
}


def _line(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode() + b"\n"
    if "type" not in item:  # a bare nested value: put it where events carry nesting
        item = event(properties=item)
    return lines(item)


@pytest.mark.parametrize("name", list(INVALID_EVENTS))
def test_invalid_events_exit_1_name_their_field_and_store_nothing(
    door: Door, tmp_path: Path, name: str
) -> None:
    item, field = INVALID_EVENTS[name]
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        lines(event(messageId="cli-first-line-padding", userId=UNICODE_ID, event="\x00")) + _line(item)
    )  # a first line that is JSON (so: JSON lines), itself invalid: event NUL
    before = store_snapshot(door.database)
    result = runner.invoke(app, ["events", "import", str(path), "--database-url", door.database.url])
    assert result.exit_code == 1, result.output
    assert field in result.output and "line 2" in result.output, result.output
    assert_unchanged(door.database, before)


def test_strict_import_with_valid_and_invalid_events_exits_2_and_stores_nothing(
    door: Door, tmp_path: Path
) -> None:
    path = tmp_path / "strict.jsonl"
    items = [event(messageId=f"cli-valid-{n}") for n in range(5)] + [event(timestamp="0001-01-01T00:00:00Z")]
    path.write_bytes(lines(*items))
    before = store_snapshot(door.database)
    result = runner.invoke(
        app, ["events", "import", str(path), "--strict", "--database-url", door.database.url]
    )
    assert result.exit_code == 2, result.output
    assert "nothing was stored" in result.output and "timestamp" in result.output
    assert_unchanged(door.database, before)


# ---- stats analyze --------------------------------------------------------------------------------------------

VALID_STATS: dict[str, Any] = {
    "metric": {"name": "conversion", "kind": "binomial"},
    "variants": [{"name": "control", "n": 1000, "sum": 100}, {"name": "treatment", "n": 1000, "sum": 120}],
}


def stats_with(**changes: Any) -> bytes:
    document = json.loads(json.dumps(VALID_STATS))
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key.isdigit():
            document[section][int(key)] = value
        elif key:
            document[section][key] = value
        else:
            document[section] = value
    return json.dumps(document).encode()


STATS_CASES: dict[str, tuple[bytes, str]] = {
    "malformed": (b'{"metric": ', "not valid JSON"),
    "not-utf8": (b'{"metric": "\xff"}', "not valid JSON"),
    f"nested-{DEEP_LEVELS}": (deeply_nested(), "nested too deeply"),
    "nan": (stats_with().replace(b"1000", b"NaN", 1), "NaN"),
    "infinity": (stats_with().replace(b"1000", b"Infinity", 1), "Infinity"),
    "5000-digits": (stats_with().replace(b"1000", HUGE_DIGITS.encode(), 1), "digits"),
    "not-an-object": (b"[]", "document"),
    "metric-missing": (json.dumps({"variants": VALID_STATS["variants"]}).encode(), "metric"),
    "kind-unknown": (stats_with(metric__kind="median"), "metric.kind"),
    "n-negative": (stats_with(variants__0={"name": "control", "n": -1, "sum": 0}), "variants[0].n"),
    "n-wrong-type": (stats_with(variants__0={"name": "control", "n": "many", "sum": 0}), "variants[0].n"),
    "sum-1e308": (stats_with(variants__1={"name": "treatment", "n": 10, "sum": 1e308}), "variants[1]"),
    "one-variant": (stats_with(variants=[VALID_STATS["variants"][0]]), "variants"),
    "name-empty": (stats_with(variants__1={"name": "", "n": 10, "sum": 1}), "variants[1].name"),
    "alpha-1": (stats_with(analysis={"alpha": 1}), "analysis.alpha"),
    "unknown-field": (stats_with(extra=1), "extra"),
}


@pytest.mark.parametrize("name", list(STATS_CASES))
def test_stats_analyze_exits_2_naming_the_field(tmp_path: Path, name: str) -> None:
    content, field = STATS_CASES[name]
    path = tmp_path / "stats.json"
    path.write_bytes(content)
    result = runner.invoke(app, ["stats", "analyze", str(path)])
    assert result.exit_code == 2, result.output
    assert field in result.output, result.output
    assert "Traceback" not in result.output

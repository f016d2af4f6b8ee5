"""The command line on SQLite and PostgreSQL: events import (files, stdin, strict), stats, db upgrade, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from feedbackloop.cli import app
from store.database import Database
from store.migrate import head_revision
from store.models import EventRow
from tests.helpers import store_snapshot

runner = CliRunner()


def call(message_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Campaign Ended",
        "userId": "cli-user",
        "messageId": message_id,
        "timestamp": "2026-02-01T10:00:00Z",
        "properties": {"campaign_id": "c1"},
        **extra,
    }


def stored(database: Database) -> list[str]:
    with database.read() as connection:
        return list(connection.execute(select(EventRow.message_id).order_by(EventRow.message_id)).scalars())


def test_import_json_lines_then_replay_is_all_duplicates(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(call(f"l{i}")) for i in range(30)) + "\n\n", encoding="utf-8")
    first = runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    assert first.exit_code == 0, first.output
    assert "30" in first.output
    second = runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    assert second.exit_code == 0
    assert len(stored(database)) == 30
    assert "duplicates" in second.output


def test_import_segment_batch_document_and_stdin(database: Database, tmp_path: Path) -> None:
    document = {"batch": [call("b1"), call("b2")], "sentAt": "2026-02-01T10:00:05Z"}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    assert runner.invoke(app, ["events", "import", str(path), "--database-url", database.url]).exit_code == 0
    piped = runner.invoke(
        app, ["events", "import", "-", "--database-url", database.url], input=json.dumps([call("s1")])
    )
    assert piped.exit_code == 0, piped.output
    assert stored(database) == ["b1", "b2", "s1"]


def test_exported_receivedAt_drives_clock_skew_correction(database: Database, tmp_path: Path) -> None:
    # A Segment export: the client clock ran 10 minutes fast (sentAt − receivedAt = 10 min).
    item = call(
        "skew",
        sentAt="2026-02-01T10:10:00Z",
        receivedAt="2026-02-01T10:00:00Z",
        timestamp="2026-02-01T10:09:00Z",
    )
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(item), encoding="utf-8")
    assert runner.invoke(app, ["events", "import", str(path), "--database-url", database.url]).exit_code == 0
    with database.read() as connection:
        timestamp = connection.execute(select(EventRow.timestamp)).scalar_one()
    assert timestamp.isoformat() == "2026-02-01T09:59:00+00:00"


def test_invalid_lines_are_reported_and_valid_ones_stored(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(call("ok")),
                "{not json",
                json.dumps(call("naive", timestamp="2026-01-01T00:00:00")),
                json.dumps({"type": "track", "userId": "u"}),
            ]
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    assert result.exit_code == 1
    assert "line 2" in result.output and "not valid JSON" in result.output
    assert "line 3" in result.output and "timestamp" in result.output
    assert "line 4" in result.output and "event" in result.output
    assert stored(database) == ["ok"]


def test_strict_import_stores_nothing_when_any_item_is_invalid(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "strict.jsonl"
    path.write_text(json.dumps(call("good")) + "\n" + json.dumps({"type": "track"}) + "\n", encoding="utf-8")
    before = store_snapshot(database)
    result = runner.invoke(app, ["events", "import", str(path), "--strict", "--database-url", database.url])
    assert result.exit_code == 2
    assert "nothing was stored" in result.output
    assert store_snapshot(database) == before


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{\n  "batch": [\n', "not JSON lines and not a JSON document"),
        ('{\n "hello": 1\n}', "must be a Segment batch"),
        ('{\n "batch": [],\n "sentAt": "later"\n}', "sentAt"),
    ],
)
def test_unusable_files_exit_2_and_store_nothing(
    database: Database, tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    before = store_snapshot(database)
    result = runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert store_snapshot(database) == before


def test_missing_file_and_binary_file_exit_2(database: Database, tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["events", "import", str(tmp_path / "nope.jsonl"), "--database-url", database.url]
    )
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = runner.invoke(app, ["events", "import", str(binary), "--database-url", database.url])
    assert result.exit_code == 2


def test_stats_and_db_upgrade(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(call("one")), encoding="utf-8")
    runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    stats = runner.invoke(app, ["events", "stats", "--database-url", database.url])
    assert (
        stats.exit_code == 0 and "campaign_ended" in stats.output and "1 events from 1 users" in stats.output
    )
    upgrade = runner.invoke(app, ["db", "upgrade", "--database-url", database.url])
    assert upgrade.exit_code == 0 and f"revision {head_revision()}" in upgrade.output


def test_bad_database_url_exits_2() -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", "mysql://root@localhost/x"])
    assert result.exit_code == 2
    assert "not supported" in result.output


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_WRITE_KEYS", "super-secret-key")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert "super-secret-key" not in result.output and "1 key(s)" in result.output


def test_invalid_configuration_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_GROSS_MARGIN", "two")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config", "show"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "gross_margin" in result.output


def test_lines_python_cannot_parse_and_bad_batch_lines_are_rejections(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.jsonl"
    lines = [
        json.dumps(call("ok-1")),
        '{"a": ' * 3000 + "1" + "}" * 3000,  # deeper than Python's recursion limit
        '{"n": ' + "9" * 5000 + "}",  # beyond Python's integer digit limit
        json.dumps({"batch": [call("in-bad-batch")], "sentAt": "garbage"}),
        json.dumps(call("ok-2")),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["events", "import", str(path), "--database-url", database.url])
    assert result.exit_code == 1, result.output
    assert "line 2" in result.output and "nested too deeply" in result.output
    assert "line 3" in result.output and "line 4" in result.output and "sentAt" in result.output
    assert stored(database) == ["ok-1", "ok-2"]

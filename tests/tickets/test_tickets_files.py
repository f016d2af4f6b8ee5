"""The file sinks: the JSON-lines backlog (also filed from two processes at once) and the markdown directory;
and the marker and fallback body every text sink shares."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.tickets.support import FILED_AT, backlog_item, file_in_process, fingerprint, numbered_item
from tools.tickets.base import (
    TicketSinkError,
    fingerprint_marker,
    item_markdown,
    marker_fingerprints,
    ticket_body,
)
from tools.tickets.jsonl import JsonlTicketSink
from tools.tickets.markdown import MarkdownTicketSink, front_matter_fingerprint, slug


def _clock() -> datetime:
    return FILED_AT


# ---- the marker and the body ----


def test_marker_round_trips_and_is_an_html_comment() -> None:
    item = backlog_item()
    marker = fingerprint_marker(item.fingerprint)
    assert marker == f"<!-- feedbackloop:fingerprint={item.fingerprint} -->"
    assert marker_fingerprints(f"text\n{marker}\nmore") == {item.fingerprint}
    assert marker_fingerprints(None) == set()
    with pytest.raises(ValueError, match="cannot be carried"):
        fingerprint_marker("abc --> <script>")


def test_body_ends_with_the_marker_and_drops_markers_smuggled_into_the_item() -> None:
    smuggled = fingerprint_marker(fingerprint("someone else's item"))
    item = backlog_item(body="## Problem\n\nSlow.\n" + smuggled + "\n")
    body = ticket_body(item)
    assert marker_fingerprints(body) == {item.fingerprint}
    assert body.rstrip().endswith(fingerprint_marker(item.fingerprint))


def test_an_unrendered_item_gets_a_body_from_its_fields() -> None:
    text = item_markdown(backlog_item(body=""))
    assert text.startswith("## Problem\n\nSponsor reports per active podcaster fell 33%")
    assert "## Proposal\n\nBring back the one-click report" in text
    assert "- [ ] Reports per user back above 4.5 for two weeks\n- [ ] No rise in report errors" in text
    assert "Signals: S1, S3" in text
    assert "RICE score 96.25 (reach 385, impact 2, confidence 0.8, effort 6.4 person-weeks)" in text


# ---- JSON lines ----


def test_jsonl_appends_one_line_per_new_item_and_dedupes(tmp_path: Path) -> None:
    path = tmp_path / "data" / "backlog.jsonl"  # the directory is created on first use
    sink = JsonlTicketSink(path, clock=_clock)
    first = sink.file(backlog_item())
    second = sink.file(numbered_item(2))
    again = sink.file(backlog_item(title="Reworded by a later retro"))

    assert (first.sink, first.key, first.url, first.created) == ("jsonl", "1", None, True)
    assert (second.key, second.created) == ("2", True)
    assert (again.key, again.created) == ("1", False)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2
    assert records[0] == {**backlog_item().as_dict(), "filed_at": "2026-03-09T09:30:00+00:00"}


def test_jsonl_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "backlog.jsonl"
    path.write_text(
        json.dumps(numbered_item(1).as_dict()) + "\n" + '{"fingerprint": "trunc', encoding="utf-8"
    )
    ref = JsonlTicketSink(path).file(backlog_item())
    assert (ref.key, ref.created) == ("3", True)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[2])["fingerprint"] == backlog_item().fingerprint
    assert JsonlTicketSink(path).file(numbered_item(1)).key == "1"


def test_jsonl_that_cannot_write_is_a_final_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(TicketSinkError) as caught:
        JsonlTicketSink(blocker / "backlog.jsonl").file(backlog_item())
    assert caught.value.transient is False
    assert str(caught.value).startswith(f"jsonl: cannot append to {blocker}/backlog.jsonl")


def test_two_processes_filing_the_same_items_write_each_once(tmp_path: Path) -> None:
    path = tmp_path / "backlog.jsonl"
    context = multiprocessing.get_context("spawn")  # no inherited locks or threads from the test process
    start = context.Barrier(2)
    results = context.Queue()
    indices = list(range(1, 41))
    workers = [
        context.Process(target=file_in_process, args=(str(path), start, order, results))
        for order in (indices, indices[::-1])
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=60) for _ in range(2 * len(indices))]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    lines = path.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(f"B{index}" for index in indices)
    assert sum(created for _, _, created in answers) == len(indices)
    keys = {index: key for index, key, _ in answers}
    for index, key, _ in answers:  # both processes were told the same line
        assert key == keys[index]
        assert json.loads(lines[int(key) - 1])["id"] == f"B{index}"


# ---- markdown ----


def test_markdown_writes_one_file_with_front_matter_and_dedupes(tmp_path: Path) -> None:
    sink = MarkdownTicketSink(tmp_path / "backlog", clock=_clock)
    item = backlog_item()
    ref = sink.file(item)

    expected_name = f"{item.fingerprint[:12]}-sponsor-reports-bring-back-the-one-click-report.md"
    assert (ref.sink, ref.key, ref.created) == ("markdown", expected_name, True)
    path = tmp_path / "backlog" / expected_name
    assert ref.url == path.resolve().as_uri()
    text = path.read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["fingerprint"] == item.fingerprint
    assert header["labels"] == ["feedbackloop", "renewal", "podcast_network"]
    assert header["priority"] == item.priority.as_dict()
    assert header["filed_at"] == "2026-03-09T09:30:00+00:00"
    assert "# Sponsor reports: bring back the one-click report\n\n## Problem" in text
    assert text.rstrip().endswith(fingerprint_marker(item.fingerprint))

    again = sink.file(backlog_item(title="A different title this time"))
    assert (again.key, again.created) == (expected_name, False)
    assert sorted(p.name for p in (tmp_path / "backlog").glob("*.md")) == [expected_name]
    assert not list((tmp_path / "backlog").glob(".tmp-*"))  # the temporary file was renamed, not left behind


def test_markdown_never_overwrites_another_fingerprint_with_the_same_prefix(tmp_path: Path) -> None:
    sink = MarkdownTicketSink(tmp_path)
    first = backlog_item(fingerprint="0123456789ab" + "c" * 52)
    second = backlog_item(fingerprint="0123456789ab" + "d" * 52)
    refs = [sink.file(first), sink.file(second), sink.file(second)]
    assert [ref.created for ref in refs] == [True, True, False]
    assert refs[1].key.endswith("-2.md") and refs[2].key == refs[1].key
    assert front_matter_fingerprint(tmp_path / refs[0].key) == first.fingerprint
    assert front_matter_fingerprint(tmp_path / refs[1].key) == second.fingerprint


def test_markdown_slugs_and_unreadable_files() -> None:
    assert slug("Sponsor reports: drop in renewals!") == "sponsor-reports-drop-in-renewals"
    assert slug("¿¡!!") == "item"
    assert len(slug("word " * 40)) <= 60


def test_markdown_that_cannot_write_is_a_final_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(TicketSinkError) as caught:
        MarkdownTicketSink(blocker / "backlog").file(backlog_item())
    assert caught.value.transient is False
    assert str(caught.value).startswith(f"markdown: cannot write to {blocker}/backlog")

"""`feedbackloop events import`: JSON lines or Segment batch JSON → the same ingest path as the HTTP API.

Formats, detected from the content: JSON lines (one Segment call per line, or one `{"batch": [...]}` per line),
a Segment batch document, or a JSON array of calls. Client clock skew is corrected only where an item carries
its own `receivedAt` (a Segment export): an import happens long after the events were sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from tools.events.ingest import EventIngestor, IngestSummary
from tools.events.model import CanonicalEvent
from tools.events.normalize import FieldError, parse_timestamp
from tools.events.segment import Rejection, parse_segment_item

IMPORT_CHUNK_EVENTS = 5_000


class ImportFileError(ValueError):
    """The file cannot be read as events at all; nothing was stored."""


@dataclass(frozen=True, slots=True)
class SourceItem:
    position: str  # "line 12" or "batch[3]" — how the user finds it in the file
    item: Any
    batch_sent_at: datetime | None


def iter_source_items(stream: IO[str]) -> Iterator[SourceItem]:
    first_line = ""
    for line in stream:
        if line.strip():
            first_line = line
            break
    if not first_line:
        return
    try:
        json.loads(first_line, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError, ValueError):
        yield from _whole_document(first_line + stream.read())
        return
    yield from _json_lines(first_line, stream)


def _json_lines(first_line: str, stream: IO[str]) -> Iterator[SourceItem]:
    line_number = 0
    for line in _chain_first(first_line, stream):
        line_number += 1
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield SourceItem(f"line {line_number}", _Unparsable(f"not valid JSON: {exc.msg}"), None)
            continue
        except (RecursionError, ValueError) as exc:  # nesting or digits beyond Python's limits, NaN
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            yield SourceItem(f"line {line_number}", _Unparsable(f"not valid JSON: {reason}"), None)
            continue
        if isinstance(value, dict) and isinstance(value.get("batch"), list):
            try:
                sent_at = _batch_sent_at(value, f"line {line_number}")
            except ImportFileError as error:  # one bad line is a rejection, not the end of the import
                yield SourceItem(f"line {line_number}", _Unparsable(str(error).split(": ", 1)[-1]), None)
                continue
            for index, item in enumerate(value["batch"]):
                yield SourceItem(f"line {line_number} batch[{index}]", item, sent_at)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield SourceItem(f"line {line_number} [{index}]", item, None)
        else:
            yield SourceItem(f"line {line_number}", value, None)


def _chain_first(first_line: str, stream: IO[str]) -> Iterator[str]:
    yield first_line
    yield from stream


def _whole_document(text: str) -> Iterator[SourceItem]:
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not JSON lines and not a JSON document: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ImportFileError("the JSON document is nested too deeply") from None
    except ValueError as exc:
        raise ImportFileError(f"not a valid JSON document: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        sent_at = _batch_sent_at(document, "document")
        for index, item in enumerate(document["batch"]):
            yield SourceItem(f"batch[{index}]", item, sent_at)
    elif isinstance(document, list):
        for index, item in enumerate(document):
            yield SourceItem(f"[{index}]", item, None)
    else:
        raise ImportFileError('a JSON document must be a Segment batch {"batch": [...]} or a list of events')


def _batch_sent_at(document: dict[str, Any], where: str) -> datetime | None:
    raw = document.get("sentAt")
    if not raw:
        return None
    try:
        return parse_timestamp(raw, "sentAt")
    except FieldError as error:
        raise ImportFileError(f"{where}: {error}") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


@dataclass(frozen=True, slots=True)
class _Unparsable:
    reason: str


def to_event(source: SourceItem, imported_at: datetime) -> CanonicalEvent:
    if isinstance(source.item, _Unparsable):
        raise FieldError("line", source.item.reason)
    received_raw = source.item.get("receivedAt") if isinstance(source.item, dict) else None
    received_at = parse_timestamp(received_raw, "receivedAt") if received_raw else imported_at
    return parse_segment_item(
        source.item,
        received_at=received_at,
        batch_sent_at=source.batch_sent_at,
        correct_skew=received_raw is not None,
    )


def import_events(
    stream: IO[str],
    ingestor: EventIngestor,
    *,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Validate and store, streaming in chunks (memory stays flat for any file size).

    `strict`: validate the whole file first and store nothing if any item is invalid.
    """
    imported_at = datetime.now(UTC)
    rejected: list[Rejection] = []

    def valid_events() -> Iterator[CanonicalEvent]:
        for index, source in enumerate(iter_source_items(stream)):
            try:
                yield to_event(source, imported_at)
            except FieldError as error:
                message_id = source.item.get("messageId") if isinstance(source.item, dict) else None
                rejected.append(Rejection(index, message_id, f"{source.position}: {error}"))
                if on_progress is not None:
                    on_progress(1)

    events: Iterable[CanonicalEvent] = valid_events()
    if strict:
        events = list(events)
        if rejected:
            return IngestSummary(rejected=rejected)
    summary = IngestSummary()
    for chunk in _chunks(events, IMPORT_CHUNK_EVENTS):
        try:
            summary.add(ingestor.ingest(chunk))
        except SQLAlchemyError as error:
            summary.rejected.extend(rejected)
            raise ImportInterrupted(summary, error) from error
        if on_progress is not None:
            on_progress(len(chunk))
    summary.rejected.extend(rejected)
    return summary


class ImportInterrupted(RuntimeError):
    """The database failed part-way: `summary` says what was stored (each chunk is one transaction)."""

    def __init__(self, summary: IngestSummary, error: Exception) -> None:
        super().__init__(f"the database failed after {summary.accepted:,} events were stored: {error}")
        self.summary = summary


def _chunks(events: Iterable[CanonicalEvent], size: int) -> Iterator[list[CanonicalEvent]]:
    iterator = iter(events)
    while chunk := list(islice(iterator, size)):
        yield chunk

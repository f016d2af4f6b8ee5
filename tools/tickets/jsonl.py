"""A JSON-lines backlog file: the default sink, so the product files tickets with nothing configured.

One line per filed item: `item.as_dict()` plus `filed_at`. The ticket key is the 1-based line number. Dedupe reads
the fingerprints already in the file; the read and the append happen under an exclusive `fcntl.flock` on the
file, so two processes (a CLI retro and the worker's, say) filing the same item at once write one line. Reading
the whole file per item is fine at backlog sizes (hundreds of lines); a line that is not JSON (a crash mid-write)
still counts for numbering, and the next record starts on a line of its own.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tools.retro.model import BacklogItem, TicketRef
from tools.tickets.base import TicketSinkError, utc_now

DEFAULT_JSONL_PATH = Path(".feedbackloop/backlog.jsonl")


@dataclass(frozen=True, slots=True)
class JsonlTicketSink:
    path: Path = DEFAULT_JSONL_PATH
    name: str = "jsonl"
    clock: Callable[[], datetime] = field(default=utc_now, repr=False, compare=False)

    def file(self, item: BacklogItem) -> TicketRef:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as backlog:
                fcntl.flock(backlog.fileno(), fcntl.LOCK_EX)  # released when the file is closed
                backlog.seek(0)
                content = backlog.read()
                line_number = _line_of(content, item.fingerprint)
                if line_number is not None:
                    return TicketRef(self.name, str(line_number), None, created=False)
                record = {**item.as_dict(), "filed_at": self.clock().isoformat()}
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
                if content and not content.endswith(b"\n"):
                    line = b"\n" + line  # after a torn last line: keep ours whole and on its own line
                backlog.write(line)  # "a" mode: always at the end
                backlog.flush()
                os.fsync(backlog.fileno())
                return TicketRef(self.name, str(_line_count(content) + 1), None, created=True)
        except OSError as error:
            reason = error.strerror or str(error)
            raise TicketSinkError(self.name, f"cannot append to {self.path}: {reason}") from None


def _line_of(content: bytes, fingerprint: str) -> int | None:
    for number, line in enumerate(content.splitlines(), start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(record, dict) and record.get("fingerprint") == fingerprint:
            return number
    return None


def _line_count(content: bytes) -> int:
    return len(content.splitlines())

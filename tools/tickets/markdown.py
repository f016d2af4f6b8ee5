"""One markdown file per backlog item in a directory: tickets a team can keep in its repository and review as
pull requests.

File name `<fingerprint[:12]>-<slug>.md`; YAML front matter with the fingerprint, labels and priority, then the
body with its hidden marker. A file whose front matter holds the fingerprint means the item is filed already.
The check and the write happen under an exclusive lock on `.lock` in the directory (two processes filing the
same item write one file), and each file appears whole: written to a temporary file, then renamed into place.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tools.retro.model import BacklogItem, TicketRef
from tools.tickets.base import TicketSinkError, ticket_body, ticket_labels, utc_now

DEFAULT_MARKDOWN_DIR = Path(".feedbackloop/backlog")
FINGERPRINT_PREFIX_CHARS = 12
MAX_SLUG_CHARS = 60
LOCK_FILE = ".lock"


@dataclass(frozen=True, slots=True)
class MarkdownTicketSink:
    directory: Path = DEFAULT_MARKDOWN_DIR
    name: str = "markdown"
    clock: Callable[[], datetime] = field(default=utc_now, repr=False, compare=False)

    def file(self, item: BacklogItem) -> TicketRef:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / LOCK_FILE).open("a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the lock file is closed
                existing = self._existing(item.fingerprint)
                if existing is not None:
                    return TicketRef(self.name, existing.name, existing.resolve().as_uri(), created=False)
                path = self._free_path(item)
                self._write_atomically(path, self.render(item))
                return TicketRef(self.name, path.name, path.resolve().as_uri(), created=True)
        except OSError as error:
            reason = error.strerror or str(error)
            raise TicketSinkError(self.name, f"cannot write to {self.directory}: {reason}") from None

    def render(self, item: BacklogItem) -> str:
        front_matter: dict[str, Any] = {
            "fingerprint": item.fingerprint,
            "id": item.id,
            "title": item.title,
            "labels": ticket_labels(item.labels),
            "priority": item.priority.as_dict(),
            "insight_ids": list(item.insight_ids),
            "evidence_ids": list(item.evidence_ids),
            "filed_at": self.clock().isoformat(),
        }
        header = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True, width=1000)
        return f"---\n{header}---\n\n# {item.title}\n\n{ticket_body(item)}"

    def _existing(self, fingerprint: str) -> Path | None:
        # The name carries only a prefix of the fingerprint; the front matter decides.
        for path in sorted(self.directory.glob(f"{_name_prefix(fingerprint)}-*.md")):
            if front_matter_fingerprint(path) == fingerprint:
                return path
        return None

    def _free_path(self, item: BacklogItem) -> Path:
        stem = f"{_name_prefix(item.fingerprint)}-{slug(item.title)}"
        path, suffix = self.directory / f"{stem}.md", 2
        while path.exists():  # another fingerprint with the same prefix and title: rare, never overwritten
            path, suffix = self.directory / f"{stem}-{suffix}.md", suffix + 1
        return path

    def _write_atomically(self, path: Path, text: str) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".md")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def front_matter_fingerprint(path: Path) -> str | None:
    """The `fingerprint` of a file's YAML front matter; None for a file without readable front matter."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---\n"):
        return None
    header, separator, _ = text[4:].partition("\n---\n")
    if not separator:
        return None
    try:
        data = yaml.safe_load(header)
    except yaml.YAMLError:
        return None
    value = data.get("fingerprint") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def slug(title: str) -> str:
    """ "Sponsor reports: drop in renewals!" → "sponsor-reports-drop-in-renewals" (ASCII, ≤ 60 chars)."""
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return words[:MAX_SLUG_CHARS].rstrip("-") or "item"


def _name_prefix(fingerprint: str) -> str:
    """The fingerprint's first 12 characters, safe in a file name and in a glob pattern."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", fingerprint[:FINGERPRINT_PREFIX_CHARS])

"""A JSON-lines file sink: "the notifications that would have been sent" (demo mode, local runs, audits).

One line per notification: `{"channel", "recorded_at", "notification": <Notification.as_dict()>}`. Always
delivered unless the file cannot be written; then the attempt is final (a retry would meet the same disk).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tools.notify.delivery import MAX_ERROR_CHARS, Attempt
from tools.notify.message import Notification


@dataclass(frozen=True, slots=True)
class FileNotifier:
    path: Path
    send_resolved: bool = True
    name: str = "file"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def send(self, notification: Notification, *, now: datetime) -> Attempt:
        record = {
            "channel": self.name,
            "recorded_at": now.isoformat(),
            "notification": notification.as_dict(),
        }
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as sink:
                    sink.write(line)
        except OSError as error:
            reason = error.strerror or str(error)
            return Attempt(None, f"cannot append to {self.path}: {reason}"[:MAX_ERROR_CHARS], verdict="final")
        return Attempt(None, None, verdict="delivered")

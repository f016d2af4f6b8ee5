"""What every benchmark shares: machine facts for the record, and rewriting its own block of bench/README.md."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

README_PATH = Path(__file__).resolve().parent / "README.md"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    """What a reader needs to judge the figures; load average shows how busy the shared machine was."""
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def machine_label(machine: dict[str, Any]) -> str:
    model = machine["cpu_model"].replace("(R)", "").replace(" Processor", "").replace(" CPU", "")
    return (
        f"{model}, {machine['cores']} cores, Python {machine['python']}, SQLite {machine['sqlite_version']}"
    )


def replace_readme_block(section: str, table: str, heading: str | None = None) -> None:
    """Replace the text between `<!-- {section}:begin -->` and `<!-- {section}:end -->`; append it if absent."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    block = f"{begin}\n{table}\n{end}"
    text = README_PATH.read_text(encoding="utf-8") if README_PATH.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = f"{head}{block}{rest.split(end, 1)[1]}"
    else:
        text = f"{text.rstrip()}\n\n## {heading or section.title()}\n\n{block}\n"
    README_PATH.write_text(text, encoding="utf-8")

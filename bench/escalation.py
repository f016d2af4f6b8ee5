"""Escalation benchmark: one check of the five default rules × every persona at 1M events, SQLite and PostgreSQL.

The data is bench/kpis.py's 1M-event synthetic database (same generator, seed and end; the SQLite file is shared
through its cache in bench/.data/). The check runs on a copy (it writes alert state), at the end of the synthetic
period and then every 15 minutes after it, as the worker would: the first check creates every label set's
instance, later ones update them. Reported: the first check and the median of `--repeat` later ones. Target
(issue 7): < 1 s on SQLite at 1M events.

Writes bench/results/escalation.json and the table between the escalation markers in bench/README.md.

    .venv/bin/python bench/escalation.py [--repeat 5] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from bench.ingest import postgres_base_url, postgres_schema, postgres_server_version  # noqa: E402
from bench.kpis import SYNTHETIC_END, cached_sqlite, code_state, load_events, log, vacuum_analyze  # noqa: E402
from store.database import Database  # noqa: E402
from tools.escalation.notifications import NotificationPolicy  # noqa: E402
from tools.escalation.service import CheckResult, EscalationService  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "escalation.json"
SIZE = "1m"
TARGET_SECONDS = 1.0
CHECK_EVERY = timedelta(minutes=15)


def measure(database: Database, repeat: int) -> dict[str, Any]:
    service = EscalationService(database, policy=NotificationPolicy(channels=frozenset({"file"})))
    service.ensure_default_rules()
    started = time.perf_counter()
    first = service.check(at=SYNTHETIC_END)
    first_seconds = time.perf_counter() - started
    later: list[float] = []
    result: CheckResult = first
    for step in range(1, repeat + 1):
        started = time.perf_counter()
        result = service.check(at=SYNTHETIC_END + step * CHECK_EVERY)
        later.append(time.perf_counter() - started)
    personas = sorted({label["persona"] for label in _labels(database)})
    return {
        "rules": len(service.rules()), "personas": personas, "label_sets": first.evaluated,
        "no_data": result.no_data, "active_escalations": len(result.active),
        "first_check_seconds": round(first_seconds, 3), "check_seconds": [round(s, 3) for s in later],
        "check_median_seconds": round(statistics.median(later), 3),
    }  # fmt: skip


def _labels(database: Database) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from store.models import EscalationInstanceRow

    with database.read() as connection:
        return [dict(labels) for labels in connection.execute(select(EscalationInstanceRow.labels)).scalars()]


def run_sqlite(repeat: int) -> dict[str, Any]:
    cached, meta = cached_sqlite(SIZE)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "escalation.db"
        shutil.copyfile(cached, copy)
        database = Database(f"sqlite:///{copy}")
        try:
            log("SQLite: checking")
            return {"events": meta["events"], **measure(database, repeat)}
        finally:
            database.dispose()


def run_postgres(repeat: int, base_url: str) -> dict[str, Any]:
    with postgres_schema(base_url) as (url, schema):
        database = Database(url)
        try:
            log(f"PostgreSQL: loading {SIZE} into schema {schema}")
            meta = load_events(database, SIZE)
            vacuum_analyze(database)
            log("PostgreSQL: checking")
            return {
                "events": meta["events"],
                "server": postgres_server_version(base_url),
                **measure(database, repeat),
            }
        finally:
            database.dispose()


def markdown_table(results: dict[str, Any]) -> str:
    machine = machine_label(results["machine"])
    today = results["date"]
    rows = ["| Figure | Result | Target | Status | Machine | Date |", "|---|---|---|---|---|---|"]
    for name, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        figures = results.get(name)
        if not figures or "error" in figures:
            continue
        scope = (f"{figures['rules']} default rules × {len(figures['personas'])} personas "
                 f"({figures['label_sets']} label sets) at {figures['events']:,} events, {label}")  # fmt: skip
        median = figures["check_median_seconds"]
        target, status = (
            ("< 1 s", "met" if median < TARGET_SECONDS else "**missed**")
            if name == "sqlite"
            else ("—", "info")
        )
        rows.append(f"| One escalation check, {scope} (median of {len(figures['check_seconds'])}) | "
                    f"{median:.3f} s | {target} | {status} | {machine} | {today} |")  # fmt: skip
        rows.append(f"| First check on that database (creates every label set's state), {label} | "
                    f"{figures['first_check_seconds']:.3f} s | — | info | {machine} | {today} |")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "date": date.today().isoformat(),
        "code": code_state(),
    }
    results["sqlite"] = run_sqlite(args.repeat)
    base_url = None if args.skip_postgres else postgres_base_url()
    if base_url is not None:
        results["postgresql"] = run_postgres(args.repeat, base_url)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    replace_readme_block("escalation", markdown_table(results), heading="Escalation")
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

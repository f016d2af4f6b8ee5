"""A retro killed between approval and filing (SIGKILL-like `os._exit` right after a sink created a ticket, before
the filing was recorded) resumes from its checkpoint and files every ticket exactly once, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from agents.retro.context import RetroContext
from agents.retro.runner import RetroRunner
from store.database import Database
from tests.retro_graph.test_retro_graph import CONFIG, SPRINT
from tools.events.ingest import EventIngestor
from tools.retro.gather import GatherSettings
from tools.synthetic import generate_events
from tools.tickets.jsonl import JsonlTicketSink

ROOT = Path(__file__).resolve().parents[2]
DIES_AFTER_FIRST_TICKET = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from agents.retro.context import RetroContext
    from agents.retro.runner import RetroRunner
    from store.database import Database
    from tools.tickets.jsonl import JsonlTicketSink

    class DiesAfterFirstTicket(JsonlTicketSink):
        def file(self, item):
            super().file(item)
            os._exit(9)  # the ticket exists; the process dies before recording it

    database_url, backlog, retro_id = sys.argv[1:]
    context = RetroContext(database=Database(database_url), sinks=[DiesAfterFirstTicket(Path(backlog))])
    RetroRunner(context).approve(retro_id, "all")
    """
)


def test_a_retro_killed_while_filing_resumes_and_files_each_ticket_once(
    database: Database, tmp_path: Path
) -> None:
    EventIngestor(database).ingest_stream(generate_events(CONFIG))
    backlog = tmp_path / "backlog.jsonl"
    runner = RetroRunner(
        RetroContext(database=database, sinks=[JsonlTicketSink(backlog)], gather=GatherSettings())
    )
    retro_id = runner.start({**SPRINT, "approve": "ask"})
    proposed = runner.run(retro_id)["backlog_items"]
    assert len(proposed) >= 1

    killed = subprocess.run(
        [sys.executable, "-c", DIES_AFTER_FIRST_TICKET, database.url, str(backlog), retro_id],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == 9, killed.stderr
    assert len(backlog.read_text().splitlines()) == 1

    result = runner.resume(retro_id)

    assert result["status"] == "completed"
    lines = [json.loads(line) for line in backlog.read_text().splitlines()]
    assert sorted(line["fingerprint"] for line in lines) == sorted(item["fingerprint"] for item in proposed)
    assert all(item["ticket"] for item in result["backlog_items"])
    assert runner.resume(retro_id) == result  # a finished retro stays finished

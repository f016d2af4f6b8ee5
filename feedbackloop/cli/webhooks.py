"""`feedbackloop webhooks …`: deliver the outbox's signed webhooks (survey responses) and show its state.

`deliver` makes one pass by default; `--watch` keeps delivering every `--interval-seconds` until interrupted,
for hosts that run it as a service until the worker (which will run the same pass) is deployed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from feedbackloop.cli.root import DatabaseOption, console, fail, load_settings, open_database
from store.repositories.outbox import counts_by_status
from tools.notify.delivery import deliver_due
from tools.notify.signing import secret_bytes

webhooks_app: typer.Typer = typer.Typer(help="Outbound signed webhooks (the outbox).", no_args_is_help=True)


@webhooks_app.command("deliver")
def deliver(
    database_url: DatabaseOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="keep delivering until interrupted")] = False,
    interval_seconds: Annotated[
        float, typer.Option("--interval-seconds", min=0.1, help="pause between passes with --watch")
    ] = 10.0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="messages per pass")] = 100,
) -> None:
    """Send the due messages, signed with FEEDBACKLOOP_WEBHOOK_SECRET; failures are retried with backoff."""
    settings = load_settings(database_url)
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise fail(
            "FEEDBACKLOOP_WEBHOOK_SECRET is not set: webhooks are only ever sent signed (whsec_<base64>)"
        )
    secret = settings.webhook_secret.get_secret_value()
    try:
        secret_bytes(secret)
    except ValueError as error:
        raise fail(f"FEEDBACKLOOP_WEBHOOK_SECRET: {error}") from None
    database = open_database(settings.database_url)
    while True:
        report = deliver_due(database, secret=secret, limit=limit)
        console.print(
            f"{datetime.now(UTC):%H:%M:%S} delivered {report.delivered}, retrying later {report.retrying}, "
            f"failed {report.failed}"
        )
        for problem in report.errors:
            console.print(f"  [yellow]{problem}[/]")
        if not watch:
            return
        time.sleep(interval_seconds)


@webhooks_app.command("status")
def status(database_url: DatabaseOption = None) -> None:
    """Messages per status: pending (due or waiting to retry), delivered, failed."""
    database = open_database(load_settings(database_url).database_url)
    with database.read() as connection:
        counts = counts_by_status(connection)
    table = Table("status", "messages", title="Outbox")
    for name in ("pending", "delivered", "failed"):
        table.add_row(name, f"{counts.get(name, 0):,}")
    console.print(table)

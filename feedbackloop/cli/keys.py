"""`feedbackloop keys …`: create, list and revoke the API keys of the HTTP API.

A key is printed once, when it is created; the database keeps only its SHA-256, so a lost key is revoked and
replaced, never recovered. Listings show the public id (the `fbl_<id>_` part), never the key. Scopes: `ingest`
(events, assignments, surveys shown to users), `read` (metrics, KPIs, dashboard, results), `admin` (everything).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from feedbackloop.cli.root import (
    DatabaseOption,
    OutputFormat,
    console,
    errors,
    fail,
    load_settings,
    open_database,
)
from store.repositories import api_keys

keys_app: typer.Typer = typer.Typer(
    help="API keys of the HTTP API (scopes ingest, read, admin).", no_args_is_help=True
)

FORMATS = ("table", "json")


def _check_format(output_format: str) -> None:
    if output_format not in FORMATS:
        raise fail(f"--format: {output_format!r} is not one of {', '.join(FORMATS)}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option("--scope", help="ingest, read or admin", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="what the key is for (shown in listings)")] = "",
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    _check_format(output_format)
    if scope not in api_keys.KEY_SCOPES:
        raise fail(f"--scope: {scope!r} is not one of {', '.join(api_keys.KEY_SCOPES)}")
    if len(name) > api_keys.MAX_NAME_LENGTH:
        raise fail(f"--name: {len(name)} characters; at most {api_keys.MAX_NAME_LENGTH}")
    database = open_database(load_settings(database_url).database_url)
    with database.write() as connection:
        created = api_keys.create(connection, scope=scope, name=name, now=datetime.now(UTC))
    if output_format == "json":
        typer.echo(json.dumps({"key": created.key, **created.record.as_dict()}))
    else:
        typer.echo(created.key)  # first: nothing decorative may stand between the user and the key
        console.print(
            f"created {created.record.scope} key [bold]{created.record.id}[/] {escape(name)}".rstrip()
        )
    errors.print(
        "[yellow]warning:[/] store this key now: it is not shown again (only its hash is kept). Send it as "
        "'Authorization: Bearer <key>'."
    )


@keys_app.command("list")
def keys_list(output_format: OutputFormat = "table", database_url: DatabaseOption = None) -> None:
    """Every key: id, name, scope, created, last used, revoked (never the key)."""
    _check_format(output_format)
    database = open_database(load_settings(database_url).database_url)
    with database.read() as connection:
        records = api_keys.list_keys(connection)
    if output_format == "json":
        typer.echo(json.dumps({"keys": [record.as_dict() for record in records]}))
        return
    if not records:
        console.print("no API keys yet: `feedbackloop keys create --scope ingest|read|admin`")
        return
    table = Table("id", "name", "scope", "created (UTC)", "last used", "revoked")
    for record in records:
        table.add_row(record.id, escape(record.name), record.scope, _when(record.created_at),
                      _when(record.last_used_at), _when(record.revoked_at))  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id, as `feedbackloop keys list` shows it")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key: requests with it answer 401 from now on (revoking twice keeps the first time)."""
    database = open_database(load_settings(database_url).database_url)
    with database.write() as connection:
        record = api_keys.revoke(connection, key_id, datetime.now(UTC))
    if record is None:
        raise fail(f"ID: no API key {key_id!r}; `feedbackloop keys list` shows the ids")
    console.print(f"revoked {record.scope} key {record.id} at {_when(record.revoked_at)} UTC")

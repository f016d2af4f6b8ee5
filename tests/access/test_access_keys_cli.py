"""`feedbackloop keys create|list|revoke`: the key printed once, listings without it, revocation felt by the
API at once, and bad input exiting 2 naming the option."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from feedbackloop.cli import app as cli
from store.database import Database
from tests.access.support import bearer, keyed_client

runner = CliRunner()


def _invoke(database: Database, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, [*args, "--database-url", database.url], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_create_list_revoke(database: Database) -> None:
    code, out, err = _invoke(
        database, "keys", "create", "--scope", "read", "--name", "grafana", "--format", "json"
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["key"].startswith(f"fbl_{created['id']}_") and created["scope"] == "read"
    assert "not shown again" in err
    code, out, err = _invoke(database, "keys", "create", "--scope", "ingest")
    assert code == 0 and "created ingest key" in out and "not shown again" in err
    table_key = next(line for line in out.splitlines() if line.startswith("fbl_"))

    code, out, _err = _invoke(database, "keys", "list", "--format", "json")
    listed = json.loads(out)["keys"]
    assert [(k["name"], k["scope"], k["revoked"]) for k in listed] == [
        ("grafana", "read", False),
        ("", "ingest", False),
    ]
    assert created["key"] not in out and table_key not in out and "hash" not in out
    code, table, _err = _invoke(database, "keys", "list")
    assert code == 0 and created["id"] in table and "grafana" in table and created["key"] not in table

    with keyed_client(database) as client:
        assert client.get("/v1/kpis", headers=bearer(created["key"])).status_code == 200
        code, out, err = _invoke(database, "keys", "revoke", created["id"])
        assert code == 0 and f"revoked read key {created['id']}" in out, err
        assert client.get("/v1/kpis", headers=bearer(created["key"])).status_code == 401
        assert client.post("/v1/batch", json={"batch": []}, headers=bearer(table_key)).status_code == 200
    _code, out, _err = _invoke(database, "keys", "list", "--format", "json")
    assert [k["revoked"] for k in json.loads(out)["keys"]] == [True, False]


def test_bad_input_exits_2_naming_the_option(database: Database) -> None:
    code, out, err = _invoke(database, "keys", "create", "--scope", "write")
    assert code == 2 and "--scope" in err and "ingest, read, admin" in err and "fbl_" not in out
    code, _out, err = _invoke(database, "keys", "create", "--scope", "read", "--name", "n" * 129)
    assert code == 2 and "--name" in err
    code, _out, err = _invoke(database, "keys", "create", "--scope", "read", "--format", "xml")
    assert code == 2 and "--format" in err
    code, _out, err = _invoke(database, "keys", "create")
    assert code == 2 and "--scope" in err
    code, _out, err = _invoke(database, "keys", "revoke", "nosuchid")
    assert code == 2 and "nosuchid" in err and "keys list" in err
    _code, out, _err = _invoke(database, "keys", "list", "--format", "json")
    assert json.loads(out) == {"keys": []}


def test_names_with_rich_markup_are_printed_as_written(database: Database) -> None:
    """`[/]` in a name must neither break `keys create` (losing the key) nor `keys list` afterwards."""
    code, out, err = _invoke(database, "keys", "create", "--scope", "read", "--name", "ops [/] [bold]x")
    assert code == 0, err
    assert out.splitlines()[0].startswith("fbl_") and "ops [/] [bold]x" in out
    code, table, err = _invoke(database, "keys", "list")
    assert code == 0 and "ops [/] [bold]x" in table, err

"""`feedbackloop experiments …`: define, run and read experiments from the command line.

Every command goes through the experiments service, like the HTTP routes. Bad input, an unknown key and a status
that forbids the command all exit 2 with a message that names the field (or the option).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from feedbackloop.cli.root import DatabaseOption, OutputFormat, console, fail, load_settings, open_database
from tools.events.normalize import FieldError
from tools.events.segment import check_json_values
from tools.experiments.errors import ExperimentInputError, ExperimentNotFoundError, ExperimentStateError
from tools.experiments.model import Experiment
from tools.experiments.service import ExperimentService

experiments_app: typer.Typer = typer.Typer(
    help="A/B, shadow and multivariate experiments.", no_args_is_help=True
)

Result = TypeVar("Result")
KeyArgument = Annotated[str, typer.Argument(help="the experiment's key")]


def run_on_service(
    database_url: str | None,
    action: Callable[[ExperimentService], Result],
    *,
    options: dict[str, str] | None = None,
    source: str | None = None,
) -> Result:
    """`action` on the configured database; its errors become exit 2. `options` spells input fields as the
    command's options (status → --status) and `source` names the file the other fields come from, so the message
    names what the operator typed."""
    database = open_database(load_settings(database_url).database_url)
    try:
        return action(ExperimentService(database))
    except ExperimentNotFoundError as error:
        raise fail(f"{error}; `feedbackloop experiments list` shows the keys") from None
    except ExperimentInputError as error:
        option = (options or {}).get(error.field)
        if isinstance(error, ExperimentStateError) or (option is None and source is None):
            raise fail(str(error)) from None
        raise fail(f"{option}: {error.message}" if option else f"{source}: {error}") from None
    finally:
        database.dispose()


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "json"):
        raise fail(f"--format: {output_format!r} is not one of table, json")


def _print_json(body: dict[str, Any]) -> None:
    from feedbackloop.cli.reading import print_json

    print_json(console, body)


@experiments_app.command("list")
def list_experiments(
    status: Annotated[str | None, typer.Option(help="draft, running, paused or stopped")] = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Every experiment in creation order: key, type, status, variants, primary metrics, decision."""
    from feedbackloop.cli.experiment_tables import experiments_table

    _check_format(output_format)
    found = run_on_service(database_url, lambda s: s.experiments(status), options={"status": "--status"})
    if output_format == "json":
        _print_json({"experiments": [experiment.as_dict() for experiment in found]})
    else:
        console.print(experiments_table(found))


@experiments_app.command("show")
def show_experiment(
    key: KeyArgument, output_format: OutputFormat = "table", database_url: DatabaseOption = None
) -> None:
    """One experiment's definition, status, phase and decision."""
    from feedbackloop.cli.experiment_tables import experiment_detail

    _check_format(output_format)
    experiment = run_on_service(database_url, lambda s: s.get(key))
    if output_format == "json":
        _print_json(experiment.as_dict())
    else:
        console.print(experiment_detail(experiment))


@experiments_app.command("analyze")
def analyze_experiment(
    key: KeyArgument, output_format: OutputFormat = "table", database_url: DatabaseOption = None
) -> None:
    """Per metric per variant: n, mean, effect, CI, p-value or chance to win, guardrails; then SRM, power and
    the winner with its reason and confidence."""
    from feedbackloop.cli.experiment_tables import results_view
    from tools.experiments.analysis import analyze

    _check_format(output_format)
    results = run_on_service(database_url, lambda s: analyze(s, key))
    if output_format == "json":
        _print_json(results.as_dict())
    else:
        console.print(results_view(results))


@experiments_app.command("create")
def create_experiment(
    file: Annotated[
        str,
        typer.Option("--file", help="the definition as JSON (as POST /v1/experiments takes); '-' is stdin"),
    ],
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Create a draft experiment from a JSON definition (start it with `experiments start KEY`)."""
    _check_format(output_format)
    definition = _read_definition(file)
    experiment = run_on_service(database_url, lambda s: s.create(definition), source=f"--file {file}")
    _report(experiment, "created as a draft", output_format)


def _read_definition(file: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as error:
        raise fail(f"--file {file}: {error.strerror}") from None
    try:
        definition = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, NaN, nesting beyond Python's limit
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise fail(f"--file {file}: not valid JSON ({reason})") from None
    try:  # what a database cannot store (NUL, lone surrogates, |x| > 1e15) is refused naming the field
        check_json_values(definition, "definition")
    except FieldError as error:
        raise fail(f"--file {file}: {error.field.removeprefix('definition.')}: {error.message}") from None
    return definition


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@experiments_app.command("start")
def start_experiment(key: KeyArgument, database_url: DatabaseOption = None) -> None:
    """Draft → running: phase 0 begins and users can be assigned."""
    _report(run_on_service(database_url, lambda s: s.start(key)), "started")


@experiments_app.command("pause")
def pause_experiment(key: KeyArgument, database_url: DatabaseOption = None) -> None:
    """Running → paused: known users keep their variant, new users see control."""
    _report(run_on_service(database_url, lambda s: s.pause(key)), "paused")


@experiments_app.command("resume")
def resume_experiment(key: KeyArgument, database_url: DatabaseOption = None) -> None:
    """Paused → running."""
    _report(run_on_service(database_url, lambda s: s.resume(key)), "resumed")


@experiments_app.command("stop")
def stop_experiment(
    key: KeyArgument,
    decision: Annotated[
        str, typer.Option(help="ship:<variant name>, keep_control or inconclusive")
    ] = "inconclusive",
    notes: Annotated[str, typer.Option(help="why (at most 5000 characters)")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Running or paused → stopped, recording the decision and notes."""
    experiment = run_on_service(
        database_url,
        lambda s: s.stop(key, decision, notes),
        options={"decision": "--decision", "notes": "--notes"},
    )
    _report(experiment, f"stopped: {experiment.decision}")


def _report(experiment: Experiment, what: str, output_format: str = "table") -> None:
    if output_format == "json":
        _print_json(experiment.as_dict())
        return
    phase = f" (phase {experiment.phase.index})" if experiment.phase is not None else ""
    console.print(f"experiment {experiment.key} {what}{phase}; status {experiment.status.value}")

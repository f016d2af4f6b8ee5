"""`feedbackloop hook deploy`: the post-deploy hook for any CI system.

With `--api-url` (or FEEDBACKLOOP_API_URL) it POSTs the deployment to that service's /v1/hooks/deploy with the
key in FEEDBACKLOOP_API_KEY (scope ingest); without, it records the deployment in the configured database itself
(FEEDBACKLOOP_DATABASE_URL or --database-url). Either way the deployment is stored, the escalation check runs and
the deployment retro is scheduled after the bake window (`--immediate`: it runs now). Sending the same deployment
twice (same service, version, environment and commit) does nothing the second time.

Exit codes: 0 recorded (or already recorded), 1 the service could not be reached or refused the call, or an
immediate retro failed; 2 bad options (named).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.markup import escape

from feedbackloop.cli.root import DatabaseOption, console, errors, fail, load_settings, open_database

hook_app: typer.Typer = typer.Typer(help="Post-deploy hooks for CI pipelines.", no_args_is_help=True)

API_KEY_VARIABLE = "FEEDBACKLOOP_API_KEY"
REQUEST_TIMEOUT_SECONDS = 120.0  # the service runs the escalation check before it answers
EXIT_FAILED = 1
OPTIONS = {
    "service": "--service", "version": "--version", "environment": "--environment", "commit": "--commit",
    "url": "--url", "deployed_at": "--deployed-at", "immediate": "--immediate", "body": "--service",
}  # fmt: skip


@hook_app.command("deploy")
def deploy(
    service: Annotated[str, typer.Option("--service", help="the deployed service")],
    version: Annotated[str, typer.Option("--version", help="the deployed version (tag, release, build)")],
    environment: Annotated[str, typer.Option("--environment", help="where it was deployed")] = "production",
    commit: Annotated[str | None, typer.Option("--commit", help="the deployed commit sha")] = None,
    url: Annotated[str | None, typer.Option("--url", help="the deployment's URL or log")] = None,
    deployed_at: Annotated[
        str | None,
        typer.Option("--deployed-at", help="when it finished, ISO 8601 with an offset (default now)"),
    ] = None,
    immediate: Annotated[
        bool, typer.Option("--immediate", help="run the deployment retro now, not after the bake window")
    ] = False,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar="FEEDBACKLOOP_API_URL",
            help="the feedbackloop service to notify (key in FEEDBACKLOOP_API_KEY); unset = the database directly",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Record a finished deployment: escalation check now, deployment retro after the bake window."""
    from feedbackloop.deploy_hooks import DeployHookError, parse_deployment

    if output_format not in ("table", "json"):
        raise fail(f"--format: {output_format!r} is not one of table, json")
    body: dict[str, Any] = {"service": service, "version": version, "environment": environment,
                            "immediate": immediate}  # fmt: skip
    body |= {
        key: value for key, value in (("commit", commit), ("url", url), ("deployed_at", deployed_at)) if value
    }
    try:
        deployment = parse_deployment(body, now=datetime.now(UTC))
    except DeployHookError as error:
        raise fail(f"{OPTIONS.get(error.field, error.field)}: {error.message}") from None
    outcome = _post(api_url, body) if api_url else _record_here(deployment, database_url)
    if output_format == "json":
        from feedbackloop.cli.reading import print_json

        print_json(console, outcome)
    else:
        _print_outcome(outcome)
    retro = outcome.get("retro") or {}
    raise typer.Exit(EXIT_FAILED if retro.get("status") == "failed" and immediate else 0)


def _record_here(deployment: Any, database_url: str | None) -> dict[str, Any]:
    """The hook in this process, on the configured database; an immediate retro runs before the command ends."""
    from feedbackloop.deploy_hooks import DeployHookError, DeployHooks
    from tools.tickets.registry import TicketSinkConfigError

    settings = load_settings(database_url)
    database = open_database(settings.database_url)
    try:
        hooks = DeployHooks(database, settings)
        outcome = hooks.record(deployment, source="deploy")
        retro = outcome.get("retro") or {}
        run_here = retro.pop("run_here", False)  # claimed by this call, not by a worker that polled first
        if deployment.immediate and run_here and not outcome["duplicate"]:
            with console.status(f"running the deployment retro {retro['id']} …"):
                ran = hooks.run_retro(retro["id"])
            outcome["retro"] = {**retro, "status": ran["status"], "error": ran["error"]}
        return outcome
    except DeployHookError as error:
        raise fail(f"{OPTIONS.get(error.field, error.field)}: {error.message}") from None
    except TicketSinkConfigError as error:
        raise fail(f"invalid configuration: {error.setting}: {error}") from None
    finally:
        database.dispose()


def _post(api_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST the deployment to the service; its refusal or absence is exit 1 (2 for a field it names)."""
    if not api_url.startswith(("http://", "https://")):
        raise fail(f"--api-url: {api_url!r} is not an http(s) URL")
    host = urlsplit(api_url).hostname or ""
    if api_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        # The key travels in the Authorization header: in clear text only to this machine.
        raise fail(
            f"--api-url: {api_url!r} would send the API key unencrypted; use https:// (http only to localhost)"
        )
    endpoint = api_url.rstrip("/") + "/v1/hooks/deploy"
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(endpoint, json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        errors.print(f"[red]error:[/] could not reach {endpoint}: {type(error).__name__}: {error}")
        raise typer.Exit(EXIT_FAILED) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"message": response.text[:500]}
    if response.is_success and isinstance(answer, dict):
        return answer
    message = answer.get("message") if isinstance(answer, dict) else None
    if response.status_code == 400 and isinstance(answer, dict) and answer.get("field"):
        raise fail(f"{OPTIONS.get(answer['field'], answer['field'])}: {message}")
    hint = f" (set {API_KEY_VARIABLE} to a key of scope ingest)" if response.status_code in (401, 403) else ""
    errors.print(
        f"[red]error:[/] {endpoint} answered {response.status_code}: {message or response.text[:500]}{hint}"
    )
    raise typer.Exit(EXIT_FAILED)


def _print_outcome(outcome: dict[str, Any]) -> None:
    deployment = outcome.get("deployment") or {}
    if outcome.get("duplicate"):
        console.print("[yellow]already recorded[/]: this deployment was sent before; nothing was done again")
    if deployment:
        console.print(
            f"deployment [bold]{escape(deployment['version'])}[/] of {escape(deployment['service'])} "
            f"({escape(deployment['environment'])}) "
            f"at {deployment['deployed_at']}"
        )
    check = outcome.get("escalation_check") or {}
    if check.get("status") == "ran":
        attributed = ", ".join(check["attributed_escalations"]) or "none"
        console.print(
            f"escalation check: {check['evaluated']} label sets evaluated, {check['opened']} opened, "
            f"{check['fired']} fired; active escalations near this deployment: {attributed}"
        )
    elif check:
        console.print(
            f"escalation check: {check['status']}: {escape(str(check.get('reason') or check.get('error')))}"
        )
    retro = outcome.get("retro") or {}
    if retro:
        when = f" (runs after {retro['run_after']})" if retro.get("status") == "scheduled" else ""
        console.print(f"deployment retro {retro['id']}: {retro['status']}{when}")
        if retro.get("error"):
            console.print(f"  [red]{escape(str(retro['error']))}[/]")

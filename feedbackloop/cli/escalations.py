"""`feedbackloop escalations …`: run a check, follow escalations to resolution, edit rules and silences.

Every command goes through the escalation service, like the HTTP routes, after making sure the default rules
exist. Bad input, an unknown id and a state that forbids the command exit 2 with a message that names the field
(or the option, or the file the field came from).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from feedbackloop.cli.root import DatabaseOption, OutputFormat, console, fail, load_settings, open_database
from feedbackloop.cli.surveys import _read_definition as read_definition  # JSON or YAML, '-' for stdin
from feedbackloop.cli.triage_view import triage_group
from feedbackloop.escalation_triage import run_triage, triage_of
from feedbackloop.worker import EARLIEST_MOMENT, LATEST_MOMENT, escalation_service
from tools.escalation.model import (
    Escalation,
    EscalationInputError,
    EscalationNotFoundError,
    EscalationRule,
    EscalationStateError,
)
from tools.escalation.service import CheckResult, EscalationService

escalations_app: typer.Typer = typer.Typer(
    help="Escalations: checks, the escalation lifecycle, rules and silences.", no_args_is_help=True
)
rules_app: typer.Typer = typer.Typer(help="Escalation rules.", no_args_is_help=True)
silences_app: typer.Typer = typer.Typer(
    help="Silences: mute the notifications of matching escalations for a while.", no_args_is_help=True
)
escalations_app.add_typer(rules_app, name="rules")
escalations_app.add_typer(silences_app, name="silences")

Result = TypeVar("Result")
IdArgument = Annotated[str, typer.Argument(help="the escalation's id (esc_…)")]
RuleIdArgument = Annotated[str, typer.Argument(help="the rule's id")]
ByOption = Annotated[str, typer.Option("--by", help="who does it (recorded in the history)")]
LIST_HINTS = {
    "escalation": "`feedbackloop escalations list`",
    "rule": "`feedbackloop escalations rules list`",
    "silence": "`feedbackloop escalations silences list`",
}
MATCHER = re.compile(r"\s*([^=!~\s]+)\s*(=~|!~|!=|=)(.*)", re.DOTALL)
STATUS_STYLE = {"pending": "yellow", "firing": "bold red", "acknowledged": "magenta", "resolved": "green"}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def run_on_service(
    database_url: str | None,
    action: Callable[[EscalationService], Result],
    *,
    options: dict[str, str] | None = None,
    source: str | None = None,
) -> Result:
    """`action` on the configured database (default rules created first); its errors become exit 2. `options`
    spells input fields as the command's options (resolved_by → --by) and `source` names the file the other
    fields come from."""
    settings = load_settings(database_url)
    database = open_database(settings.database_url)
    try:
        service = escalation_service(database, settings)
        service.ensure_default_rules()
        return action(service)
    except EscalationNotFoundError as error:
        raise fail(f"{error}; {LIST_HINTS.get(error.kind, 'the list command')} shows the ids") from None
    except EscalationInputError as error:
        names = options or {}
        option = names.get(error.field) or names.get(error.field.split("[")[0])
        if isinstance(error, EscalationStateError) or (option is None and source is None):
            raise fail(str(error)) from None
        raise fail(f"{option}: {error.message}" if option else f"{source}: {error}") from None
    finally:
        database.dispose()


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "json"):
        raise fail(f"--format: {output_format!r} is not one of table, json")


def _print_json(body: Any) -> None:
    import json

    console.print_json(json.dumps(body, default=str))


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise fail(f"{option}: needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise fail(f"{option}: must be from {EARLIEST_MOMENT:%Y-%m-%d} to before {LATEST_MOMENT:%Y-%m-%d}")
    return moment


# ---- escalations --------------------------------------------------------------------------------------------


@escalations_app.command("check")
def check(
    at: Annotated[
        str | None,
        typer.Option("--at", help="evaluate as of this moment, ISO 8601 with offset (default now)"),
    ] = None,
    days: Annotated[int, typer.Option(help="period of rules without period_days")] = 7,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Evaluate every enabled rule per persona and queue due notifications (what the worker does every few
    minutes); prints what changed and the escalations active afterwards (--format json: a list of them)."""
    _check_format(output_format)
    moment = _moment(at, "--at")

    def run(service: EscalationService) -> tuple[CheckResult, list[Escalation]]:
        result = service.check(at=moment, days=days)
        return result, [service.get(escalation_id) for escalation_id in result.resolved]

    result, resolved = run_on_service(database_url, run, options={"at": "--at", "days": "--days"})
    if output_format == "json":
        _print_json([escalation.as_dict() for escalation in result.active])
        return
    console.print(
        f"check at {result.at:%Y-%m-%d %H:%M} UTC: {result.evaluated} label sets evaluated "
        f"({result.no_data} without enough data); opened {len(result.opened)}, fired {len(result.fired)}, "
        f"resolved {len(result.resolved)}; {result.notifications} notification(s) queued"
    )
    by_id = {e.escalation_id: e for e in [*result.active, *resolved]}
    changes = [("opened", i) for i in result.opened if i not in result.fired]
    changes += [("fired", i) for i in result.fired] + [("resolved", i) for i in result.resolved]
    for what, escalation_id in changes:
        title = by_id[escalation_id].title if escalation_id in by_id else ""
        console.print(Text(f"  {what:<9}{escalation_id}  {title}"))
    console.print(_escalation_table(result.active, f"{len(result.active)} active"))


@escalations_app.command("list")
def list_escalations(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, firing, acknowledged or resolved")
    ] = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Escalations, oldest first: id, status, severity, type, persona, title, opened."""
    _check_format(output_format)
    found = run_on_service(database_url, lambda s: s.escalations(status), options={"status": "--status"})
    if output_format == "json":
        _print_json([escalation.as_dict() for escalation in found])
    else:
        console.print(_escalation_table(found, _count(len(found), "escalation")))


@escalations_app.command("show")
def show(
    escalation_id: IdArgument, output_format: OutputFormat = "table", database_url: DatabaseOption = None
) -> None:
    """One escalation: description, evidence, related deployments and experiments, history, and the triage of
    its incident."""
    _check_format(output_format)
    escalation = run_on_service(database_url, lambda s: s.get(escalation_id))
    triage = run_on_service(database_url, lambda s: triage_of(s.database, escalation_id))
    if output_format == "json":
        _print_json(escalation.as_dict() | {"triage": triage})
        return
    console.print(_detail(escalation))
    console.print(
        triage_group(triage) if triage else Text("not triaged yet: `feedbackloop escalations triage ID`")
    )


@escalations_app.command("triage")
def triage(
    escalation_ids: Annotated[
        list[str] | None, typer.Argument(help="escalation ids (esc_…); none = every active escalation")
    ] = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Group escalations into incidents and triage them: probable cause citing evidence, owner, next steps."""
    _check_format(output_format)
    settings = load_settings(database_url)
    incidents = run_on_service(
        database_url, lambda s: run_triage(s.database, settings, escalation_ids or None)
    )
    if output_format == "json":
        _print_json({"incidents": incidents})
        return
    if not incidents:
        console.print("no active escalations to triage")
    for incident in incidents:
        console.print(triage_group(incident))


@escalations_app.command("acknowledge")
def acknowledge(escalation_id: IdArgument, by: ByOption, database_url: DatabaseOption = None) -> None:
    """Take a firing escalation: it becomes acknowledged and its notifications stop repeating."""
    escalation = run_on_service(
        database_url, lambda s: s.acknowledge(escalation_id, by), options={"acknowledged_by": "--by"}
    )
    console.print(Text(f"escalation {escalation.escalation_id} acknowledged by {escalation.acknowledged_by}"))


@escalations_app.command("resolve")
def resolve(
    escalation_id: IdArgument,
    by: ByOption,
    notes: Annotated[str, typer.Option("--notes", help="what was done")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Close an escalation by hand; its label set stays quiet until the condition clears once."""
    escalation = run_on_service(
        database_url, lambda s: s.resolve(escalation_id, by, notes),
        options={"resolved_by": "--by", "resolution_notes": "--notes"},
    )  # fmt: skip
    console.print(Text(f"escalation {escalation.escalation_id} resolved by {escalation.resolved_by}"))


# ---- rules --------------------------------------------------------------------------------------------------


@rules_app.command("list")
def list_rules(output_format: OutputFormat = "table", database_url: DatabaseOption = None) -> None:
    """Every rule in creation order, enabled or not."""
    _check_format(output_format)
    rules = run_on_service(database_url, lambda s: s.rules())
    if output_format == "json":
        _print_json([rule.as_dict() for rule in rules])
        return
    table = Table("id", "enabled", "type", "severity", "metric", "persona", "period", "baseline", "fires when",
                  "recovers at", "for", "min n", "channels", title=_count(len(rules), "rule"))  # fmt: skip
    for rule in rules:
        period = f"{rule.period_days} d" if rule.period_days else "--days"
        recovery = f"{rule.recovery_threshold:g}" if rule.recovery_threshold is not None else "—"
        table.add_row(
            Text(rule.rule_id), "yes" if rule.enabled else "[dim]no[/]", str(rule.escalation_type),
            str(rule.severity), Text(rule.metric), Text(rule.persona or "each"), period,
            str(rule.condition["baseline"]), _condition_text(rule), recovery, f"{rule.for_minutes} min",
            str(rule.min_sample), Text(", ".join(rule.notification_channels) or "—"),
        )  # fmt: skip
    console.print(table)


@rules_app.command("add")
def add_rule(
    file: Annotated[
        str, typer.Argument(help="the rule as JSON or YAML (as POST /v1/escalation-rules); '-' is stdin")
    ],
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Add a rule from a JSON or YAML file; the rule is validated (unknown metric, bad comparison, …)."""
    _check_format(output_format)
    definition = read_definition(file)
    rule = run_on_service(database_url, lambda s: s.add_rule(definition), source=file)
    if output_format == "json":
        _print_json(rule.as_dict())
    else:
        console.print(Text(f"rule {rule.rule_id} added: {rule.escalation_type} ({rule.severity}) when "
                           f"{rule.metric} {_condition_text(rule)}"))  # fmt: skip


@rules_app.command("disable")
def disable_rule(rule_id: RuleIdArgument, database_url: DatabaseOption = None) -> None:
    """Stop evaluating a rule (its open escalations stay as they are)."""
    run_on_service(database_url, lambda s: s.set_rule_enabled(rule_id, False))
    console.print(Text(f"rule {rule_id} disabled"))


@rules_app.command("enable")
def enable_rule(rule_id: RuleIdArgument, database_url: DatabaseOption = None) -> None:
    """Evaluate a disabled rule again from the next check."""
    run_on_service(database_url, lambda s: s.set_rule_enabled(rule_id, True))
    console.print(Text(f"rule {rule_id} enabled"))


# ---- silences -----------------------------------------------------------------------------------------------


@silences_app.command("list")
def list_silences(
    active: Annotated[bool, typer.Option("--active", help="only silences in force now")] = False,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Silences by start time, expired ones too unless --active."""
    _check_format(output_format)
    silences = run_on_service(database_url, lambda s: s.silences(active_only=active))
    if output_format == "json":
        _print_json(silences)
        return
    now = datetime.now(UTC)
    table = Table(
        "id", "matchers", "state", "starts", "ends", "by", "comment", title=_count(len(silences), "silence")
    )
    for silence in silences:
        starts, ends = (
            datetime.fromisoformat(silence["starts_at"]),
            datetime.fromisoformat(silence["ends_at"]),
        )
        state = "scheduled" if starts > now else ("active" if ends > now else "[dim]expired[/]")
        table.add_row(
            silence["silence_id"], Text(_matchers_text(silence["matchers"])), state, f"{starts:%Y-%m-%d %H:%M}",
            f"{ends:%Y-%m-%d %H:%M}", Text(silence["created_by"]), Text(silence["comment"] or "—"),
        )  # fmt: skip
    console.print(table)


@silences_app.command("add")
def add_silence(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", help="label=value, label!=value, label=~regex or label!~regex (repeatable)"
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="who adds the silence")],
    ends_at: Annotated[str | None, typer.Option("--ends-at", help="ISO 8601 with offset")] = None,
    for_hours: Annotated[float | None, typer.Option("--for-hours", help="instead of --ends-at")] = None,
    starts_at: Annotated[
        str | None, typer.Option("--starts-at", help="ISO 8601 with offset (default now)")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="why")] = "",
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Mute the notifications of escalations whose labels (rule, persona, metric) match every --matcher."""
    _check_format(output_format)
    matchers = [_matcher(text) for text in matcher]
    start = _moment(starts_at, "--starts-at")
    if (ends_at is None) == (for_hours is None):
        raise fail("--ends-at or --for-hours: give exactly one of them")
    if for_hours is not None and not 0 < for_hours <= 24 * 366:
        raise fail(f"--for-hours: must be more than 0 and at most {24 * 366}, got {for_hours:g}")
    end = _moment(ends_at, "--ends-at") or (start or datetime.now(UTC)) + timedelta(hours=for_hours or 0)
    silence = run_on_service(
        database_url,
        lambda s: s.add_silence(matchers, ends_at=end, created_by=by, starts_at=start, comment=comment),
        options={
            "matchers": "--matcher",
            "ends_at": "--ends-at",
            "created_by": "--by",
            "comment": "--comment",
        },
    )
    if output_format == "json":
        _print_json(silence)
    else:
        console.print(Text(f"silence {silence['silence_id']} added: {_matchers_text(silence['matchers'])} "
                           f"until {silence['ends_at']}"))  # fmt: skip


@silences_app.command("expire")
def expire_silence(
    silence_id: Annotated[str, typer.Argument(help="the silence's id (sil_…)")],
    database_url: DatabaseOption = None,
) -> None:
    """End a silence now (it is kept, expired)."""
    silence = run_on_service(database_url, lambda s: s.expire_silence(silence_id))
    console.print(Text(f"silence {silence['silence_id']} expired at {silence['ends_at']}"))


def _matcher(text: str) -> dict[str, str]:
    found = MATCHER.fullmatch(text)
    if found is None:
        raise fail(f"--matcher: {text!r} is not label=value (or label!=value, label=~regex, label!~regex)")
    label, operator, value = found.groups()
    return {"label": label, "operator": operator, "value": value}


# ---- renderings ---------------------------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _condition_text(rule: EscalationRule) -> str:
    phrases = {
        "less_than": "< {t}", "greater_than": "> {t}", "drop_pct_greater_than": "drops > {t}%",
        "rise_pct_greater_than": "rises > {t}%", "significant_drop": "drops ≥ {t}% (p < {a})",
        "significant_rise": "rises ≥ {t}% (p < {a})",
    }  # fmt: skip
    return phrases[rule.comparison].format(t=f"{rule.threshold:g}", a=f"{rule.alpha:g}")


def _matchers_text(matchers: list[dict[str, str]]) -> str:
    return ", ".join(f"{m['label']}{m['operator']}{m['value']}" for m in matchers)


def _styled(value: str, styles: dict[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def _escalation_table(escalations: list[Escalation], title: str) -> Table:
    table = Table("id", "status", "severity", "type", "persona", "title", "opened", title=title)
    for escalation in escalations:
        table.add_row(
            escalation.escalation_id, _styled(escalation.status.value, STATUS_STYLE),
            _styled(escalation.severity.value, SEVERITY_STYLE), escalation.escalation_type.value,
            Text(", ".join(escalation.affected_personas)), Text(escalation.title),
            f"{escalation.opened_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    return table


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _detail(escalation: Escalation) -> Group:
    facts = Table(
        "field", "value", title=Text(f"{escalation.title} ({escalation.escalation_id})"), show_header=False
    )
    facts.add_row("status", _styled(escalation.status.value, STATUS_STYLE))
    facts.add_row("severity", _styled(escalation.severity.value, SEVERITY_STYLE))
    facts.add_row("type", escalation.escalation_type.value)
    facts.add_row("rule", Text(escalation.rule_id))
    facts.add_row("labels", Text(", ".join(f"{k}={v}" for k, v in sorted(escalation.labels.items()))))
    facts.add_row("opened", f"{escalation.opened_at:%Y-%m-%d %H:%M} UTC")
    if escalation.firing_at:
        facts.add_row("firing since", f"{escalation.firing_at:%Y-%m-%d %H:%M} UTC")
    if escalation.acknowledged_at:
        facts.add_row("acknowledged", Text(f"{escalation.acknowledged_at:%Y-%m-%d %H:%M} UTC by "
                                           f"{escalation.acknowledged_by}"))  # fmt: skip
    if escalation.resolved_at:
        facts.add_row(
            "resolved", Text(f"{escalation.resolved_at:%Y-%m-%d %H:%M} UTC by {escalation.resolved_by}")
        )
        facts.add_row("notes", Text(escalation.resolution_notes or "—"))
    facts.add_row("fingerprint", escalation.fingerprint)
    parts: list[Table | Text] = [facts, Text(escalation.description)]
    evidence = Table("metric", "persona", "value", "baseline", "change", "p-value", "n", title="evidence")
    for item in escalation.evidence:
        evidence.add_row(
            Text(item.metric), Text(item.persona or "—"), _number(item.value), _number(item.baseline),
            f"{item.change:+.1%}" if item.change is not None else "—",
            f"{item.p_value:.3g}" if item.p_value is not None else "—", f"{item.n:,}",
        )  # fmt: skip
    parts.append(evidence)
    deployments = escalation.related.get("deployments", [])
    if deployments:
        table = Table("version", "service", "environment", "deployed", title="related deployments")
        for d in deployments:
            deployed = str(d.get("deployed_at", ""))[:16].replace("T", " ")
            cells = [Text(str(d.get(name) or "—")) for name in ("version", "service", "environment")]
            table.add_row(*cells, deployed)
        parts.append(table)
    experiments = escalation.related.get("experiments", [])
    if experiments:
        table = Table("experiment", "status", "started", title="related experiments")
        for x in experiments:
            table.add_row(Text(str(x.get("key"))), str(x.get("status")),
                          str(x.get("started_at") or "—")[:16].replace("T", " "))  # fmt: skip
        parts.append(table)
    history = Table("at", "what", "by", "details", title="history")
    for entry in escalation.history:
        details = ", ".join(f"{k}={v}" for k, v in sorted(entry["details"].items()) if k != "message_id")
        history.add_row(entry["at"][:19].replace("T", " "), entry["kind"], Text(entry["actor"] or "—"),
                        Text(details or "—"))  # fmt: skip
    parts.append(history)
    return Group(*parts)

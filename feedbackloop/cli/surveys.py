"""`feedbackloop surveys …`: list, show and create surveys, read their results and free-text answers.

Every command goes through the survey service (results and text through tools.surveys.analytics), like the HTTP
routes, after making sure the default surveys exist. Bad input and an unknown survey exit 2 with a message that
names the field (or the option, or the file the field came from).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from feedbackloop.cli.root import DatabaseOption, OutputFormat, console, fail, load_settings, open_database
from tools.events.normalize import FieldError
from tools.events.segment import check_json_values
from tools.surveys.analytics import QuestionResults, RateSummary, ScoreSummary, SurveyResults
from tools.surveys.errors import SurveyInputError, SurveyNotFoundError, SurveyStateError
from tools.surveys.model import DisplayOption, Survey
from tools.surveys.service import SurveyService
from tools.surveys.throttle import survey_wait

surveys_app: typer.Typer = typer.Typer(
    help="Journey surveys: definitions, results and free-text answers.", no_args_is_help=True
)

Result = TypeVar("Result")
IdArgument = Annotated[str, typer.Argument(help="the survey's id")]
DaysOption = Annotated[int, typer.Option(help="window length in days, ending now")]
PersonaOption = Annotated[str | None, typer.Option(help="only this persona")]


def run_on_service(
    database_url: str | None,
    action: Callable[[SurveyService], Result],
    *,
    options: dict[str, str] | None = None,
    source: str | None = None,
) -> Result:
    """`action` on the configured database (defaults created first); its errors become exit 2. `options`
    spells input fields as the command's options and `source` names the file the other fields come from."""
    settings = load_settings(database_url)
    database = open_database(settings.database_url)
    try:
        service = SurveyService(database, global_recontact_days=settings.survey_recontact_days)
        service.ensure_defaults()
        return action(service)
    except SurveyNotFoundError as error:
        raise fail(f"{error}; `feedbackloop surveys list` shows the ids") from None
    except SurveyInputError as error:
        option = (options or {}).get(error.field)
        if isinstance(error, SurveyStateError) or (option is None and source is None):
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


def _window(days: int) -> tuple[datetime, datetime]:
    from feedbackloop.cli.reading import ReadInputError, window_option

    try:
        window = window_option(days, None)
    except ReadInputError as error:
        raise fail(str(error)) from None
    return window.start, window.end


# ---- commands -----------------------------------------------------------------------------------------------


@surveys_app.command("list")
def list_surveys(output_format: OutputFormat = "table", database_url: DatabaseOption = None) -> None:
    """Every survey in creation order: id, type, trigger, active, questions, display option, targeting."""
    _check_format(output_format)
    found = run_on_service(database_url, lambda s: s.surveys())
    if output_format == "json":
        _print_json({"surveys": [survey.as_dict() for survey in found]})
        return
    table = Table("id", "type", "trigger", "active", "questions", "display", "personas", "delay",
                  title=f"{len(found)} survey{'' if len(found) == 1 else 's'}")  # fmt: skip
    for survey in found:
        table.add_row(
            survey.survey_id, str(survey.survey_type), _trigger(survey), "yes" if survey.active else "[dim]no[/]",
            str(len(survey.questions)), _display_option(survey), _personas(survey),
            _duration(survey.delay_seconds),
        )  # fmt: skip
    console.print(table)


@surveys_app.command("show")
def show_survey(
    survey_id: IdArgument, output_format: OutputFormat = "table", database_url: DatabaseOption = None
) -> None:
    """One survey's definition: targeting, throttling and its questions."""
    _check_format(output_format)
    survey, global_days = run_on_service(database_url, lambda s: (s.get(survey_id), s.global_recontact_days))
    if output_format == "json":
        _print_json(survey.as_dict())
    else:
        console.print(_detail(survey, global_days))


@surveys_app.command("results")
def survey_results(
    survey_id: IdArgument,
    days: DaysOption = 30,
    persona: PersonaOption = None,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Response rate per persona (95 % interval), each question's score (NPS or mean with interval and n) and
    its answer distribution, over the last --days days."""
    from tools.surveys.analytics import survey_results as compute

    _check_format(output_format)
    start, end = _window(days)
    results = run_on_service(
        database_url, lambda s: compute(s.database, s.get(survey_id), start, end, persona=persona)
    )
    if output_format == "json":
        _print_json(results.as_dict())
    else:
        console.print(_results_view(results))


@surveys_app.command("text")
def free_text(
    survey: Annotated[str | None, typer.Option("--survey", help="only this survey's answers")] = None,
    days: DaysOption = 30,
    persona: PersonaOption = None,
    question: Annotated[str | None, typer.Option("--question", help="only this question")] = None,
    contains: Annotated[str | None, typer.Option(help="only answers containing this (any case)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="most answers shown")] = 100,
    redact: Annotated[bool, typer.Option(help="replace e-mail addresses and phone numbers")] = False,
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Open-text answers, newest first (raw unless --redact)."""
    from tools.surveys.analytics import free_text_answers

    _check_format(output_format)
    start, end = _window(days)

    def read(service: SurveyService) -> list[dict[str, Any]]:
        if survey is not None:
            service.get(survey)  # an unknown survey is a typo, not "no answers"
        return free_text_answers(
            service.database, start, end, survey_id=survey, persona=persona, question_id=question,
            contains=contains, limit=limit, redact=redact,
        )  # fmt: skip

    answers = run_on_service(database_url, read)
    if output_format == "json":
        _print_json({"answers": answers})
        return
    table = Table("answered", "survey", "question", "persona", "user", "answer",
                  title=f"{len(answers)} free-text answer{'' if len(answers) == 1 else 's'}")  # fmt: skip
    for answer in answers:
        table.add_row(
            answer["answered_at"][:16].replace("T", " "), answer["survey_id"], answer["question_id"],
            Text(answer["persona"]), Text(answer["user_id"]), Text(answer["text"]),
        )  # fmt: skip
    console.print(table)


@surveys_app.command("create")
def create_survey(
    file: Annotated[
        str, typer.Argument(help="the definition as JSON or YAML (as POST /v1/surveys takes); '-' is stdin")
    ],
    output_format: OutputFormat = "table",
    database_url: DatabaseOption = None,
) -> None:
    """Create a survey from a JSON or YAML definition file."""
    _check_format(output_format)
    definition = _read_definition(file)
    survey = run_on_service(database_url, lambda s: s.create(definition), source=file)
    if output_format == "json":
        _print_json(survey.as_dict())
    else:
        console.print(
            f"survey {survey.survey_id} created: {survey.survey_type}, trigger {_trigger(survey)}, "
            f"{len(survey.questions)} question{'' if len(survey.questions) == 1 else 's'}, "
            f"{'active' if survey.active else 'inactive'}"
        )


# ---- reading a definition file ------------------------------------------------------------------------------


def _read_definition(file: str) -> Any:
    """JSON (or YAML for .yaml/.yml files, and for stdin that is not JSON), as JSON values only, checked for what
    a database cannot store (NUL, lone surrogates, |x| > 1e15) so the refusal names the field."""
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as error:
        raise fail(f"{file}: {error.strerror}") from None
    is_yaml = file.lower().endswith((".yaml", ".yml"))
    try:
        definition = _from_yaml(raw) if is_yaml else json.loads(raw, parse_constant=_reject_constant)
    except (
        ValueError,
        RecursionError,
    ) as error:  # bad JSON/YAML, bad UTF-8, NaN, nesting beyond Python's limit
        if is_yaml or file != "-":
            kind = "YAML" if is_yaml else "JSON"
            raise fail(f"{file}: not valid {kind} ({_reason(error)})") from None
        try:
            definition = _from_yaml(raw)
        except (ValueError, RecursionError):
            raise fail(f"{file}: neither valid JSON nor YAML ({_reason(error)})") from None
    try:
        check_json_values(definition, "definition")
    except FieldError as error:
        raise fail(f"{file}: {error.field.removeprefix('definition.')}: {error.message}") from None
    return definition


def _from_yaml(raw: bytes) -> Any:
    """YAML → the JSON values it denotes (dates become ISO 8601 text, keys text); NaN and infinity refused."""
    import yaml

    try:
        loaded = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ValueError(str(error).replace("\n", " ")) from None
    return json.loads(json.dumps(loaded, allow_nan=False, default=_yaml_scalar))


def _yaml_scalar(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    raise ValueError(f"{type(value).__name__} values are not JSON")


def _reason(error: BaseException) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# ---- renderings ---------------------------------------------------------------------------------------------


def _trigger(survey: Survey) -> str:
    event = survey.trigger_event
    return str(survey.trigger) if event == survey.trigger else f"{survey.trigger} ({event})"


def _personas(survey: Survey) -> str:
    return escape(", ".join(survey.persona_segments)) or "everyone"


def _display_option(survey: Survey) -> str:
    if survey.display_option == DisplayOption.RECURRING:
        return f"recurring every {survey.recurring_days} d"
    if survey.display_option == DisplayOption.UNTIL_ANSWERED:
        return f"until answered (max {survey.max_displays})"
    return "once"


def _duration(seconds: int) -> str:
    if seconds == 0:
        return "—"
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds} s"


def _detail(survey: Survey, global_recontact_days: int) -> Group:
    facts = Table("field", "value", title=escape(f"{survey.name} ({survey.survey_id})"), show_header=False)
    facts.add_row("type", str(survey.survey_type))
    facts.add_row("trigger", _trigger(survey))
    facts.add_row(
        "trigger context",
        Text(json.dumps(survey.trigger_context, sort_keys=True)) if survey.trigger_context else "—",
    )
    facts.add_row("journey stage", Text(survey.journey_stage or "—"))
    facts.add_row("personas", _personas(survey))
    facts.add_row("active", "yes" if survey.active else "no")
    facts.add_row("display", _display_option(survey))
    facts.add_row("delay", _duration(survey.delay_seconds))
    facts.add_row("sampling", f"{survey.sampling_percentage:g}%")
    own = survey_wait(survey, global_recontact_days).days
    facts.add_row("wait before re-asking", f"{own} d after this survey was last shown to the user")
    facts.add_row("global wait", "ignored" if survey.ignore_global_recontact else
                  f"{global_recontact_days} d after any other survey")  # fmt: skip
    window = [f"from {survey.starts_at:%Y-%m-%d %H:%M}" if survey.starts_at else "",
              f"until {survey.ends_at:%Y-%m-%d %H:%M}" if survey.ends_at else ""]  # fmt: skip
    facts.add_row("schedule", " ".join(part for part in window if part) or "always")
    facts.add_row("response limit", f"{survey.response_limit:,}" if survey.response_limit else "none")
    facts.add_row("webhook", Text(survey.webhook_url or "—"))
    questions = Table("#", "question", "type", "required", "text", "answers", "metric", title="questions")
    for index, q in enumerate(survey.questions, start=1):
        answers = (
            "; ".join(q.options) if q.options else (f"{q.scale[0]}–{q.scale[1]}" if q.scale else "free text")
        )
        questions.add_row(str(index), q.question_id, q.type, "yes" if q.required else "no", Text(q.text),
                          Text(answers), Text(q.metric or "—"))  # fmt: skip
    return Group(facts, questions)


def _results_view(results: SurveyResults) -> Group:
    scope = f", persona {results.persona}" if results.persona else ""
    displays = results.displays
    parts: list[Table | Text] = [
        Text(f"{results.survey_id}: {results.start:%Y-%m-%d} → {results.end:%Y-%m-%d}{scope} — "
             f"{displays['triggered']:,} triggered, {displays['shown']:,} shown, {displays['answered']:,} answered, "
             f"{displays['dismissed']:,} dismissed, {displays['partial']:,} partial", style="bold"),
    ]  # fmt: skip
    rates = Table("persona", "shown", "answered", "response rate", "95% interval", title="response rate")
    for persona, rate in [("everyone", results.response_rate), *results.response_rate_by_persona.items()]:
        rates.add_row(Text(persona), f"{rate.shown:,}", f"{rate.answered:,}", *_rate_cells(rate))
    parts.append(rates)
    parts.extend(_question_view(question) for question in results.questions)
    return Group(*parts)


def _rate_cells(rate: RateSummary) -> list[str]:
    if rate.rate is None:
        return ["—", "—"]
    interval = f"[{rate.interval[0]:.1%}, {rate.interval[1]:.1%}]" if rate.interval else "—"
    return [f"{rate.rate:.1%}", interval]


def _question_view(question: QuestionResults) -> Table:
    title = f"{question.question_id} ({question.type}): {question.answered:,} answered"
    if question.score is not None:
        title += f" — {_score(question.score)}"
    for persona, score in question.score_by_persona.items():
        title += f"\n  {escape(persona)}: {_score(score)}"
    table = Table("answer", "count", "share", title=title, title_justify="left")
    total = sum(question.distribution.values())
    for answer, count in question.distribution.items():
        table.add_row(Text(answer), f"{count:,}", f"{count / total:.1%}" if total else "—")
    if not question.distribution:
        hint = "free text: see `feedbackloop surveys text`" if question.type == "open_text" else "no answers"
        table.add_row(hint, "", "")
    return table


def _score(score: ScoreSummary) -> str:
    if score.value is None:
        return f"no score (n={score.n})"
    number = f"NPS {score.value:+.0f}" if score.kind == "nps" else f"mean {score.value:.2f}"
    low, high = score.interval if score.interval else (None, None)
    interval = "" if low is None or high is None else (
        f" [{low:+.0f}, {high:+.0f}]" if score.kind == "nps" else f" [{low:.2f}, {high:.2f}]"
    )  # fmt: skip
    return f"{number}{interval} (n={score.n:,})"

"""A finished retro for people: a markdown report, a self-contained HTML page, a Slack Block Kit message, and the
markdown body of each backlog ticket.

Everything here formats; nothing computes. The result dict arrives with every number already decided by the tools,
and this module only turns it into strings (one view model, `ReportView`) that the templates in prompts/ lay out.

Survey answers and LLM-written text are untrusted, so every string in a view goes through the target format's
escaper when the view is built: markdown escaping for the markdown report and ticket bodies (whose @mentions are
also broken, so a filed ticket notifies no one), Slack's &/</> escaping for mrkdwn, and none for HTML, whose
template escapes everything itself (`{% autoescape true %}`, because the one loader in prompts/ does not
autoescape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prompts import render
from tools.retro.model import Signal
from tools.retro.numbers import (
    change_is_relative,
    format_change,
    format_number,
    format_p_value,
    format_percent,
)

Escape = Callable[[str], str]

IMPACT_ORDER = ("High", "Medium", "Low")
SLACK_MAX_BLOCKS = 50
SLACK_MAX_HEADER_CHARS = 150
SLACK_MAX_TEXT_CHARS = 3000
SLACK_MAX_BUTTON_TEXT_CHARS = 75
MISSING = "—"

# ---------------------------------------------------------------- escaping (one function per target format)

# CommonMark lets a backslash escape any ASCII punctuation. These are the characters that could turn text into a
# link, an image (a tracking pixel), HTML (including a fake fingerprint comment), code, emphasis or a table cell
# break. "<" opens a tag, a comment or an autolink only before a letter, "/", "!" or "?", and ">" a quote only at
# the start of a line, so "p<0.001" and "a -> b" stay readable.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|]|<(?=[A-Za-z/!?])|^>")
_WHITESPACE = re.compile(r"\s+")


def markdown_escape(text: str) -> str:
    """Untrusted text as one line of literal markdown (newlines collapse, so text cannot start a block)."""
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), _WHITESPACE.sub(" ", text).strip())


# GitHub links "@name" and "@org/team" and notifies them; a backslash does not stop it, a zero-width space after the
# "@" does (what Dependabot and Renovate do). An e-mail address ("bot@acme.test") is no mention and stays as it is.
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9])")


def ticket_markdown_escape(text: str) -> str:
    """`markdown_escape` for a ticket body, which a tracker may also scan for @mentions: those cannot notify anyone."""
    return _MENTION.sub("@\u200b", markdown_escape(text))


def slack_escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters (`<!channel>`, `<url|label>`); escape them."""
    return _WHITESPACE.sub(" ", text).strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str) -> str:
    """HTML: the template escapes; here whitespace only collapses like the other formats."""
    return _WHITESPACE.sub(" ", text).strip()


# ---------------------------------------------------------------- numbers
# Written the way tools.retro.numbers writes them for the synthesis and reads them back in the grounding check,
# so a number an insight cites looks the same in the evidence table. Only ratios (as percents) and a unit suffix
# are added here, for reading. Anything missing, NaN or infinite is "—".

_UNIT_SUFFIXES = {"minutes": " min", "hours": " h", "seconds": " s", "x": "×"}


def _numeric(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _format_number(value: Any) -> str:
    return format_number(_numeric(value)) or MISSING


def _format_value(value: Any, unit: Any) -> str:
    number = _numeric(value)
    if unit == "ratio":
        return format_percent(number) or MISSING
    written = format_number(number)
    if written is None:
        return MISSING
    if unit == "usd":
        return f"-${written[1:]}" if written.startswith("-") else f"${written}"
    return written + _UNIT_SUFFIXES.get(str(unit), "")


def _format_change(signal: Mapping[str, Any]) -> str:
    facts = signal.get("facts") if isinstance(signal.get("facts"), Mapping) else {}
    # Only the unit and facts decide whether a change is relative; ask numbers.py with a signal carrying just those.
    shape = Signal(
        "", "", None, None, None, None, None, None, "", unit=signal.get("unit"), facts=dict(facts or {})
    )
    return format_change(_numeric(signal.get("change")), relative=change_is_relative(shape)) or MISSING


def _format_p_value(p_value: Any) -> str:
    written = format_p_value(_numeric(p_value))  # "p=0.003" / "p<0.001"; the column header already says p
    return MISSING if written is None else written.removeprefix("p=").removeprefix("p")


def format_moment(moment: Any) -> str:
    """A window bound: "2026-03-02" at midnight UTC, else "2026-03-02 14:05 UTC"; unparseable text as it is."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if not isinstance(moment, datetime):
        return MISSING
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d" if moment.time() == datetime.min.time() else "%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- the view model


@dataclass(frozen=True, slots=True)
class EvidenceLink:
    id: str
    anchor: str | None  # the evidence table's row anchor; None when the id is not a signal of this retro


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    id: str
    anchor: str
    kind: str
    metric: str
    persona: str
    value: str
    baseline: str
    change: str
    p_value: str
    n: str
    direction: str
    significant: bool
    detail: str
    quotes: list[str]


@dataclass(frozen=True, slots=True)
class InsightView:
    id: str
    title: str
    impact: str
    summary: str
    context: str  # "onboarding · value propositions · friction · confidence 80%"
    evidence: list[EvidenceLink]
    recommendations: list[str]


@dataclass(frozen=True, slots=True)
class ImpactGroup:
    impact: str
    insights: list[InsightView]


@dataclass(frozen=True, slots=True)
class TicketLink:
    label: str
    url: str | None  # http(s) only; anything else is shown as text, never linked


@dataclass(frozen=True, slots=True)
class BacklogView:
    id: str
    title: str
    rice: str
    tickets: list[TicketLink]
    status: str  # "filed", "duplicate of …", "not filed yet"
    insight_ids: list[str]
    evidence: list[EvidenceLink]


@dataclass(frozen=True, slots=True)
class GroundingView:
    repaired: bool
    repair_attempted: bool
    issues: list[str]
    dropped_insights: list[str]
    dropped_backlog_items: list[str]


@dataclass(frozen=True, slots=True)
class ReportView:
    retro_id: str
    title: str
    window: str
    baseline: str
    synthesis: str
    status: str
    headline: str
    groups: list[ImpactGroup]
    backlog: list[BacklogView]
    evidence: list[EvidenceRow]
    grounding: GroundingView
    warnings: list[str]
    usage: str


def _text(value: Any, esc: Escape, default: str = MISSING) -> str:
    return esc(str(value)) if value not in (None, "") else default


def _title(result: Mapping[str, Any]) -> str:
    if result.get("kind") == "deployment":
        return f"Deployment {result['version']} retro" if result.get("version") else "Deployment retro"
    return f"Sprint {result['sprint_id']} retro" if result.get("sprint_id") else "Sprint retro"


def _period(span: Any) -> str:
    span = span if isinstance(span, Mapping) else {}
    return f"{format_moment(span.get('start'))} → {format_moment(span.get('end'))}"


def synthesis_label(result: Mapping[str, Any]) -> str:
    """ "synthesis: llm (model)" or "synthesis: rules" (unescaped)."""
    if result.get("synthesis") == "llm":
        return f"synthesis: llm ({result['model']})" if result.get("model") else "synthesis: llm"
    return "synthesis: rules"


def _row_anchors(signals: Sequence[Mapping[str, Any]]) -> list[str]:
    """One HTML id per evidence row, unique, of safe characters only ("evidence-S1")."""
    anchors: list[str] = []
    for index, signal in enumerate(signals):
        anchor = "evidence-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(signal.get("id", "")))
        anchors.append(anchor if anchor not in anchors else f"{anchor}-{index + 1}")
    return anchors


def _link_targets(signals: Sequence[Mapping[str, Any]], row_anchors: Sequence[str]) -> dict[str, str]:
    """Signal id → the anchor of its (first) evidence row."""
    targets: dict[str, str] = {}
    for signal, anchor in zip(signals, row_anchors, strict=True):
        targets.setdefault(str(signal.get("id", "")), anchor)
    return targets


def _links(ids: Any, anchors: Mapping[str, str], esc: Escape) -> list[EvidenceLink]:
    return [EvidenceLink(esc(str(i)), anchors.get(str(i))) for i in ids or ()]


def _evidence_row(signal: Mapping[str, Any], anchor: str, esc: Escape) -> EvidenceRow:
    unit = signal.get("unit")
    details = [str(signal["detail"])] if signal.get("detail") else []
    if signal.get("attributed_to"):
        details.append(f"attributed to deployment {signal['attributed_to']}")
    return EvidenceRow(
        id=_text(signal.get("id"), esc),
        anchor=anchor,
        kind=_text(signal.get("kind"), esc),
        metric=_text(signal.get("metric") or signal.get("subject"), esc),
        persona=_text(signal.get("persona"), esc, default="all"),
        value=esc(_format_value(signal.get("value"), unit)),
        baseline=esc(_format_value(signal.get("baseline"), unit)),
        change=esc(_format_change(signal)),
        p_value=esc(_format_p_value(signal.get("p_value"))),
        n=esc(_format_number(signal.get("n"))),
        direction=_text(signal.get("direction"), esc, default=""),
        significant=bool(signal.get("significant")),
        detail=esc(" · ".join(details)),
        quotes=[esc(str(quote)) for quote in signal.get("text") or ()],
    )


def cited_evidence(
    signals: Sequence[Mapping[str, Any]], evidence_ids: Any, esc: Escape
) -> tuple[list[EvidenceRow], list[str]]:
    """The evidence rows of the signals `evidence_ids` cite, in citation order and each once, and the cited ids no
    signal has (escaped)."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for signal in signals:
        by_id.setdefault(str(signal.get("id")), signal)
    cited = [str(i) for i in dict.fromkeys(evidence_ids or ())]
    anchors = _link_targets(signals, _row_anchors(signals))
    rows = [_evidence_row(by_id[i], anchors[i], esc) for i in cited if i in by_id]
    return rows, [esc(i) for i in cited if i not in by_id]


def _insight_view(insight: Mapping[str, Any], anchors: Mapping[str, str], esc: Escape) -> InsightView:
    context = [str(insight.get(key, "")).replace("_", " ") for key in ("journey_stage", "canvas_block")]
    context += [str(principle) for principle in insight.get("principles") or ()]
    if _numeric(insight.get("confidence")) is not None:
        context.append(f"confidence {format_percent(insight['confidence'])}")
    return InsightView(
        id=_text(insight.get("id"), esc),
        title=_text(insight.get("title"), esc),
        impact=_text(insight.get("impact"), esc),
        summary=_text(insight.get("summary"), esc, default=""),
        context=esc(" · ".join(part for part in context if part)),
        evidence=_links(insight.get("evidence_ids"), anchors, esc),
        recommendations=[esc(str(r)) for r in insight.get("recommendations") or ()],
    )


def _impact_groups(
    insights: Sequence[Mapping[str, Any]], anchors: Mapping[str, str], esc: Escape
) -> list[ImpactGroup]:
    impacts = list(IMPACT_ORDER) + [
        str(i.get("impact")) for i in insights if i.get("impact") not in IMPACT_ORDER
    ]
    groups = []
    for impact in dict.fromkeys(impacts):
        members = [_insight_view(i, anchors, esc) for i in insights if str(i.get("impact")) == impact]
        if members:
            groups.append(ImpactGroup(esc(impact), members))
    return groups


def _rice(priority: Any) -> str:
    """ "RICE 1,250 = reach 1,840 × impact 2 × confidence 85.0% ÷ effort 2.5 person-weeks" """
    if not isinstance(priority, Mapping) or _numeric(priority.get("score")) is None:
        return "RICE not scored"
    return (
        f"RICE {_format_number(priority['score'])} = reach {_format_number(priority.get('reach'))}"
        f" × impact {_format_number(priority.get('impact'))}"
        f" × confidence {format_percent(_numeric(priority.get('confidence'))) or MISSING}"
        f" ÷ effort {_format_number(priority.get('effort'))} person-weeks"
    )


def _tickets(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tickets = item.get("tickets")
    if tickets:
        return list(tickets)
    return [item["ticket"]] if isinstance(item.get("ticket"), Mapping) else []


def _backlog_view(item: Mapping[str, Any], anchors: Mapping[str, str], esc: Escape) -> BacklogView:
    links = []
    for ticket in _tickets(item):
        label = f"{ticket.get('sink', 'ticket')} {ticket.get('key', '')}".strip()
        label += "" if ticket.get("created", True) else " (already open)"
        url = ticket.get("url")
        safe_url = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
        links.append(TicketLink(esc(label), esc(safe_url) if safe_url else None))
    if item.get("duplicate_of"):
        status = f"duplicate of {item['duplicate_of']}"
    else:
        status = "filed" if links else "not filed yet"
    return BacklogView(
        id=_text(item.get("id"), esc),
        title=_text(item.get("title"), esc),
        rice=esc(_rice(item.get("priority"))),
        tickets=links,
        status=esc(status),
        insight_ids=[esc(str(i)) for i in item.get("insight_ids") or ()],
        evidence=_links(item.get("evidence_ids"), anchors, esc),
    )


def _describe(dropped: Any) -> str:
    if isinstance(dropped, Mapping):
        named = [str(dropped[key]) for key in ("id", "title") if dropped.get(key)]
        return " · ".join(named) if named else json.dumps(dropped, default=str, sort_keys=True)
    return str(dropped)


def _grounding_view(grounding: Any, esc: Escape) -> GroundingView:
    grounding = grounding if isinstance(grounding, Mapping) else {}
    issues = [
        f"{issue.get('path', '')}: {issue.get('message', '')}" for issue in grounding.get("issues") or ()
    ]
    return GroundingView(
        repaired=bool(grounding.get("repaired")),
        repair_attempted=bool(grounding.get("repair_attempted", grounding.get("repaired"))),
        issues=[esc(issue) for issue in issues],
        dropped_insights=[esc(_describe(d)) for d in grounding.get("dropped_insights") or ()],
        dropped_backlog_items=[esc(_describe(d)) for d in grounding.get("dropped_backlog_items") or ()],
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _headline(signals: Sequence[Mapping[str, Any]]) -> str:
    if not signals:
        return "No significant changes: the retro found no signals in this window."
    significant = sum(bool(signal.get("significant")) for signal in signals)
    noun = "signal" if len(signals) == 1 else "signals"
    if not significant:
        return f"No significant changes among {len(signals)} {noun}."
    changes = "change" if significant == 1 else "changes"
    return f"{significant} significant {changes} among {len(signals)} {noun}."


def _usage(usage: Any) -> str:
    usage = usage if isinstance(usage, Mapping) else {}
    calls = usage.get("llm_calls") or 0
    return (
        f"{_format_number(calls)} LLM call{'' if calls == 1 else 's'} · "
        f"{_format_number(usage.get('input_tokens') or 0)} input tokens · "
        f"{_format_number(usage.get('output_tokens') or 0)} output tokens"
    )


def report_view(result: Mapping[str, Any], esc: Escape) -> ReportView:
    """Every string of the report, escaped with `esc` for the target format."""
    signals = list(result.get("signals") or ())
    row_anchors = _row_anchors(signals)
    anchors = _link_targets(signals, row_anchors)
    return ReportView(
        retro_id=_text(result.get("retro_id"), esc),
        title=esc(_title(result)),
        window=esc(_period(result.get("window"))),
        baseline=esc(_period(result.get("baseline"))),
        synthesis=esc(synthesis_label(result)),
        status=_text(result.get("status"), esc).replace("_", " "),
        headline=esc(_headline(signals)),
        groups=_impact_groups(list(result.get("insights") or ()), anchors, esc),
        backlog=[_backlog_view(item, anchors, esc) for item in result.get("backlog_items") or ()],
        evidence=[_evidence_row(s, anchor, esc) for s, anchor in zip(signals, row_anchors, strict=True)],
        grounding=_grounding_view(result.get("grounding"), esc),
        warnings=[esc(str(warning)) for warning in result.get("warnings") or ()],
        usage=esc(_usage(result.get("usage"))),
    )


# ---------------------------------------------------------------- markdown, HTML, ticket bodies


def render_markdown(result: Mapping[str, Any]) -> str:
    return render("retro_report.md.j2", report=report_view(result, markdown_escape))


def render_html(result: Mapping[str, Any]) -> str:
    """One self-contained page: inline CSS, no script, nothing fetched; every string escaped by the template."""
    return render("retro_report.html.j2", report=report_view(result, _plain))


def render_ticket_body(
    item: Mapping[str, Any],
    insights: Sequence[Mapping[str, Any]],
    signals: Sequence[Mapping[str, Any]],
    retro_id: str,
) -> str:
    """The ticket's markdown: problem, proposal, acceptance criteria, source insights, the evidence table of exactly
    the signals the item cites, and the retro it came from. Sinks add their own fingerprint marker."""
    esc = ticket_markdown_escape
    evidence, missing_evidence = cited_evidence(signals, item.get("evidence_ids"), esc)
    anchors = _link_targets(signals, _row_anchors(signals))
    wanted = {str(i) for i in item.get("insight_ids") or ()}
    return render(
        "ticket_body.md.j2",
        problem=_text(item.get("problem"), esc, default=""),
        proposal=_text(item.get("proposal"), esc, default=""),
        acceptance_criteria=[esc(str(c)) for c in item.get("acceptance_criteria") or ()],
        insights=[_insight_view(i, anchors, esc) for i in insights if str(i.get("id")) in wanted],
        evidence=evidence,
        missing_evidence=missing_evidence,
        rice=esc(_rice(item.get("priority"))),
        retro_id=esc(retro_id),
    )


# ---------------------------------------------------------------- Slack Block Kit


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, never cutting an HTML entity (&amp; &lt; &gt;) in half."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    ampersand = cut.rfind("&", max(0, len(cut) - 4))
    if ampersand != -1 and ";" not in cut[ampersand:]:
        cut = cut[:ampersand]
    return cut + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not auto-link or parse bare mentions ("@channel") in text that came from users.
    return {"type": "mrkdwn", "text": _clip(text, SLACK_MAX_TEXT_CHARS), "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _button(label: str, action_id: str, style: str, retro_id: str, item_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(label, SLACK_MAX_BUTTON_TEXT_CHARS), "emoji": True},
        "style": style,
        "action_id": action_id,
        "value": json.dumps({"retro_id": retro_id, "item_id": item_id}),
    }


def _approval_blocks(result: Mapping[str, Any], view: ReportView, room: int) -> list[dict[str, Any]]:
    """An intro, then per proposed item a section and its Approve/Drop buttons; what does not fit is counted."""
    raw_items = list(result.get("backlog_items") or ())
    proposed = [
        (raw, shown)
        for raw, shown in zip(raw_items, view.backlog, strict=True)
        if not raw.get("duplicate_of") and not _tickets(raw)
    ]
    if not proposed or room < 3:
        return []
    fits = min(len(proposed), (room - 1) // 2)
    if fits < len(proposed):
        fits = (room - 2) // 2  # keep one block to say how many were left out
    noun = "item awaits" if len(proposed) == 1 else "items await"
    blocks = [
        _section(f"*{len(proposed)} backlog {noun} approval.* Approve files the ticket; Drop discards it.")
    ]
    for raw, shown in proposed[:fits]:
        item_id = str(raw.get("id", ""))
        blocks.append(_section(f"*{shown.id} · {shown.title}*\n{shown.rice}"))
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    _button(
                        f"Approve {item_id}", "retro_approve", "primary", str(result.get("retro_id")), item_id
                    ),
                    _button(f"Drop {item_id}", "retro_drop", "danger", str(result.get("retro_id")), item_id),
                ],
            }
        )
    if fits < len(proposed):
        blocks.append(
            _context(
                f"… and {len(proposed) - fits} more await approval: see the full report, approve over HTTP or the CLI."
            )
        )
    return blocks


def slack_blocks(result: Mapping[str, Any], *, max_insights: int = 5) -> list[dict[str, Any]]:
    """A Block Kit message: header, window and synthesis, the High/Medium insights (at most `max_insights`), a
    context line and, while the retro awaits approval, Approve/Drop buttons per proposed backlog item. Slack
    rejects a whole message that breaks a limit, so every limit is kept here (≤ 50 blocks, texts clipped)."""
    view = report_view(result, slack_escape)
    header_text = _clip(_WHITESPACE.sub(" ", _title(result)).strip(), SLACK_MAX_HEADER_CHARS)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header_text, "emoji": True}},
        _section(
            f"*Window* {view.window} · *baseline* {view.baseline}\n"
            f"{view.synthesis} · status: {view.status}\n{view.headline}"
        ),
    ]
    counts = [_plural(len(view.evidence), "signal"), _plural(len(view.backlog), "backlog item"), view.usage]
    counts += [_plural(len(view.warnings), "warning")] if view.warnings else []
    context = _context(f"retro {view.retro_id} · " + " · ".join(counts))
    room = SLACK_MAX_BLOCKS - len(blocks) - 1  # the context block goes last
    approvals = (
        _approval_blocks(result, view, room - 2) if result.get("status") == "awaiting_approval" else []
    )  # leave two blocks for insights
    room -= len(approvals)

    notable = [
        insight for group in view.groups if group.impact in ("High", "Medium") for insight in group.insights
    ]
    shown = notable[: max(0, min(max_insights, room))]
    if len(shown) < len(notable):
        shown = shown[: max(0, min(len(shown), room - 1))]
    for insight in shown:
        evidence = ", ".join(link.id for link in insight.evidence) or "none"
        blocks.append(
            _section(f"*[{insight.impact}] {insight.title}*\n{insight.summary}\n_Evidence:_ {evidence}")
        )
    if not notable:
        blocks.append(_section("No High or Medium impact insights in this retro."))
    elif len(shown) < len(notable):
        blocks.append(
            _context(f"… and {len(notable) - len(shown)} more High/Medium insights in the full report.")
        )
    return [*blocks, *approvals, context]

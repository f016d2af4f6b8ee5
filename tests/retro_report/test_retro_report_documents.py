"""The markdown and HTML retro reports: every section, numbers formatted once, untrusted text kept as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.retro_report.support import (
    HOSTILE_THEME,
    RICE_LINE,
    awaiting_result,
    empty_result,
    huge_result,
    planted_result,
)
from tools.retro.report import markdown_escape, render_html, render_markdown

VOID_ELEMENTS = {"meta", "br", "hr", "img", "link", "input", "col", "area", "base", "wbr", "source"}
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
RAW_MARKUP = re.compile(r"(?<!\\)<[A-Za-z/!?]")  # what could open a tag, comment or autolink in markdown


class _PageChecker(HTMLParser):
    """Well-formedness (every element closed in order), and what a self-contained, script-free page needs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.event_handlers: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("id"):
            assert values["id"] not in self.ids, f"duplicate id {values['id']}"
            self.ids.add(values["id"] or "")
        if "href" in values:
            self.hrefs.append(values["href"] or "")
        self.event_handlers += [name for name in values if name.startswith("on")]
        assert "src" not in values, f"<{tag}> fetches {values['src']}"
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_page(page: str) -> _PageChecker:
    checker = _PageChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert "script" not in checker.tags and not checker.event_handlers
    assert not {"link", "img", "iframe", "object", "embed"} & set(checker.tags)
    for href in checker.hrefs:  # in-page anchors to rows that exist, or http(s) ticket links
        assert href[1:] in checker.ids if href.startswith("#") else href.startswith("https://"), href
    return checker


def _table_rows(markdown: str, header_start: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    columns = len(UNESCAPED_PIPE.findall(lines[start]))
    assert all(len(UNESCAPED_PIPE.findall(row)) == columns for row in rows), "a cell broke the table"
    return rows


def test_markdown_report_of_a_planted_problem_has_every_section() -> None:
    text = render_markdown(planted_result())

    assert text.startswith("# Sprint 2026-S14 retro\n")
    assert "- Window: 2026-02-16 → 2026-03-02 (baseline 2026-02-02 → 2026-02-16; UTC, end exclusive)" in text
    assert "synthesis: llm (gpt-4o-mini) · status: completed · retro retro-2026-03-02-s14" in text
    assert "2 significant changes among 5 signals." in text
    positions = [text.index(f"### {impact} impact") for impact in ("High", "Medium", "Low")]
    assert positions == sorted(positions)
    assert (
        "**I1 · Solo podcasters stall in onboarding since v2.4.0** (onboarding · customer relationships"
        in text
    )
    assert "Evidence: S1, S3, S4" in text
    # backlog: RICE, a ticket link, a duplicate, a non-http URL shown as text only
    assert RICE_LINE in text
    assert "[github 42](https://github.com/acme/app/issues/42)" in text
    assert "| B2 | Shorten the first report |" in text and "duplicate of B-17" in text
    assert "file 7 (already open)" in text and "javascript:" not in text
    evidence = _table_rows(text, "| id | kind |")
    assert [row.split("|")[1].strip() for row in evidence] == ["S1", "S2", "S3", "S4", "S5"]
    assert (
        "| S1 | metric_change | onboarding_completion | solo_podcaster | 41.2% | 58.7% | -29.8% | <0.001 |"
        in text
    )
    assert "| 38.5 min | 21 min | +83.3% | 0.003 | 612 |" in text
    assert "| S3 | deployment | v2.4.0 | all | — | — | — | — | — |" in text
    assert "The first synthesis failed the grounding check and was repaired." in text
    assert "insights\\[1\\].summary: number 39 is not in cited evidence S2" in text
    assert "- I9 · Unsupported claim \\<img src=x>" in text
    assert "## Warnings\n\n- experiments: 1 experiment without enough data skipped" in text
    assert text.rstrip().endswith("2 LLM calls · 10,412 input tokens · 1,873 output tokens")
    assert "\n\n\n" not in text


def test_markdown_report_keeps_survey_and_llm_text_literal() -> None:
    text = render_markdown(planted_result())

    assert not RAW_MARKUP.search(text), "markup in untrusted text survived"
    assert not re.search(r"(?<!\\)\]\(https://evil", text), "an untrusted link survived"
    assert markdown_escape(HOSTILE_THEME) in text
    assert markdown_escape(HOSTILE_THEME) == (
        "\\<script>alert(1)\\</script> \\*bold\\* \\<!channel> & \\[click\\](https://evil.example) \\| pipe"
    )


def test_markdown_report_of_an_empty_retro_says_no_significant_changes() -> None:
    text = render_markdown(empty_result())

    assert text.startswith("# Deployment v2.4.1 retro\n")
    assert "synthesis: rules · status: completed" in text
    assert "No significant changes: the retro found no signals in this window." in text
    assert "No insights: nothing in this window called for one." in text
    assert "No backlog items." in text
    assert "No signals: there were no significant changes to report." in text
    assert "The synthesis needed no repair." in text and "## Warnings" not in text
    assert "0 LLM calls · 0 input tokens · 0 output tokens" in text


def test_markdown_report_marks_proposed_items_not_filed_yet() -> None:
    text = render_markdown(awaiting_result())

    assert "status: awaiting approval" in text
    assert text.count("| not filed yet |") == 2


def test_html_report_is_well_formed_self_contained_and_escaped() -> None:
    page = render_html(planted_result())
    checker = _check_page(page)

    assert "<script" not in page and "<!channel>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; *bold* &lt;!channel&gt; &amp;" in page
    assert HOSTILE_THEME in "".join(checker.text)  # shown to the reader exactly as the user wrote it
    assert 'http-equiv="Content-Security-Policy"' in page and "<style>" in page
    assert "synthesis: llm (gpt-4o-mini)" in page
    # evidence ids link to their rows in the evidence table
    assert '<a class="evidence-id" href="#evidence-S1">S1</a>' in page
    assert {"evidence-S1", "evidence-S2", "evidence-S3", "evidence-S4", "evidence-S5"} <= checker.ids
    assert '<a href="https://github.com/acme/app/issues/42" rel="noopener noreferrer">github 42</a>' in page
    assert "javascript:" not in page and "duplicate of B-17" in page
    for heading in (
        "High impact",
        "Medium impact",
        "Low impact",
        "Evidence",
        "Grounding",
        "Warnings",
        "LLM usage",
    ):
        assert f">{heading}</h" in page
    assert "Unsupported claim &lt;img src=x&gt;" in page


def test_html_report_of_an_empty_retro() -> None:
    page = render_html(empty_result())
    _check_page(page)

    assert "<title>Deployment v2.4.1 retro</title>" in page
    assert "No significant changes: the retro found no signals in this window." in page
    assert "synthesis: rules" in page and 'data-testid="evidence"' not in page


def test_a_cited_id_that_is_not_a_signal_is_not_linked() -> None:
    result = planted_result()
    result["insights"][1]["evidence_ids"] = ["S2", "S99"]
    page = render_html(result)
    _check_page(page)

    assert 'title="not among this retro\'s signals">S99</span>' in page


def test_a_huge_retro_renders_as_valid_documents() -> None:
    result = huge_result(signals=200, insights=30, items=40)
    page = render_html(result)
    checker = _check_page(page)

    assert len([i for i in checker.ids if i.startswith("evidence-")]) == 200
    assert "<&>" not in page
    text = render_markdown(result)
    assert len(_table_rows(text, "| id | kind |")) == 200
    assert len(_table_rows(text, "| Item | Title |")) == 40


def test_evidence_rows_get_unique_safe_anchors_whatever_the_ids() -> None:
    signals = planted_result()["signals"]
    odd = [signals[0] | {"id": 'S"1 <x>'}, signals[1] | {"id": "S2"}, signals[4] | {"id": "S2"}]
    result = planted_result(signals=odd)
    result["insights"][0]["evidence_ids"] = ['S"1 <x>', "S2"]
    page = render_html(result)
    checker = _check_page(page)  # duplicate ids and dangling in-page links fail here

    assert {"evidence-S-1--x-", "evidence-S2", "evidence-S2-3"} <= checker.ids
    assert '<a class="evidence-id" href="#evidence-S-1--x-">S&#34;1 &lt;x&gt;</a>' in page

"""The KPI dashboard as a browser sees it: render `sample_dashboard()`, open the file in headless Chromium (no
network, no JavaScript on the page), and check the DOM Chromium built and a screenshot of it.

The screenshot and the HTML are kept in tests/artifacts/ for a person to look at. Without /usr/bin/chromium the
browser tests skip with the command that installs it; the checks on the HTML itself always run.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feedbackloop.dashboard.data import DashboardData
from feedbackloop.dashboard.render import render_dashboard
from tests.e2e.dashboard_fixture import HOSTILE_PERSONA, PERSONAS, WINDOW, sample_dashboard

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WINDOW_SIZE = "1400,4600"  # tall enough for the whole sample page: one picture to review
CHROMIUM_TIMEOUT_SECONDS = 90
# Headless, offline, quiet: no sandbox (CI runs as root), no GPU, no background traffic or updates.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@dataclass
class Dom:
    """What the tests need from a serialised DOM: elements with their attributes, and the visible text."""

    elements: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def tags(self, tag: str) -> list[dict[str, str]]:
        return [attributes for name, attributes in self.elements if name == tag]

    def test_ids(self, test_id: str) -> list[dict[str, str]]:
        return [attributes for _, attributes in self.elements if attributes.get("data-testid") == test_id]


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = Dom()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.dom.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.dom.text.append(data.strip())


def parse_dom(html: str) -> Dom:
    parser = _DomParser()
    parser.feed(html)
    parser.close()
    return parser.dom


def run_chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS, check=False
    )


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")


@pytest.fixture(scope="module")
def data() -> DashboardData:
    return sample_dashboard()


@pytest.fixture(scope="module")
def html(data: DashboardData) -> str:
    return render_dashboard(data)


@pytest.fixture(scope="module")
def page(html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "dashboard.html"
    path.write_text(html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.html").write_text(html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser_dom(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Dom:
    require_chromium()
    result = run_chromium(tmp_path_factory.mktemp("chromium-profile"), "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "<html" in result.stdout, f"no DOM dumped; stderr: {result.stderr[-3000:]}"
    return parse_dom(result.stdout)


# ---------------------------------------------------------------- the page in Chromium


def test_every_kpi_has_a_card(browser_dom: Dom, data: DashboardData) -> None:
    cards = browser_dom.test_ids("kpi-card")
    assert [card["data-kpi"] for card in cards] == _cards_in_category_order(data)
    assert len(cards) == 16


def test_one_chart_per_metric_report_with_one_line_per_persona(browser_dom: Dom, data: DashboardData) -> None:
    charts = browser_dom.test_ids("metric-chart")
    assert [chart["data-metric"] for chart in charts] == [report.metric for report in data.metrics]
    assert len(charts) == 5
    series = [g for g in browser_dom.tags("g") if g.get("class") == "series"]
    assert len(series) == len(data.metrics) * len(PERSONAS)
    # A gap (a day without data) splits a line, so there are at least as many polylines as series.
    assert len(browser_dom.tags("polyline")) >= len(series) + len(data.metrics)  # + one sparkline each


def test_persona_table_has_a_column_per_persona_and_marks_leaders(
    browser_dom: Dom, data: DashboardData
) -> None:
    assert len(browser_dom.test_ids("persona-table")) == 1
    for persona in PERSONAS:
        assert persona in browser_dom.text
    leaders = [td for td in browser_dom.tags("td") if "leader" in td.get("class", "").split()]
    assert len(leaders) == len(data.persona_leaders)


def test_only_panels_with_rows_are_shown(browser_dom: Dom) -> None:
    panels = browser_dom.test_ids("panel")
    assert [panel["aria-label"] for panel in panels] == ["Open escalations", "Running experiments"]
    assert "Recent deployments" not in " ".join(browser_dom.text)


def test_hostile_persona_is_text_and_nothing_runs(browser_dom: Dom) -> None:
    assert browser_dom.tags("script") == []
    assert browser_dom.tags("b") == []  # the experiment named "report-template-<b>bold</b>" stays text
    assert HOSTILE_PERSONA in browser_dom.text
    assert "report-template-<b>bold</b>" in browser_dom.text
    handlers = [
        name for _, attributes in browser_dom.elements for name in attributes if name.startswith("on")
    ]
    assert handlers == []


def test_screenshot_is_kept_as_an_artefact(page: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    result = run_chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        f"--screenshot={screenshot}",
        f"--window-size={WINDOW_SIZE}",
        page.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000, "a near-empty screenshot: the page did not render"


# ---------------------------------------------------------------- the HTML itself (no browser needed)


def test_page_is_self_contained(html: str) -> None:
    assert re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.IGNORECASE) is None
    assert re.search(r"\s(src|href)=", html) is None
    assert "@import" not in html and "url(" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_untrusted_text_is_escaped_everywhere(html: str) -> None:
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "significance &amp; are shown" in html  # notes too


def test_header_shows_window_filter_and_generated_time(html: str) -> None:
    assert "Jan 31, 2026 – Mar 1, 2026" in html and "(30 days)" in html
    assert 'data-testid="persona-filter">All personas<' in html
    assert "2026-03-02 06:30 UTC" in html
    assert WINDOW.start.isoformat() in html


def test_summary_counts_each_card_once(html: str) -> None:
    chips = re.findall(r'<li class="chip chip-\w+">([^<]+)</li>', html)
    assert chips == [
        "3 significant improvements",
        "2 significant declines",
        "9 without a significant change",
        "2 without data",
    ]


def test_missing_values_show_a_dash_and_the_reason(html: str) -> None:
    cac_card = html[html.index('data-kpi="cac"') :].split("</article>")[0]
    assert 'class="card-value">—<' in cac_card
    assert "no acquisition_cost events in the window" in cac_card


def test_colour_only_for_significant_changes(html: str) -> None:
    card_tag = re.compile(r'class="card tone-(\w+)[^"]*" data-testid="kpi-card" data-kpi="(\w+)"')
    tone_of = {kpi: tone for tone, kpi in card_tag.findall(html)}
    assert len(tone_of) == 16
    assert tone_of["conversion_rate"] == "good"  # significant and up, higher is better
    assert tone_of["time_to_value_minutes"] == "good"  # significant and down, lower is better
    assert tone_of["support_resolution_time"] == "bad"
    assert tone_of["task_completion_rate"] == "bad"
    assert tone_of["upsell_rate"] == "neutral"  # +20% but not significant: grey
    assert tone_of["cac"] == "neutral"


def test_rendering_is_deterministic(data: DashboardData, html: str) -> None:
    assert render_dashboard(data) == html


def test_minimal_data_renders_without_optional_sections() -> None:
    bare = DashboardData(window=WINDOW, persona="agency", generated_at=WINDOW.end, cards=[], persona_kpis={})
    page_html = render_dashboard(bare)
    assert 'data-testid="persona-filter">agency<' in page_html
    for absent in (
        'data-testid="persona-table"',
        'data-testid="metric-chart"',
        'data-testid="panel"',
        'id="notes-title"',
    ):
        assert absent not in page_html
    assert "No KPI values for this window." in page_html


def _cards_in_category_order(data: DashboardData) -> list[str]:
    order = ["business_success", "operational_ease", "user_success"]
    return [card.name for category in order for card in data.cards if card.category == category]

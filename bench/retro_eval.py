"""Retro evaluation: does the retro agent find what was planted, and only that?

Scenarios from the synthetic generator (SQLite files in a temporary directory):

- planted (one per seed): the demo's data — the v1.4.0 deployment that triples podcast_network report errors,
  survey respondents of that persona souring after it, the onboarding experiment with a real winner — and the
  demo's escalation replay. Planted (metric, persona) pairs: (error_rate, podcast_network), (nps,
  podcast_network) and the onboarding experiment.
- null (one per seed): the same users and days with nothing planted (no deployment effect, no experiments,
  respondents as usual).

Each scenario runs a sprint retro over its last 14 days with the rules synthesiser (and, when
FEEDBACKLOOP_LLM_BASE_URL is set, with the LLM too). Reported: recall of planted pairs among High/Medium insights,
false High insights on null, groundedness (insights that pass the grounding validator), LLM calls and tokens per
retro, and the wall time of the deterministic phase (a rules retro: resolve, gather, detect, map, synthesise,
validate, prioritise) at 1M events on SQLite and PostgreSQL (bench/kpis.py's cached 1M-event database).
Targets (issue 8): recall ≥ 90 %, 0 false High on null, 100 % grounded, ≤ 2 LLM calls, deterministic ≤ 2 s.

Writes bench/results/retro_eval.json and the table between the retro-eval markers in bench/README.md.

    .venv/bin/python bench/retro_eval.py [--seeds 3] [--users 2000] [--repeat 3] [--skip-1m] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from agents.retro.context import RetroContext  # noqa: E402
from agents.retro.runner import RetroRunner  # noqa: E402
from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from bench.ingest import postgres_base_url, postgres_schema  # noqa: E402
from bench.kpis import SYNTHETIC_END, cached_sqlite, load_events, log, vacuum_analyze  # noqa: E402
from feedbackloop.demo import run_demo  # noqa: E402
from feedbackloop.retro_agent import llm_config  # noqa: E402
from feedbackloop.settings import Settings  # noqa: E402
from store.database import Database  # noqa: E402
from tools.events.ingest import EventIngestor  # noqa: E402
from tools.retro.gather import GatherSettings  # noqa: E402
from tools.retro.grounding import validate  # noqa: E402
from tools.retro.model import InsightDraft, Signal, Synthesis  # noqa: E402
from tools.surveys.demo_responses import simulate_respondents  # noqa: E402
from tools.surveys.service import SurveyService  # noqa: E402
from tools.synthetic import SyntheticConfig, generate_events  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "retro_eval.json"
SPRINT_DAYS = 14
END = datetime(2026, 6, 1, tzinfo=UTC)
PLANTED_PERSONA = "podcast_network"
ONBOARDING_EXPERIMENT = "onboarding-flow"
TARGETS = {"recall": 0.9, "false_high": 0, "grounded": 1.0, "llm_calls": 2, "deterministic_seconds": 2.0}


def sprint_request(end: datetime) -> dict[str, Any]:
    start = end - timedelta(days=SPRINT_DAYS)
    return {"kind": "sprint", "start": start.isoformat(), "end": end.isoformat(), "approve": "auto"}


def run_retro(
    database: Database, end: datetime, settings: Settings | None = None
) -> tuple[dict[str, Any], float]:
    llm = llm_config(settings) if settings is not None else None
    runner = RetroRunner(RetroContext(database=database, sinks=[], llm=llm, gather=GatherSettings()))
    retro_id = runner.start(sprint_request(end))  # type: ignore[arg-type]
    started = time.perf_counter()
    result = runner.run(retro_id)
    return result, time.perf_counter() - started


# ---- scenarios ----


def planted_database(directory: Path, seed: int, users: int) -> tuple[Database, datetime]:
    url = f"sqlite:///{directory}/planted-{seed}.db"
    config = SyntheticConfig(users=users, days=90, seed=seed, end=END)
    run_demo(Console(file=io.StringIO()), database_url=url, config=config, reset=True, retro=False)
    return Database(url), END


def null_database(directory: Path, seed: int, users: int) -> tuple[Database, datetime]:
    database = Database(f"sqlite:///{directory}/null-{seed}.db")
    SurveyService(database).ensure_defaults()
    config = SyntheticConfig(users=users, days=90, seed=seed, end=END, deployments=())
    EventIngestor(database).ingest_stream(generate_events(config))
    simulate_respondents(SurveyService(database), until=END, regression=None, seed=seed)
    return database, END


# ---- scoring ----


def _high_medium_evidence(result: dict[str, Any]) -> list[dict[str, Any]]:
    signals = {signal["id"]: signal for signal in result["signals"]}
    cited = []
    for insight in result["insights"]:
        if insight["impact"] in ("High", "Medium"):
            cited += [signals[i] for i in insight["evidence_ids"] if i in signals]
    return cited


def planted_found(result: dict[str, Any]) -> dict[str, bool]:
    evidence = _high_medium_evidence(result)

    def about(metric_word: str) -> bool:
        return any(
            s.get("persona") == PLANTED_PERSONA and metric_word in str(s.get("metric") or "")
            for s in evidence
        )

    experiment = any(
        s["kind"] == "experiment_result" and s.get("subject") == ONBOARDING_EXPERIMENT for s in evidence
    )
    return {"error_rate/podcast_network": about("error"), "nps/podcast_network": about("nps"),
            f"experiment/{ONBOARDING_EXPERIMENT}": experiment}  # fmt: skip


def grounded_share(result: dict[str, Any]) -> tuple[int, int]:
    """(insights that pass the grounding validator on their own, all insights)."""
    signals = [Signal.from_dict(s) for s in result["signals"]]
    grounded = 0
    for insight in result["insights"]:
        check = validate(Synthesis(insights=[InsightDraft(**insight)], backlog_items=[]), signals)
        grounded += int(not check.issues)
    return grounded, len(result["insights"])


def score_scenarios(seeds: int, users: int, settings: Settings | None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="retro-eval-") as directory:
        for seed in range(1, seeds + 1):
            for kind, build in (("planted", planted_database), ("null", null_database)):
                log(f"scenario {kind} seed {seed}: building ({users:,} users, 90 days)")
                database, end = build(Path(directory), seed, users)
                for synthesis, used in (("rules", None), ("llm", settings)):
                    if synthesis == "llm" and used is None:
                        continue
                    result, seconds = run_retro(database, end, used)
                    grounded, insights = grounded_share(result)
                    found = planted_found(result) if kind == "planted" else {}
                    rows.append({
                        "scenario": kind, "seed": seed, "synthesis": result["synthesis"], "requested": synthesis,
                        "signals": len(result["signals"]), "insights": insights, "grounded": grounded,
                        "high": sum(i["impact"] == "High" for i in result["insights"]),
                        "medium": sum(i["impact"] == "Medium" for i in result["insights"]),
                        "backlog_items": len(result["backlog_items"]), "found": found,
                        "usage": result["usage"], "seconds": round(seconds, 3), "warnings": result["warnings"],
                    })  # fmt: skip
                    log(f"  {synthesis}: {rows[-1]['high']} High, {rows[-1]['medium']} Medium, found {found}")
                database.dispose()
    return {"rows": rows, **summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for synthesis in ("rules", "llm"):
        mine = [r for r in rows if r["requested"] == synthesis]
        if not mine:
            continue
        planted = [hit for r in mine if r["scenario"] == "planted" for hit in r["found"].values()]
        insights = sum(r["insights"] for r in mine)
        summary[synthesis] = {
            "recall": sum(planted) / len(planted) if planted else None,
            "false_high_on_null": sum(r["high"] for r in mine if r["scenario"] == "null"),
            "grounded": sum(r["grounded"] for r in mine) / insights if insights else 1.0,
            "llm_calls_max": max(r["usage"]["llm_calls"] for r in mine),
            "input_tokens_median": statistics.median(r["usage"]["input_tokens"] for r in mine),
            "output_tokens_median": statistics.median(r["usage"]["output_tokens"] for r in mine),
            "retro_seconds_median": statistics.median(r["seconds"] for r in mine),
        }
    return summary


# ---- the deterministic phase at 1M events ----


def deterministic_at_scale(repeat: int, skip_postgres: bool) -> dict[str, Any]:
    path, meta = cached_sqlite("1m")
    timings: dict[str, Any] = {"events": meta["events"]}
    with tempfile.TemporaryDirectory(prefix="retro-eval-1m-") as directory:
        copy = Path(directory) / "retro.db"
        shutil.copy(path, copy)  # the retro writes its own rows; the cache stays as built
        database = Database(f"sqlite:///{copy}")
        timings["sqlite"] = _repeat_retros(database, repeat)
        database.dispose()
    base_url = postgres_base_url()
    if skip_postgres or base_url is None:
        timings["postgresql"] = {
            "skipped": "no PostgreSQL (FEEDBACKLOOP_BENCH_POSTGRES_URL) or --skip-postgres"
        }
        return timings
    with postgres_schema(base_url) as (url, _schema):
        database = Database(url)
        log("1m: loading events into PostgreSQL")
        load_events(database, "1m")
        vacuum_analyze(database)
        timings["postgresql"] = _repeat_retros(database, repeat)
        database.dispose()
    return timings


def _repeat_retros(database: Database, repeat: int) -> dict[str, Any]:
    seconds = []
    for _ in range(repeat):
        result, elapsed = run_retro(database, SYNTHETIC_END)
        seconds.append(elapsed)
        log(f"  rules retro at 1M events: {elapsed:.2f} s ({len(result['signals'])} signals)")
    return {"seconds": [round(s, 3) for s in seconds], "median_seconds": round(statistics.median(seconds), 3)}


# ---- report ----


def table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Machine: {machine_label(machine)}; {machine['date_utc'][:10]}; load at start "
        f"{machine['load_average_at_start']}. {results['seeds']} seeds × (planted, null), "
        f"{results['users']:,} users × 90 days each; sprint retro over the last 14 days.",
        "",
        "| synthesis | recall of planted pairs (High/Medium) | false High on null | grounded insights | "
        "LLM calls (max) | tokens in/out (median) | retro wall time (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for synthesis, s in results["scenarios"].items():
        if synthesis == "rows":
            continue
        recall = "n/a" if s["recall"] is None else f"{s['recall']:.0%}"
        lines.append(
            f"| {synthesis} | {recall} (target ≥ 90 %) | {s['false_high_on_null']} (target 0) | "
            f"{s['grounded']:.0%} (target 100 %) | {s['llm_calls_max']} (target ≤ 2) | "
            f"{s['input_tokens_median']:.0f} / {s['output_tokens_median']:.0f} | {s['retro_seconds_median']:.2f} s |"
        )
    scale = results.get("deterministic_1m")
    if scale:
        lines += [
            "",
            f"Deterministic phase (a rules retro) at {scale['events']:,} events, median of the runs:",
            "",
        ]
        lines += ["| database | median | runs | target |", "|---|---|---|---|"]
        for name in ("sqlite", "postgresql"):
            entry = scale.get(name, {})
            if "median_seconds" in entry:
                runs = ", ".join(f"{s:.2f}" for s in entry["seconds"])
                lines.append(f"| {name} | {entry['median_seconds']:.2f} s | {runs} | ≤ 2 s |")
            elif entry:
                lines.append(f"| {name} | skipped: {entry['skipped']} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="rules retros at 1M events per database")
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    settings = Settings() if os.environ.get("FEEDBACKLOOP_LLM_BASE_URL") else None
    results: dict[str, Any] = {"machine": machine_facts(), "seeds": args.seeds, "users": args.users,
                               "llm": settings.llm_model if settings else None}  # fmt: skip
    with Progress(transient=True):
        results["scenarios"] = score_scenarios(args.seeds, args.users, settings)
    if not args.skip_1m:
        results["deterministic_1m"] = deterministic_at_scale(args.repeat, args.skip_postgres)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2, default=str) + "\n")
    replace_readme_block("retro-eval", table(results), heading="Retro evaluation (bench/retro_eval.py)")
    print(table(results))


if __name__ == "__main__":
    main()

"""Statistics benchmark: analyses per second of a 3-variant × 20-metric experiment, ours vs gbstats, same input.

gbstats runs in its own venv (tests/reference/gbstats_env.py) and times itself inside its process, so neither
side pays for process start-up or JSON. One "analysis" = every metric × treatment comparison of the experiment
(20 metrics × 2 treatments = 40 comparisons), frequentist relative, as GrowthBook analyses an experiment.
Also: the largest experiment (metrics × variants) our engine analyses in under 100 ms (median).

Writes bench/results/stats.json and the table between the stats markers in bench/README.md.

    .venv/bin/python bench/stats.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/stats.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from bench.common import machine_facts, machine_label, replace_readme_block  # noqa: E402
from tests.reference.gbstats_env import (  # noqa: E402
    ensure_gbstats_venv,
    gbstats_unavailable_reason,
    gbstats_versions,
    time_gbstats,
)
from tools.stats import AnalysisSettings, BinomialStatistic, MeanStatistic, MetricInput, analyze_metrics  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "stats.json"
METRICS, VARIANTS = 20, 3
TARGET_SPEEDUP = 5.0
BUDGET_SECONDS = 0.100


def experiment(metrics: int, variants: int, seed: int = 5) -> list[dict[str, Any]]:
    """Half conversion metrics, half revenue-like means; sufficient statistics drawn once, reused by both engines."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(metrics):
        arms = []
        for _ in range(variants):
            n = int(rng.integers(9_000, 11_000))
            if index % 2 == 0:
                arms.append({"n": n, "sum": int(rng.binomial(n, 0.1))})
            else:
                values = rng.lognormal(3, 1, 200)
                mean, second_moment = float(values.mean()), float((values**2).mean())
                arms.append({"n": n, "sum": mean * n, "sum_squares": second_moment * n})
        cases.append({"kind": "binomial" if index % 2 == 0 else "mean", "engine": "frequentist",
                      "difference": "relative", "alpha": 0.05, "one_sided": False, "sequential": False,
                      "sequential_tuning": 5000, "prior": None, "variants": arms})  # fmt: skip
    return cases


def our_inputs(cases: list[dict[str, Any]]) -> list[MetricInput]:
    settings = AnalysisSettings()
    inputs = []
    for index, case in enumerate(cases):
        if case["kind"] == "binomial":
            arms: list[Any] = [BinomialStatistic(a["n"], a["sum"]) for a in case["variants"]]
        else:
            arms = [MeanStatistic(a["n"], a["sum"], a["sum_squares"]) for a in case["variants"]]
        names = [f"v{i}" for i in range(len(arms))]
        inputs.append(MetricInput(f"m{index}", arms, names, settings))
    return inputs


def time_ours(cases: list[dict[str, Any]], repeat: int) -> list[float]:
    """Seconds per analysis, including building the statistics from the plain sums (what a caller does)."""
    analyze_metrics(our_inputs(cases))  # warm-up: imports, scipy's first calls
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        analyze_metrics(our_inputs(cases))
        seconds.append(time.perf_counter() - started)
    return seconds


def largest_within_budget(repeat: int) -> dict[str, Any]:
    """Double the number of metrics (3 variants each) until the median analysis time passes the budget."""
    metrics, best = 20, None
    while metrics <= 200_000:
        cases = experiment(metrics, VARIANTS, seed=metrics)
        median_seconds = statistics.median(time_ours(cases, max(3, repeat // 5)))
        if median_seconds > BUDGET_SECONDS:
            break
        best = {"metrics": metrics, "variants": VARIANTS, "comparisons": metrics * (VARIANTS - 1),
                "median_ms": round(median_seconds * 1000, 2)}  # fmt: skip
        metrics *= 2
    return best or {"metrics": 0, "variants": VARIANTS, "comparisons": 0, "median_ms": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed repetitions per engine")
    args = parser.parse_args()
    cases = experiment(METRICS, VARIANTS)
    ours = time_ours(cases, args.repeat)
    print(f"ours: median {statistics.median(ours) * 1000:.2f} ms per analysis", file=sys.stderr)
    if ensure_gbstats_venv() is None:
        sys.exit(
            f"gbstats is unavailable, so there is nothing to compare with: {gbstats_unavailable_reason()}"
        )
    theirs = time_gbstats(cases, repeat=args.repeat)
    print(f"gbstats: median {statistics.median(theirs) * 1000:.2f} ms per analysis", file=sys.stderr)
    largest = largest_within_budget(args.repeat)
    ours_per_second = 1 / statistics.median(ours)
    theirs_per_second = 1 / statistics.median(theirs)
    speedup = ours_per_second / theirs_per_second
    machine = machine_facts()
    results = {
        "machine": machine,
        "parameters": {
            "metrics": METRICS,
            "variants": VARIANTS,
            "repeat": args.repeat,
            "engine": "frequentist relative (Welch)",
            "gbstats": gbstats_versions(),
        },
        "ours_seconds": ours,
        "gbstats_seconds": theirs,
        "ours_analyses_per_second": ours_per_second,
        "gbstats_analyses_per_second": theirs_per_second,
        "speedup": speedup,
        "largest_within_100_ms": largest,
        "targets": {"speedup_at_least": TARGET_SPEEDUP, "speedup_met": speedup >= TARGET_SPEEDUP},
    }
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    label = machine_label(machine)
    status = "met" if speedup >= TARGET_SPEEDUP else "**missed**"
    table = "\n".join([
        "| figure | result | target | status | machine | date |",
        "|---|---|---|---|---|---|",
        f"| analyses/s, {METRICS} metrics × {VARIANTS} variants (median of {args.repeat}) | ours {ours_per_second:,.0f}"
        f" vs gbstats {theirs_per_second:,.0f} = **{speedup:.1f}×** | ≥ {TARGET_SPEEDUP:.0f}× gbstats | {status} "
        f"| {label} | {machine['date_utc'][:10]} |",
        f"| largest experiment analysed in < 100 ms (median) | {largest['metrics']:,} metrics × {VARIANTS} variants"
        f" = {largest['comparisons']:,} comparisons in {largest['median_ms']} ms | — | measured | {label} "
        f"| {machine['date_utc'][:10]} |",
    ])  # fmt: skip
    replace_readme_block("stats", table, heading="Statistics")
    print(table)


if __name__ == "__main__":
    main()

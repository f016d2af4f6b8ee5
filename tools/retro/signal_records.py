"""Signals read straight off gathered records: experiment results, escalations, survey themes and deployments.

experiment_result — an experiment with a winner, with a primary metric significant after its own correction
(frequentist p < its alpha; Bayesian chance to win ≥ 1 − alpha or ≤ alpha), that reached power, or that was
stopped with a decision in the window. It is about the winner (or the shipped variant) on the first primary
metric where that variant is significant, else about the most significant primary result; direction is improved
when a non-control variant won or shipped, worsened when that result is significantly against the variant.

escalation — each escalation opened or resolved in the window, with the numbers of its evidence; worsened when it
opened in the window, improved when it only resolved. `significant` says it fired (its rule's own test held).

survey_theme — recurring terms per persona in redacted free text (tools.retro.themes); up to three example
comments in `text`. The comments are untrusted: they travel only in `text` (and the term in facts), never in
`detail`.

deployment — each deployment in the window, with the ids of the signals attributed to it and, when there are
any, the numbers (metric, persona, value, baseline, change) of the one with the largest change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tools.retro.attribution import deployment_at
from tools.retro.model import Signal
from tools.retro.themes import themes

if TYPE_CHECKING:
    from tools.retro.gather import GatherSettings

SHIP_PREFIX = "ship:"


def experiment_signals(family: Mapping[str, Any] | None) -> list[Signal]:
    found = (_experiment_signal(e) for e in (family or {}).get("experiments", []))
    return [signal for signal in found if signal is not None]


def _significant(effect: Mapping[str, Any], alpha: float, engine: str) -> int:
    """+1 significantly up, −1 significantly down, 0 neither (the sign of the effect, not of the verdict)."""
    if effect.get("error") or effect.get("effect") is None:
        return 0
    if engine == "bayesian":
        chance = effect.get("chance_to_win")
        return 0 if chance is None else (1 if chance >= 1 - alpha else -1 if chance <= alpha else 0)
    p_value = effect.get("p_value")
    if p_value is None or p_value >= alpha or effect["effect"] == 0:
        return 0
    return 1 if effect["effect"] > 0 else -1


def _experiment_signal(experiment: Mapping[str, Any]) -> Signal | None:
    results = experiment.get("results") or {}
    primary = [m for m in results.get("metrics", []) if m.get("role") == "primary" and len(m["variants"]) > 1]
    if not primary:
        return None
    alpha, engine = float(experiment["alpha"]), str(experiment["engine"])
    decision = experiment.get("decision") or ""
    shipped = decision[len(SHIP_PREFIX) :] if decision.startswith(SHIP_PREFIX) else None
    winner = results.get("winner")
    power = results.get("power") or {}
    decided = experiment.get("in_window") == "stopped" and bool(decision)
    tested = [(m, v, _significant(v, alpha, engine)) for m in primary for v in m["variants"][1:]]
    if not (winner or power.get("reached") is True or decided or any(s for _, _, s in tested)):
        return None
    chosen = winner or shipped
    pool = [t for t in tested if t[1]["name"] == chosen] if chosen else []
    metric, effect, verdict = next((t for t in pool if t[2]), pool[0]) if pool else min(tested, key=_strength)
    control = metric["variants"][0]
    against = verdict != 0 and (verdict < 0) != bool(metric.get("lower_is_better"))
    direction = "improved" if chosen and chosen != control["name"] else "worsened" if against else "neutral"
    units: Mapping[str, int] = results.get("units") or {}
    facts: dict[str, float | int | str] = {
        "winning_variant": winner or shipped or "none", "experiment_type": str(experiment["type"]),
        "decision": decision or "none", "variant": str(effect["name"]), "engine": engine,
        "power": _power_status(power.get("reached")),
        "srm": "yes" if results.get("srm") else "no",
        **{f"users_{name}": int(count) for name, count in units.items()},
    }  # fmt: skip
    for name, number in (("lift", effect.get("effect")), ("chance_to_win", effect.get("chance_to_win")),
                         ("srm_p_value", results.get("srm_p_value")),
                         ("confidence_level", results.get("confidence_level"))):  # fmt: skip
        if number is not None:
            facts[name] = float(number)
    if effect.get("ci") and None not in effect["ci"]:
        facts.update(ci_low=float(effect["ci"][0]), ci_high=float(effect["ci"][1]))
    key = str(experiment["key"])
    return Signal(
        id="", kind="experiment_result", metric=str(metric["metric"]), persona=None, value=effect.get("mean"),
        baseline=control.get("mean"), change=effect.get("effect"), p_value=effect.get("p_value"),
        detail=_experiment_detail(experiment, metric, effect, winner, decision), unit=None,
        n=int(units.get(str(effect["name"]), effect.get("n") or 0)), baseline_n=int(units.get(control["name"], 0)),
        direction=direction, significant=bool(winner) or verdict != 0, affected_users=int(sum(units.values())),
        facts=facts, subject=key,
    )  # fmt: skip


def _power_status(reached: object) -> str:
    return "reached" if reached is True else "not reached" if reached is False else "unknown"


def _strength(item: tuple[Mapping[str, Any], Mapping[str, Any], int]) -> tuple[int, float]:
    effect = item[1]
    p_value = effect.get("p_value")
    if p_value is None:  # Bayesian: closeness of the chance to win to 0 or 1
        chance = effect.get("chance_to_win")
        p_value = 1.0 if chance is None else 1 - abs(2 * chance - 1)
    return (0 if item[2] else 1, float(p_value))


def _experiment_detail(
    experiment: Mapping[str, Any], metric: Mapping[str, Any], effect: Mapping[str, Any], winner: str | None,
    decision: str,
) -> str:  # fmt: skip
    verdict = f"winner {winner}" if winner else "no winner"
    if decision:
        verdict += f", decision {decision}"
    lift = f"{effect['effect']:+.1%}" if effect.get("effect") is not None else "n/a"
    return (
        f"experiment {experiment['key']} ({experiment['type']}, {experiment['status']}, "
        f"{experiment['in_window']} in the window): {verdict}; primary metric {metric['metric']}: "
        f"{effect['name']} vs {metric['variants'][0]['name']} lift {lift}"
    )


def escalation_signals(
    family: Mapping[str, Any] | None,
    drafts: Sequence[Signal],
    links: Sequence[int | None],
    deployments: Sequence[Mapping[str, Any]],
    bake_hours: float,
) -> Iterator[tuple[Signal, int | None]]:
    """Escalation signals with the deployment each is attributed to: the one its metric change (same metric
    and persona) is attributed to, else the one whose bake window it opened in."""
    for escalation in (family or {}).get("escalations", []):
        activity = escalation["activity"]
        if "opened" not in activity and "resolved" not in activity:
            continue
        evidence = (escalation.get("evidence") or [{}])[0]
        link = None
        if "opened" in activity:
            same = [
                links[i]
                for i, draft in enumerate(drafts)
                if draft.kind == "metric_change" and links[i] is not None
                and (draft.metric, draft.persona) == (escalation["metric"], escalation["persona"])
            ]  # fmt: skip
            link = (
                same[0]
                if same
                else deployment_at(datetime.fromisoformat(escalation["opened_at"]), deployments, bake_hours)
            )
        facts: dict[str, float | int | str] = {
            "severity": str(escalation["severity"]), "status": str(escalation["status"]),
            "type": str(escalation["type"]), "rule_id": str(escalation["rule_id"]),
            "opened_at": str(escalation["opened_at"]), "fired_at": escalation["firing_at"] or "never",
            "activity": ",".join(activity),
        }  # fmt: skip
        if escalation.get("resolved_at"):
            facts["resolved_at"] = str(escalation["resolved_at"])
        direction = "worsened" if "opened" in activity else "improved"
        yield Signal(
            id="", kind="escalation", metric=escalation["metric"], persona=escalation["persona"],
            value=evidence.get("value"), baseline=evidence.get("baseline"), change=evidence.get("change"),
            p_value=evidence.get("p_value"),
            detail=(f"escalation {escalation['type']} ({escalation['severity']}) on {escalation['metric']} for "
                    f"{escalation['persona']}: {' and '.join(a for a in activity if a != 'firing')} in the window, "
                    f"now {escalation['status']}"),
            n=evidence.get("n"), direction=direction, significant=escalation["firing_at"] is not None,
            affected_users=evidence.get("n"), facts=facts, subject=str(escalation["id"]),
        ), link  # fmt: skip


def theme_signals(family: Mapping[str, Any] | None) -> list[Signal]:
    signals = []
    for group in (family or {}).get("comments", []):
        texts = [str(t["text"]) for t in group["texts"]]
        for theme in themes(texts):
            signals.append(Signal(
                id="", kind="survey_theme", metric=None, persona=group["persona"], value=None, baseline=None,
                change=None, p_value=None,
                detail=(f"a recurring theme in {group['persona']} free-text survey answers: {theme.mentions} of "
                        f"the {theme.comments} newest comments in the window (term in facts, examples in text)"),
                direction="neutral", text=theme.examples,
                facts={"theme": theme.term, "mentions": theme.mentions, "comments": theme.comments},
            ))  # fmt: skip
    return signals


def deployment_signal(
    signal_id: str, deployment: Mapping[str, Any], attributed: Sequence[Signal], settings: GatherSettings
) -> Signal:
    version = str(deployment.get("version") or "")
    facts: dict[str, float | int | str] = {
        "deployed_at": str(deployment.get("deployed_at")), "service": str(deployment.get("service") or "unknown"),
        "environment": str(deployment.get("environment") or "unknown"), "bake_hours": settings.bake_hours,
        "attributed_count": len(attributed),
    }  # fmt: skip
    if attributed:
        facts["attributed_signals"] = ",".join(s.id for s in attributed)
    measured = [s for s in attributed if s.change is not None]
    if not measured:
        detail = f"deployment {version} at {facts['deployed_at']}: no change started within {settings.bake_hours:g} h"
        return Signal(
            id=signal_id, kind="deployment", metric=None, persona=None, value=None, baseline=None, change=None,
            p_value=None, detail=detail, direction="neutral", facts=facts, subject=version,
        )  # fmt: skip
    strongest = max(measured, key=lambda s: abs(s.change or 0.0))
    facts["strongest_signal"] = strongest.id
    detail = (
        f"deployment {version} at {facts['deployed_at']}: {len(attributed)} change(s) started within "
        f"{settings.bake_hours:g} h ({facts['attributed_signals']}); the largest, {strongest.id}, is "
        f"{strongest.metric} for {strongest.persona or 'everyone'}"
    )
    return Signal(
        id=signal_id, kind="deployment", metric=strongest.metric, persona=strongest.persona,
        value=strongest.value, baseline=strongest.baseline, change=strongest.change, p_value=strongest.p_value,
        detail=detail, unit=strongest.unit, n=strongest.n, baseline_n=strongest.baseline_n,
        direction=strongest.direction, significant=strongest.significant, affected_users=strongest.affected_users,
        facts=facts, subject=version,
    )  # fmt: skip

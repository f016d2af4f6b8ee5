"""The alert state machine of one label set (Prometheus semantics), as a pure function of the last state.

inactive → pending (condition true, `for` not yet elapsed) → firing → resolved (back to inactive). A pending
instance whose condition turns false resets; `keep_firing_for` keeps a firing one alive through brief gaps; a
firing instance resolves only when the recovery threshold is met (hysteresis). Without data an instance is
`no_data` — a firing one stays firing (missing data is not recovery). After a manual resolve the instance is
`suppressed` until its condition turns false once, so resolving a still-true condition does not re-page at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from tools.escalation.conditions import Judgement

InstanceState = Literal["inactive", "pending", "firing", "no_data"]
Transition = Literal["none", "pending", "fired", "reset", "resolved", "still_firing", "still_pending"]


@dataclass(frozen=True, slots=True)
class Instance:
    state: InstanceState = "inactive"
    active_since: datetime | None = None  # when the condition became true (start of pending)
    last_true_at: datetime | None = None
    suppressed: bool = False


def step(
    instance: Instance, judgement: Judgement, at: datetime, *, for_minutes: int, keep_firing_for_minutes: int
) -> tuple[Instance, Transition]:
    if judgement.no_data:
        if instance.state == "firing":
            return instance, "still_firing"
        if instance.state == "pending":
            return Instance("no_data", suppressed=instance.suppressed), "reset"
        return replace(instance, state="no_data"), "none"
    if instance.state == "firing":
        if not judgement.recovered:
            return replace(instance, last_true_at=at), "still_firing"
        keep = timedelta(minutes=keep_firing_for_minutes)
        if instance.last_true_at is not None and at - instance.last_true_at < keep:
            return instance, "still_firing"
        return Instance("inactive"), "resolved"
    if not judgement.triggered:
        reset = instance.state == "pending"
        return Instance("inactive"), "reset" if reset else "none"
    if instance.suppressed:
        return replace(instance, state="inactive", last_true_at=at), "none"
    if instance.state == "pending":
        assert instance.active_since is not None
        if at - instance.active_since >= timedelta(minutes=for_minutes):
            return Instance("firing", instance.active_since, at), "fired"
        return replace(instance, last_true_at=at), "still_pending"
    if for_minutes == 0:
        return Instance("firing", at, at), "fired"
    return Instance("pending", at, at), "pending"

"""The planted incident the triage tests share: podcast_network error_rate quiet for a fortnight, then a spike
that two rules (high and critical) catch; v1.3.9 deployed long before, v1.4.0 the day the change began."""

from __future__ import annotations

from store.database import Database
from tests.escalation.support import Plant, day, rule, service

CHECK_AT = day(7, hours=3)


def plant_incident(database: Database, *, check: bool = True) -> list[str]:
    """The ids of the two escalations the check at CHECK_AT opens (with `check=False`: the data and the two rules,
    no check yet)."""
    plant = Plant(database)
    for index in range(-7, 7):
        plant.rate("podcast_network", index, 0)
    plant.rate("podcast_network", 7, 4)
    plant.deployment("v1.3.9", day(2))
    plant.deployment("v1.4.0", day(6, hours=2))
    checks = service(database, rule(), rule("errors_severe", severity="critical", threshold=2.0))
    return checks.check(at=CHECK_AT).opened if check else []

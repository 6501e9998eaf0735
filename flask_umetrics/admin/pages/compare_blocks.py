"""The numbers each report page compares with the previous period (``date_range.py`` runs the
report over it): a few headline numbers per report, taken from the REST answers as they are."""

from __future__ import annotations

from typing import Any

from .date_range import Measure


def funnel_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Persons reaching each step, and the overall conversion."""
    measures: list[Measure] = []
    for index, step in enumerate(now["steps"]):
        earlier = before["steps"][index]["count"] if index < len(before["steps"]) else None
        measures.append((f"{index + 1}. {step['event']}", step["count"], earlier, None))
    if now["steps"] and before["steps"]:
        last, earlier_last = now["steps"][-1], before["steps"][-1]
        measures.append(
            (
                "overall conversion",
                last["conversion_from_start"],
                earlier_last["conversion_from_start"],
                "percent",
            )
        )
    return measures

"""The numbers each report page compares with the previous period (``date_range.py`` runs the
report over it): a few headline numbers per report, taken from the REST answers as they are."""

from __future__ import annotations

from typing import Any

from ...queries.lifecycle import STATUSES
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
                "Overall conversion",
                last["conversion_from_start"],
                earlier_last["conversion_from_start"],
                "percent",
            )
        )
    return measures


def funnel_trends_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Persons entering and converting over the range, and the overall conversion (converted
    over entered, as the points' rates are)."""

    def totals(answer: dict[str, Any]) -> tuple[int, int, float | None]:
        entered = sum(p["entered"] for p in answer["points"])
        converted = sum(p["converted"] for p in answer["points"])
        return entered, converted, converted / entered if entered else None

    (entered, converted, rate), (entered_before, converted_before, rate_before) = (
        totals(now),
        totals(before),
    )
    return [
        ("Entered", entered, entered_before, None),
        ("Converted", converted, converted_before, None),
        ("Overall conversion", rate, rate_before, "percent"),
    ]


def funnel_time_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Persons converting between the two steps, and their average and median time."""
    return [
        ("Converted", now["converted"], before["converted"], None),
        ("Average time", now["average_seconds"], before["average_seconds"], "duration"),
        ("Median time", now["median_seconds"], before["median_seconds"], "duration"),
    ]


def summary_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """The overview's summary numbers (events, active persons, new persons, sessions)."""
    names = ("total_events", "dau", "wau", "mau", "new_persons", "sessions")
    return [(name, now[name], before[name], None) for name in names]


def attribution_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Conversions and credited value in all, then conversions per channel (or value)."""
    earlier = {row["key"]: row["conversions"] for row in before["rows"]}
    return [
        ("conversions", now["conversions"], before["conversions"], None),
        (
            "credited_value",
            sum(row["value"] for row in now["rows"]),
            sum(row["value"] for row in before["rows"]),
            None,
        ),
        *(
            (f"{row['key']}", row["conversions"], earlier.get(row["key"]), None)
            for row in now["rows"]
        ),
    ]


def paths_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Persons per transition of each step (``step 1: a → b``), matched by step and events."""
    earlier = {
        (step["step"], t["from"], t["to"]): t["persons"]
        for step in before["steps"]
        for t in step["transitions"]
    }
    return [
        (
            f"Step {step['step']}: {t['from']} → {t['to']}",
            t["persons"],
            earlier.get((step["step"], t["from"], t["to"])),
            None,
        )
        for step in now["steps"]
        for t in step["transitions"]
    ]


def lifecycle_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Each status summed over the periods."""
    return [
        (
            status,
            sum(p[status] for p in now["periods"]),
            sum(p[status] for p in before["periods"]),
            None,
        )
        for status in STATUSES
    ]


def stickiness_measures(now: dict[str, Any], before: dict[str, Any]) -> list[Measure]:
    """Persons who did it at all, then persons per number of periods (those with persons in
    either range: a 30-day range has 30 bars, mostly empty)."""
    earlier = {bar["periods"]: bar["persons"] for bar in before["bars"]}
    return [
        ("persons", now["persons"], before["persons"], None),
        *(
            (
                f"{bar['periods']} {now['interval']}{'' if bar['periods'] == 1 else 's'}",
                bar["persons"],
                earlier.get(bar["periods"]),
                None,
            )
            for bar in now["bars"]
            if bar["persons"] or earlier.get(bar["periods"])
        ),
    ]


def retention_measures(
    now: dict[str, Any], before: dict[str, Any], shares: tuple[list[Any], list[Any]]
) -> list[Measure]:
    """Persons in the cohorts, then the retention curve's share of each period after the
    first (``shares``: the page's curve over this and over the previous range)."""
    sizes = (sum(c["size"] for c in now["cohorts"]), sum(c["size"] for c in before["cohorts"]))
    measures: list[Measure] = [("Persons in cohorts", *sizes, None)]
    for k in range(1, now["periods"] + 1):
        earlier = shares[1][k] if k < len(shares[1]) else None
        if shares[0][k] is None and earlier is None:
            continue  # no cohort has reached it in either range
        label = f"{now['period'].capitalize()} {k} retained"
        measures.append((label, shares[0][k], earlier, "percent"))
    return measures

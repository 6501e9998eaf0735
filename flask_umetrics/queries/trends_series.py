"""Several trend series in one report, lettered ``A``, ``B``, ... in order, and optionally a
formula over them (``A/B*100``) computed per breakdown value and bucket.

Each series is ``trends()`` with its own event, math and property and the report's common
inputs (range, interval, filters, breakdown). Without a formula the answer holds every series'
results, each labelled with its letter; with one, one result per breakdown value (the union of
the series' values, in order of appearance; a value a series lacks is 0 there), labelled with
the formula. ``cumulative`` applies to the formula's values (or to each additive series)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import accumulate
from string import ascii_uppercase

from ..errors import ValidationError
from .compare import check_compare, previous_context
from .context import ReportContext
from .formula import parse_formula
from .trends import Point, TrendSeries, TrendsResult, trends

MAX_SERIES = 10


@dataclass(frozen=True)
class SeriesSpec:
    event: str | None = None
    math: str = "total"
    property: str | None = None


def trends_series(
    ctx: ReportContext,
    series: list[SeriesSpec],
    *,
    formula: str | None = None,
    interval: str = "day",
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    cumulative: bool = False,
    compare: str | None = None,
    breakdown_type: str = "event",
) -> TrendsResult:
    if not 1 <= len(series) <= MAX_SERIES:
        raise ValidationError("series", f"give 1 to {MAX_SERIES} series")
    check_compare(compare)
    letters = ascii_uppercase[: len(series)]
    evaluate = None if formula is None else parse_formula(formula, letters)
    run_each = cumulative and evaluate is None  # with a formula: accumulate its values
    parts = [
        trends(
            ctx,
            event=spec.event,
            math=spec.math,
            property=spec.property,
            interval=interval,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            cumulative=run_each,
            breakdown_type=breakdown_type,
        )
        for spec in series
    ]
    if evaluate is None or formula is None:
        results = [
            dataclasses.replace(result, label=letter)
            for letter, part in zip(letters, parts, strict=True)
            for result in part.results
        ]
        math = "series"
    else:
        groups: list[str | None] = []
        for part in parts:
            groups += [r.breakdown_value for r in part.results if r.breakdown_value not in groups]
        labels = [point.time for point in parts[0].results[0].series]
        found = {
            (letter, r.breakdown_value): r.series
            for letter, part in zip(letters, parts, strict=True)
            for r in part.results
        }
        results = []
        for group in groups:
            values = []
            for index in range(len(labels)):
                inputs = {
                    letter: float(found[letter, group][index].value)
                    if (letter, group) in found
                    else 0.0
                    for letter in letters
                }
                values.append(evaluate(inputs))
            if cumulative:
                values = list(accumulate(values))
            points = [Point(t, v) for t, v in zip(labels, values, strict=True)]
            results.append(TrendSeries(group, points, None, formula))
        math = "formula"
    previous = None
    if compare == "previous":
        previous = trends_series(
            previous_context(ctx, interval),
            series,
            formula=formula,
            interval=interval,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            cumulative=cumulative,
            breakdown_type=breakdown_type,
        )
    return TrendsResult(
        interval,
        math,
        results,
        None,
        breakdown,
        ctx.sample,
        previous,
        formula=formula,
        breakdown_type=None if breakdown is None else breakdown_type,
    )

"""Per-variant metric summaries of an experiment, computed in SQL from exposures and events.

Semantics (docs/flags-experiments.md, "Results"):

- The unit is the *person*: each exposure's ``subject_id`` is resolved through
  ``umetrics_person_distinct_ids`` (a subject without a person row is its own unit). A person
  exposed under several distinct ids counts once; its first exposure is the earliest one. A unit
  whose exposures name more than one variant is left out of everything and only counted in
  :attr:`ExposureCounts.multiple_variants`. Units of variants not in ``variant_keys`` (e.g. a
  variant removed from the definition) are not reported.
- Qualifying events of a unit: named ``metric.event``, matching every filter, from any of the
  person's distinct ids, with ``first_exposure <= ts`` (``<= first_exposure + window`` when the
  metric has a window; ``< until_ts`` when given). Active and inactive events count alike.
- ``conversion``: 1 if the unit has a qualifying event, else 0. ``mean``: the sum of the numeric
  ``metric.property`` over qualifying events (missing or non-numeric values add 0).
- Per variant: ``n``, mean, sample standard deviation (ddof=1) and total. The deviation is
  two-pass (mean first, then the sum of squared deviations), so it stays exact where
  ``sum(x^2) - sum(x)^2/n`` would cancel, and SQLite and PostgreSQL agree.

Each function runs one statement; pass it a connection from ``metadata_connection()``. On a
ClickHouse event store the units are read on that connection and their events in ClickHouse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Connection,
    Double,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql import ColumnElement

from ..db.tables import events, exposures, person_distinct_ids
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..queries.sql import prop_number
from .model import MetricSpec

_MICROS = 1_000_000


@dataclass(frozen=True)
class MetricSummary:
    """One variant's metric: exposed units, mean and sample sd of the per-unit values, total."""

    variant: str
    n: int
    mean: float
    stddev: float
    total: float


@dataclass(frozen=True)
class ExposureCounts:
    """Exposed units per configured variant, and the units excluded for seeing several."""

    per_variant: dict[str, int]
    multiple_variants: int
    #: The earliest first exposure (microseconds), None if nobody: where the traffic estimate
    #: starts. Not part of equality (two counts are equal by their numbers).
    first_ts: int | None = field(default=None, compare=False)


def _check_target(
    scope_id: Any, experiment_key: Any, bucket_version: Any, variant_keys: Any
) -> list[str]:
    if not isinstance(scope_id, str) or not 0 < len(scope_id) <= 64:
        raise ValidationError("scope_id", "must be a string of 1-64 characters")
    if not isinstance(experiment_key, str) or not 0 < len(experiment_key) <= 100:
        raise ValidationError("experiment_key", "must be a string of 1-100 characters")
    if isinstance(bucket_version, bool) or not isinstance(bucket_version, int):
        raise ValidationError("bucket_version", "must be an integer")
    if isinstance(variant_keys, (str, bytes)) or not isinstance(variant_keys, Sequence):
        raise ValidationError("variant_keys", "must be a list of variant keys")
    keys = list(variant_keys)
    if not keys:
        raise ValidationError("variant_keys", "name at least one variant")
    if any(not isinstance(k, str) or not 0 < len(k) <= 100 for k in keys):
        raise ValidationError(
            "variant_keys", "each variant key must be a string of 1-100 characters"
        )
    if len(set(keys)) != len(keys):
        raise ValidationError("variant_keys", "variant keys must be unique")
    return keys


def _units(scope_id: str, experiment_key: str, bucket_version: int) -> CTE:
    """One row per exposed unit: ``person_id`` (NULL for a subject without a person row),
    ``lone`` (that subject, else NULL), the smallest and largest variant seen, first exposure."""
    person = person_distinct_ids.c.person_id
    lone = case((person.is_(None), exposures.c.subject_id))
    exposed = (
        select(person.label("person_id"), lone.label("lone"), exposures.c.variant, exposures.c.ts)
        .select_from(exposures)
        .outerjoin(
            person_distinct_ids,
            and_(
                person_distinct_ids.c.scope_id == exposures.c.scope_id,
                person_distinct_ids.c.distinct_id == exposures.c.subject_id,
            ),
        )
        .where(
            exposures.c.scope_id == scope_id,
            exposures.c.experiment_key == experiment_key,
            exposures.c.bucket_version == bucket_version,
        )
        .subquery("exposed")
    )
    return (
        select(
            exposed.c.person_id,
            exposed.c.lone,
            func.min(exposed.c.variant).label("variant"),
            func.max(exposed.c.variant).label("last_variant"),
            func.min(exposed.c.ts).label("first_ts"),
        )
        .group_by(exposed.c.person_id, exposed.c.lone)
        .cte("units")
    )


def exposure_counts(
    connection: Connection,
    *,
    scope_id: str,
    experiment_key: str,
    bucket_version: int,
    variant_keys: Sequence[str],
) -> ExposureCounts:
    """Units per variant (the input of the SRM check), each configured variant present."""
    keys = _check_target(scope_id, experiment_key, bucket_version, variant_keys)
    units = _units(scope_id, experiment_key, bucket_version)
    single = case((units.c.variant == units.c.last_variant, units.c.variant))
    query = select(
        single.label("variant"), func.count().label("n"), func.min(units.c.first_ts)
    ).group_by(single)
    per_variant = dict.fromkeys(keys, 0)
    multiple = 0
    first: list[int] = []
    for variant, n, first_ts in connection.execute(query):
        if variant is None:
            multiple = int(n)
        elif variant in per_variant:
            per_variant[variant] = int(n)
            first.append(int(first_ts))
    return ExposureCounts(
        per_variant=per_variant, multiple_variants=multiple, first_ts=min(first, default=None)
    )


def _qualifying(
    scope_id: str, metric: MetricSpec, first_ts: Any, distinct_id: Any, until_ts: int | None
) -> ColumnElement[bool]:
    """The join condition from a unit's distinct id to its events that count for ``metric``."""
    conditions = [
        events.c.scope_id == scope_id,
        events.c.distinct_id == distinct_id,
        events.c.event == metric.event,
        events.c.ts >= first_ts,
        *(f.condition(events.c.properties) for f in metric.filters),
    ]
    if metric.window_seconds is not None:
        window = literal(metric.window_seconds * _MICROS, BigInteger)
        conditions.append(events.c.ts <= first_ts + window)
    if until_ts is not None:
        conditions.append(events.c.ts < literal(until_ts, BigInteger))
    return and_(*conditions)


def metric_summaries(
    connection: Connection,
    *,
    scope_id: str,
    experiment_key: str,
    bucket_version: int,
    variant_keys: Sequence[str],
    metric: MetricSpec,
    until_ts: int | None = None,
) -> list[MetricSummary]:
    """n, mean, sample sd and total of ``metric`` per variant, in ``variant_keys`` order."""
    keys = _check_target(scope_id, experiment_key, bucket_version, variant_keys)
    if not isinstance(metric, MetricSpec):
        raise ValidationError("metric", "must be a MetricSpec")
    if until_ts is not None and (isinstance(until_ts, bool) or not isinstance(until_ts, int)):
        raise ValidationError("until_ts", "must be microseconds since the epoch (an integer)")

    units = _units(scope_id, experiment_key, bucket_version)
    kept = (
        select(units.c.person_id, units.c.lone, units.c.variant, units.c.first_ts)
        .where(units.c.variant == units.c.last_variant, units.c.variant.in_(keys))
        .cte("kept")
    )
    # Every distinct id of each unit: a person's ids from the map, a lone subject's own id.
    unit_ids = union_all(
        select(kept, person_distinct_ids.c.distinct_id).join(
            person_distinct_ids,
            and_(
                person_distinct_ids.c.person_id == kept.c.person_id,
                person_distinct_ids.c.scope_id == scope_id,
            ),
        ),
        select(kept, kept.c.lone.label("distinct_id")).where(kept.c.person_id.is_(None)),
    ).cte("unit_ids")

    if is_clickhouse():
        return _summaries_from_clickhouse(connection, scope_id, keys, unit_ids, metric, until_ts)
    if metric.kind == "conversion":
        value: ColumnElement[Any] = case((func.count(events.c.id) > 0, 1), else_=0)
    else:
        assert metric.property is not None  # guaranteed by MetricSpec
        value = func.coalesce(func.sum(prop_number(events.c.properties, metric.property)), 0)
    per_unit = (
        select(unit_ids.c.variant, value.cast(Double).label("x"))
        .select_from(
            unit_ids.outerjoin(
                events,
                _qualifying(
                    scope_id, metric, unit_ids.c.first_ts, unit_ids.c.distinct_id, until_ts
                ),
            )
        )
        .group_by(unit_ids.c.person_id, unit_ids.c.lone, unit_ids.c.variant)
        .cte("per_unit")
    )
    # Two passes: the mean per variant, then the squared deviations from it.
    first = (
        select(
            per_unit.c.variant,
            func.count().label("n"),
            func.sum(per_unit.c.x).label("total"),
            func.sum(per_unit.c.x)
            .op("/", return_type=Double)(func.count().cast(Double))
            .label("mean"),
        )
        .group_by(per_unit.c.variant)
        .cte("first_pass")
    )
    deviation = per_unit.c.x - first.c.mean
    query = (
        select(
            first.c.variant,
            first.c.n,
            first.c.total,
            first.c.mean,
            func.sum(deviation * deviation).label("squares"),
        )
        .select_from(first.join(per_unit, per_unit.c.variant == first.c.variant))
        .group_by(first.c.variant, first.c.n, first.c.total, first.c.mean)
    )
    found = {row.variant: row for row in connection.execute(query)}
    summaries = []
    for key in keys:
        row = found.get(key)
        if row is None:
            summaries.append(MetricSummary(key, 0, 0.0, 0.0, 0.0))
            continue
        n = int(row.n)
        stddev = math.sqrt(float(row.squares) / (n - 1)) if n >= 2 else 0.0
        summaries.append(MetricSummary(key, n, float(row.mean), stddev, float(row.total)))
    return summaries


def _summaries_from_clickhouse(
    connection: Connection,
    scope_id: str,
    keys: list[str],
    unit_ids: CTE,
    metric: MetricSpec,
    until_ts: int | None,
) -> list[MetricSummary]:
    """The units from SQL, their events from ClickHouse; the two-pass mean and deviation per
    variant as the SQL statement computes them."""
    from ..engines.clickhouse.metrics import unit_values

    numbering: dict[tuple[Any, Any], int] = {}
    variants: list[str] = []
    firsts: list[int] = []
    distinct_ids: list[str] = []
    owners: list[int] = []
    query = select(
        unit_ids.c.person_id,
        unit_ids.c.lone,
        unit_ids.c.variant,
        unit_ids.c.first_ts,
        unit_ids.c.distinct_id,
    )
    for person_id, lone, variant, first_ts, distinct_id in connection.execute(query):
        unit = numbering.get((person_id, lone))
        if unit is None:
            unit = numbering[(person_id, lone)] = len(numbering) + 1
            variants.append(variant)
            firsts.append(int(first_ts))
        distinct_ids.append(distinct_id)
        owners.append(unit)
    found = unit_values(scope_id, metric, distinct_ids, owners, firsts, until_ts)
    values: dict[str, list[float]] = {}
    for unit, variant in enumerate(variants, start=1):
        hits, amount = found.get(unit, (0, 0.0))
        x = (1.0 if hits > 0 else 0.0) if metric.kind == "conversion" else amount
        values.setdefault(variant, []).append(x)
    summaries = []
    for key in keys:
        xs = values.get(key, [])
        if not xs:
            summaries.append(MetricSummary(key, 0, 0.0, 0.0, 0.0))
            continue
        n = len(xs)
        total = sum(xs)
        mean = total / n
        squares = sum((x - mean) * (x - mean) for x in xs)
        stddev = math.sqrt(squares / (n - 1)) if n >= 2 else 0.0
        summaries.append(MetricSummary(key, n, mean, stddev, total))
    return summaries


__all__ = ["ExposureCounts", "MetricSummary", "exposure_counts", "metric_summaries"]

"""Experiment metrics per variant on hand-built exposures and events, and against a reference."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from flask_umetrics import identify
from flask_umetrics.db.tables import exposures, person_distinct_ids
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.flags.metrics import (
    ExposureCounts,
    MetricSummary,
    exposure_counts,
    metric_summaries,
)
from flask_umetrics.flags.model import MetricSpec
from flask_umetrics.queries.connection import metadata_connection
from flask_umetrics.queries.filters import PropertyFilter
from flask_umetrics.state import current_state

from .events_data import at, clear_events, load

pytestmark = pytest.mark.event_stores

VARIANTS = ["control", "treat"]
BUY = MetricSpec(event="buy")
AMOUNT = MetricSpec(kind="mean", event="buy", property="amount")


def us(text: str) -> int:
    return to_micros(at(text))


def expose(
    app: Flask,
    rows: Sequence[tuple[str, str, str | int]],
    *,
    scope_id: str = "default",
    experiment_key: str = "exp",
    bucket_version: int = 1,
) -> None:
    """Store ``(subject_id, variant, when)`` exposures (``when``: ISO text or microseconds)."""
    values = [
        {
            "scope_id": scope_id,
            "experiment_key": experiment_key,
            "bucket_version": bucket_version,
            "subject_id": subject,
            "variant": variant,
            "ts": when if isinstance(when, int) else us(when),
        }
        for subject, variant, when in rows
    ]
    with app.app_context(), current_state().engine.begin() as connection:
        connection.execute(insert(exposures), values)


def summaries(
    app: Flask, metric: MetricSpec, variant_keys: Sequence[str] = VARIANTS, **options: Any
) -> list[MetricSummary]:
    with app.app_context(), metadata_connection() as connection:
        return metric_summaries(
            connection,
            scope_id=options.pop("scope_id", "default"),
            experiment_key=options.pop("experiment_key", "exp"),
            bucket_version=options.pop("bucket_version", 1),
            variant_keys=variant_keys,
            metric=metric,
            **options,
        )


def counts(app: Flask, variant_keys: Sequence[str] = VARIANTS, **options: Any) -> ExposureCounts:
    with app.app_context(), metadata_connection() as connection:
        return exposure_counts(
            connection,
            scope_id=options.pop("scope_id", "default"),
            experiment_key=options.pop("experiment_key", "exp"),
            bucket_version=options.pop("bucket_version", 1),
            variant_keys=variant_keys,
        )


def short(result: list[MetricSummary]) -> list[tuple[str, int, float, float]]:
    """Variant, n, mean and total: the exact parts (the deviation is checked separately)."""
    return [(s.variant, s.n, s.mean, s.total) for s in result]


def test_conversion_counts_events_from_the_first_exposure_on(app: Flask) -> None:
    expose(
        app,
        [
            ("a", "control", "2026-03-02T10:00"),
            ("b", "control", "2026-03-02T10:00"),
            ("c", "treat", "2026-03-02T10:00"),
            ("d", "treat", "2026-03-02T10:00"),
            ("e", "treat", "2026-03-02T10:00"),
        ],
    )
    load(
        app,
        [
            ("a", "buy", "2026-03-02T09:59:59.999999"),  # before exposure: not counted
            ("b", "buy", "2026-03-02T10:00"),  # exactly at exposure: counted
            ("c", "buy", "2026-03-20T11:00"),  # no window: any time later
            ("c", "buy", "2026-03-21T11:00"),  # a second conversion changes nothing
            ("d", "view", "2026-03-02T11:00"),  # another event
            ("e", "buy", "2026-03-02T12:00", None, False),  # inactive events count too
        ],
    )
    result = summaries(app, BUY)
    assert short(result) == [("control", 2, 0.5, 1.0), ("treat", 3, 2 / 3, 2.0)]
    assert result[0].stddev == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert result[1].stddev == pytest.approx(math.sqrt(1 / 3), rel=1e-12)
    assert counts(app) == ExposureCounts({"control": 2, "treat": 3}, 0)


def test_window_is_inclusive_to_the_microsecond(app: Flask) -> None:
    expose(app, [("a", "control", "2026-03-02T10:00"), ("b", "control", "2026-03-02T10:00")])
    load(
        app,
        [
            ("a", "buy", "2026-03-02T11:00"),  # exactly exposure + window: counted
            ("b", "buy", "2026-03-02T11:00:00.000001"),  # one microsecond later: not counted
        ],
    )
    hour = MetricSpec(event="buy", window_seconds=3600)
    assert short(summaries(app, hour)) == [("control", 2, 0.5, 1.0), ("treat", 0, 0.0, 0.0)]
    assert short(summaries(app, BUY)) == [("control", 2, 1.0, 2.0), ("treat", 0, 0.0, 0.0)]
    assert summaries(app, BUY)[0].stddev == 0.0
    assert summaries(app, hour)[1] == MetricSummary("treat", 0, 0.0, 0.0, 0.0)


def test_filters_must_all_match(app: Flask) -> None:
    expose(
        app,
        [
            ("a", "control", "2026-03-02T10:00"),
            ("b", "control", "2026-03-02T10:00"),
            ("c", "control", "2026-03-02T10:00"),
            ("d", "treat", "2026-03-02T10:00"),
        ],
    )
    load(
        app,
        [
            ("a", "buy", "2026-03-02T11:00", {"plan": "pro", "amount": 20}),  # matches both
            ("b", "buy", "2026-03-02T11:00", {"plan": "free", "amount": 20}),  # wrong plan
            ("c", "buy", "2026-03-02T11:00", {"plan": "pro", "amount": 5}),  # too small
            ("c", "buy", "2026-03-02T12:00", {"plan": "pro", "amount": "50"}),  # text, not a number
            ("d", "buy", "2026-03-02T11:00", {"plan": "pro", "amount": 10}),  # gte: counted
        ],
    )
    metric = MetricSpec(
        event="buy",
        filters=[
            PropertyFilter(key="plan", value="pro"),
            PropertyFilter(key="amount", op="gte", value=10),
        ],
    )
    assert short(summaries(app, metric)) == [("control", 3, 1 / 3, 1.0), ("treat", 1, 1.0, 1.0)]


def test_mean_metric_sums_numeric_values_after_exposure(app: Flask) -> None:
    expose(
        app,
        [
            ("a", "control", "2026-03-02T10:00"),
            ("b", "control", "2026-03-02T10:00"),
            ("c", "control", "2026-03-02T10:00"),
            ("d", "treat", "2026-03-02T10:00"),
        ],
    )
    load(
        app,
        [
            ("a", "buy", "2026-03-02T11:00", {"amount": 5}),
            ("a", "buy", "2026-03-02T12:00", {"amount": 2.5}),
            ("a", "view", "2026-03-02T12:00", {"amount": 100}),  # another event
            ("b", "buy", "2026-03-02T09:00", {"amount": 3}),  # before exposure
            ("b", "buy", "2026-03-02T11:00", {"amount": "7"}),  # a string adds 0
            ("b", "buy", "2026-03-02T11:00"),  # no property adds 0
            ("d", "buy", "2026-03-02T11:00", {"amount": True}),  # a boolean adds 0
            ("d", "buy", "2026-03-02T11:00", {"amount": None}),  # null adds 0
            ("d", "buy", "2026-03-02T12:00", {"amount": 10}),
        ],
    )
    result = summaries(app, AMOUNT)
    # control: a = 7.5, b = 0, c = 0 (no events); treat: d = 10
    assert short(result) == [("control", 3, 2.5, 7.5), ("treat", 1, 10.0, 10.0)]
    assert result[0].stddev == pytest.approx(math.sqrt((5**2 + 2.5**2 + 2.5**2) / 2), rel=1e-12)
    assert result[1].stddev == 0.0


def test_a_person_exposed_under_two_ids_counts_once(app: Flask) -> None:
    expose(
        app,
        [
            ("anon1", "treat", "2026-03-02T10:00"),  # before login
            ("user1", "treat", "2026-03-02T12:00"),  # the same person after login
            ("other", "treat", "2026-03-02T10:00"),
        ],
    )
    load(
        app,
        [
            ("anon1", "buy", "2026-03-02T10:30", {"amount": 2}),
            ("user1", "buy", "2026-03-02T11:00", {"amount": 3}),  # after the first exposure
            ("other", "view", "2026-03-02T11:00"),
        ],
    )
    with app.app_context():
        identify("user1", anon_id="anon1", scope_id="default")
    assert counts(app) == ExposureCounts({"control": 0, "treat": 2}, 0)
    assert short(summaries(app, BUY)) == [("control", 0, 0.0, 0.0), ("treat", 2, 0.5, 1.0)]
    assert short(summaries(app, AMOUNT)) == [("control", 0, 0.0, 0.0), ("treat", 2, 2.5, 5.0)]
    # Only user1's id was exposed at 12:00, but the unit's first exposure is anon1's at 10:00.
    late = MetricSpec(event="buy", window_seconds=3600)
    assert short(summaries(app, late)) == [("control", 0, 0.0, 0.0), ("treat", 2, 0.5, 1.0)]


def test_a_person_in_two_variants_is_excluded(app: Flask) -> None:
    expose(
        app,
        [
            ("anon2", "control", "2026-03-02T10:00"),
            ("user2", "treat", "2026-03-02T11:00"),
            ("a", "control", "2026-03-02T10:00"),
        ],
    )
    load(app, [("user2", "buy", "2026-03-02T12:00"), ("a", "buy", "2026-03-02T12:00")])
    before = counts(app)
    assert before == ExposureCounts({"control": 2, "treat": 1}, 0)  # not merged yet
    with app.app_context():
        identify("user2", anon_id="anon2", scope_id="default")
    assert counts(app) == ExposureCounts({"control": 1, "treat": 0}, 1)
    assert short(summaries(app, BUY)) == [("control", 1, 1.0, 1.0), ("treat", 0, 0.0, 0.0)]


def test_other_scopes_experiments_and_versions_are_ignored(app: Flask) -> None:
    expose(app, [("a", "control", "2026-03-02T10:00"), ("b", "treat", "2026-03-02T10:00")])
    # The same subjects elsewhere, in the other variant: they must neither count nor conflict.
    expose(app, [("a", "treat", "2026-03-01T10:00")], scope_id="other")
    expose(app, [("a", "treat", "2026-03-01T10:00")], experiment_key="exp2")
    expose(app, [("a", "treat", "2026-03-01T10:00")], bucket_version=2)
    expose(app, [("c", "treat", "2026-03-01T10:00")], bucket_version=2)
    load(app, [("b", "view", "2026-03-02T11:00")])
    load(app, [("a", "buy", "2026-03-02T11:00"), ("b", "buy", "2026-03-02T11:00")], "other")
    assert counts(app) == ExposureCounts({"control": 1, "treat": 1}, 0)
    assert short(summaries(app, BUY)) == [("control", 1, 0.0, 0.0), ("treat", 1, 0.0, 0.0)]
    assert counts(app, bucket_version=2) == ExposureCounts({"control": 0, "treat": 2}, 0)
    assert short(summaries(app, BUY, scope_id="other")) == [
        ("control", 0, 0.0, 0.0),
        ("treat", 1, 1.0, 1.0),
    ]


def test_until_ts_is_exclusive(app: Flask) -> None:
    expose(app, [("a", "control", "2026-03-02T10:00"), ("b", "control", "2026-03-02T10:00")])
    load(
        app,
        [
            ("a", "buy", "2026-03-02T11:59:59.999999", {"amount": 1}),
            ("b", "buy", "2026-03-02T12:00", {"amount": 4}),
        ],
    )
    until = us("2026-03-02T12:00")
    assert short(summaries(app, BUY, until_ts=until)) == [
        ("control", 2, 0.5, 1.0),
        ("treat", 0, 0.0, 0.0),
    ]
    assert short(summaries(app, AMOUNT, until_ts=until + 1)) == [
        ("control", 2, 2.5, 5.0),
        ("treat", 0, 0.0, 0.0),
    ]


def test_subjects_without_a_person_are_their_own_units(app: Flask) -> None:
    expose(
        app,
        [
            ("ghost", "control", "2026-03-02T10:00"),  # no events, no person row
            ("orphan", "control", "2026-03-02T10:00"),  # events, but its person row is gone
            ("unknown", "old", "2026-03-02T10:00"),  # a variant no longer configured
        ],
    )
    load(app, [("orphan", "buy", "2026-03-02T11:00"), ("unknown", "buy", "2026-03-02T11:00")])
    with app.app_context(), current_state().engine.begin() as connection:
        connection.execute(
            delete(person_distinct_ids).where(person_distinct_ids.c.distinct_id == "orphan")
        )
    assert counts(app) == ExposureCounts({"control": 2, "treat": 0}, 0)
    result = summaries(app, BUY)
    assert short(result) == [("control", 2, 0.5, 1.0), ("treat", 0, 0.0, 0.0)]
    assert short(summaries(app, BUY, ["old"])) == [("old", 1, 1.0, 1.0)]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"scope_id": ""}, "scope_id"),
        ({"experiment_key": 5}, "experiment_key"),
        ({"bucket_version": "1"}, "bucket_version"),
        ({"bucket_version": True}, "bucket_version"),
        ({"variant_keys": []}, "variant_keys"),
        ({"variant_keys": "ab"}, "variant_keys"),
        ({"variant_keys": ["a", "a"]}, "variant_keys"),
        ({"variant_keys": ["a", ""]}, "variant_keys"),
        ({"metric": {"event": "buy"}}, "metric"),
        ({"until_ts": 1.5}, "until_ts"),
    ],
)
def test_bad_arguments_name_the_field(app: Flask, options: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {
        "scope_id": "default",
        "experiment_key": "exp",
        "bucket_version": 1,
        "variant_keys": VARIANTS,
        "metric": BUY,
    } | options
    with app.app_context(), metadata_connection() as connection:
        with pytest.raises(ValidationError) as caught:
            metric_summaries(connection, **arguments)
        assert caught.value.field == field
        if field not in {"metric", "until_ts"}:
            del arguments["metric"]
            with pytest.raises(ValidationError) as again:
                exposure_counts(connection, **arguments)
            assert again.value.field == field


# --- against a pure-Python reference ------------------------------------------------------

BASE = at("2026-03-02T00:00")
IDS = [f"u{i}" for i in range(6)]
KEYS = ["c", "t"]
PROPERTIES = [None, {"amount": 2}, {"amount": 2.5}, {"amount": "3"}, {"amount": -1, "plan": "pro"}]
PROPERTIES += [{"plan": "pro"}, {"amount": True}, {"amount": 7, "plan": "free"}]


def reference(
    exposed: list[tuple[str, str, int]],
    stored: list[tuple[str, str, int, dict[str, Any]]],
    person_of: dict[str, int],
    metric: MetricSpec,
    until_ts: int | None,
) -> tuple[ExposureCounts, list[tuple[str, int, Fraction, float, Fraction]]]:
    """Units, their variants and values straight from the definition, in exact arithmetic."""

    def unit(distinct_id: str) -> tuple[str, Any]:
        return ("p", person_of[distinct_id]) if distinct_id in person_of else ("s", distinct_id)

    seen: dict[tuple[str, Any], tuple[set[str], int]] = {}
    for subject, variant, ts in exposed:
        variants, first = seen.get(unit(subject), (set(), ts))
        seen[unit(subject)] = (variants | {variant}, min(first, ts))
    kept = {u: (min(v), first) for u, (v, first) in seen.items() if len(v) == 1}
    per_variant = {k: sum(1 for v, _ in kept.values() if v == k) for k in KEYS}
    mixed = sum(1 for v, _ in seen.values() if len(v) > 1)

    def number(value: Any) -> Fraction | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return Fraction(value) if ok else None

    def matches(props: dict[str, Any]) -> bool:
        for f in metric.filters:
            if f.op == "eq" and props.get(f.key) != f.value:
                return False
            if f.op == "gte":
                found = number(props.get(f.key))
                if found is None or found < Fraction(f.value):  # type: ignore[arg-type]
                    return False
        return True

    values: dict[tuple[str, Any], Fraction] = dict.fromkeys(kept, Fraction(0))
    for distinct_id, name, ts, props in stored:
        u = unit(distinct_id)
        if u not in kept or name != metric.event or not matches(props):
            continue
        first = kept[u][1]
        window = metric.window_seconds
        if ts < first or (window is not None and ts > first + window * 1_000_000):
            continue
        if until_ts is not None and ts >= until_ts:
            continue
        if metric.kind == "conversion":
            values[u] = Fraction(1)
        else:
            assert metric.property is not None
            values[u] += number(props.get(metric.property)) or 0
    rows = []
    for key in KEYS:
        xs = [values[u] for u, (v, _) in kept.items() if v == key]
        mean = sum(xs, Fraction(0)) / len(xs) if xs else Fraction(0)
        sd = float(statistics.stdev(xs)) if len(xs) > 1 else 0.0
        rows.append((key, len(xs), mean, sd, sum(xs, Fraction(0))))
    return ExposureCounts(per_variant, mixed), rows


ELSEWHERE = [("default", "exp2", 1), ("default", "exp", 2), ("other", "exp", 1)]


Scenario = tuple[
    dict[str, tuple[str, int]],
    dict[tuple[str, tuple[str, str, int]], tuple[str, int]],
    list[tuple[str, str, int, dict[str, Any] | None, bool]],
    list[tuple[str, str]],
]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Exposures of the experiment, exposures elsewhere, events and identify links; events and
    links mostly name exposed subjects so most examples have something to count."""
    exposed = draw(
        st.dictionaries(
            st.sampled_from(IDS),
            st.tuples(st.sampled_from(["c", "t", "c", "t", "gone"]), st.integers(0, 6)),
            min_size=3,
        )
    )
    noise = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(IDS), st.sampled_from(ELSEWHERE)),
            st.tuples(st.sampled_from(KEYS), st.integers(0, 6)),
            max_size=4,
        )
    )
    subjects = st.sampled_from(sorted(exposed)) | st.sampled_from(IDS)
    rows = draw(
        st.lists(
            st.tuples(
                subjects,
                st.sampled_from(["buy", "buy", "view"]),
                st.integers(0, 12),
                st.sampled_from(PROPERTIES),
                st.booleans(),
            ),
            min_size=4,
            max_size=30,
        )
    )
    links = draw(st.lists(st.tuples(subjects, subjects), max_size=3))
    return exposed, noise, rows, links


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scenario=scenarios(),
    kind=st.sampled_from(["conversion", "mean"]),
    window=st.none() | st.integers(1, 6),
    filtered=st.sampled_from(["none", "plan", "amount"]),
    until=st.none() | st.integers(4, 12),
)
def test_matches_the_reference(
    app: Flask,
    scenario: Scenario,
    kind: str,
    window: int | None,
    filtered: str,
    until: int | None,
) -> None:
    exposed, noise, rows, links = scenario
    clear_events(app)
    with app.app_context(), current_state().engine.begin() as connection:
        connection.execute(delete(exposures))
    second = 1_000_000
    base = to_micros(BASE)
    target = [(subject, variant, base + ts * second) for subject, (variant, ts) in exposed.items()]
    expose(app, target)
    for (subject, (scope_id, experiment_key, version)), (variant, ts) in noise.items():
        expose(
            app,
            [(subject, variant, base + ts * second)],
            scope_id=scope_id,
            experiment_key=experiment_key,
            bucket_version=version,
        )
    events_rows = [(d, name, BASE + timedelta(seconds=t), p, a) for d, name, t, p, a in rows]
    load(app, events_rows)
    load(app, events_rows[::2], "other")  # the same ids in another scope: separate persons
    with app.app_context():
        for user, anon in links:
            identify(user, anon_id=anon, scope_id="default")
        with current_state().engine.connect() as connection:
            person_of = dict(
                connection.execute(
                    select(
                        person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id
                    ).where(person_distinct_ids.c.scope_id == "default")
                ).all()
            )
    filters = {
        "none": [],
        "plan": [PropertyFilter(key="plan", value="pro")],
        "amount": [PropertyFilter(key="amount", op="gte", value=2)],
    }[filtered]
    metric = MetricSpec(
        kind=kind,  # type: ignore[arg-type]
        event="buy",
        property="amount" if kind == "mean" else None,
        window_seconds=window,
        filters=filters,
    )
    until_ts = None if until is None else base + until * second
    stored = [(d, name, base + t * second, p or {}) for d, name, t, p, _ in rows]
    want_counts, want = reference(target, stored, person_of, metric, until_ts)
    hypothesis_event(f"variants with a non-zero total: {sum(1 for r in want if r[4] != 0)}")

    assert counts(app, KEYS) == want_counts
    got = summaries(app, metric, KEYS, until_ts=until_ts)
    for summary, (key, n, mean, sd, total) in zip(got, want, strict=True):
        assert (summary.variant, summary.n, summary.total) == (key, n, float(total))
        assert summary.mean == pytest.approx(float(mean), rel=1e-12, abs=1e-12)
        assert summary.stddev == pytest.approx(sd, rel=1e-12, abs=1e-12)

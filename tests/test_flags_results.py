"""End to end: exposures and events in the database -> SQL metrics -> statistics equal scipy's
on the same per-subject values (docs/flags-experiments.md, "Results")."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from scipy import stats
from sqlalchemy import insert

from flask_umetrics import create_experiment, experiment_results, get_experiment, start_experiment
from flask_umetrics.db.tables import exposures

from .conftest import AppFactory
from .events_data import load

pytestmark = pytest.mark.event_stores

T0 = 1_780_000_000_000_000  # µs


def moment(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, timezone.utc) + timedelta(
        microseconds=micros % 1_000_000
    )


def seed(app: Flask, rng: random.Random, sizes: tuple[int, ...], rates: tuple[float, ...]) -> Any:
    """Exposures at T0 + i s; conversions (with an amount) after exposure, some before it."""
    keys = ["control", "b", "c"][: len(sizes)]
    values: dict[str, list[tuple[int, float]]] = {k: [] for k in keys}
    exposure_rows: list[dict[str, Any]] = []
    event_rows: list[tuple[Any, ...]] = []
    n = 0
    for key, size, rate in zip(keys, sizes, rates, strict=True):
        for _ in range(size):
            n += 1
            subject = f"s{n}"
            exposed = T0 + n * 1_000_000
            exposure_rows.append(
                {
                    "scope_id": "default",
                    "experiment_key": "exp",
                    "bucket_version": 1,
                    "subject_id": subject,
                    "variant": key,
                    "ts": exposed,
                }
            )
            # Noise before exposure never counts.
            event_rows.append((subject, "buy", moment(exposed - 5), {"amount": 999}))
            converted = rng.random() < rate
            amount = 0.0
            if converted:
                for _ in range(rng.randint(1, 3)):
                    value = round(rng.lognormvariate(3, 1), 2)
                    amount += value
                    later = moment(exposed + rng.randint(0, 10**9))
                    event_rows.append((subject, "buy", later, {"amount": value}))
            values[key].append((int(converted), amount))
    with app.app_context():
        create_experiment(
            {
                "key": "exp",
                "variants": [{"key": k} for k in keys],
                "metrics": [
                    {"event": "buy"},
                    {"event": "buy", "kind": "mean", "property": "amount"},
                ],
            }
        )
        start_experiment("exp")
        with app.extensions["umetrics"].engine.begin() as connection:
            connection.execute(insert(exposures), exposure_rows)
    load(app, event_rows)
    return values


@pytest.mark.parametrize("seed_value", [1, 2])
def test_results_equal_scipy_welch_and_chisquare(make_app: AppFactory, seed_value: int) -> None:
    app = make_app()
    rng = random.Random(seed_value)
    values = seed(app, rng, (230, 190, 205), (0.2, 0.3, 0.22))
    with app.app_context():
        experiment = get_experiment("exp")
        assert experiment is not None
        result = experiment_results(experiment)
    tables = {m["key"]: m["variants"] for m in result["metrics"]}
    for metric_key, index in (("buy", 0), ("amount:buy", 1)):
        rows = tables[metric_key]
        control = [v[index] for v in values["control"]]
        for row in rows[1:]:
            treatment = [v[index] for v in values[row["key"]]]
            expected = stats.ttest_ind(treatment, control, equal_var=False)
            ci = expected.confidence_interval(0.95)
            assert row["exposures"] == len(treatment)
            assert row["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)
            assert row["ci"][0] == pytest.approx(ci.low, abs=1e-9)
            assert row["ci"][1] == pytest.approx(ci.high, abs=1e-9)
            assert row["abs_lift"] == pytest.approx(
                sum(treatment) / len(treatment) - sum(control) / len(control), abs=1e-12
            )
        assert [r["p_value_adjusted"] is not None for r in rows] == [False, True, True]
    counts = [len(values[k]) for k in ("control", "b", "c")]
    chi = stats.chisquare(counts, [sum(counts) / 3] * 3)
    assert result["srm"]["p_value"] == pytest.approx(chi.pvalue, abs=1e-9)
    assert result["srm"]["flagged"] is False
    assert result["variants"] == tables["buy"]  # the primary goal is the top-level table


def test_srm_is_flagged_for_a_lopsided_split(make_app: AppFactory) -> None:
    app = make_app()
    seed(app, random.Random(3), (300, 200), (0.1, 0.1))
    with app.app_context():
        experiment = get_experiment("exp")
        assert experiment is not None
        result = experiment_results(experiment, sequential=True)
    chi = stats.chisquare([300, 200])
    assert result["srm"]["p_value"] == pytest.approx(chi.pvalue, abs=1e-12)
    assert chi.pvalue < 0.001 and result["srm"]["flagged"] is True
    treatment = result["variants"][1]
    lo, hi = treatment["sequential_ci"]
    assert lo <= treatment["ci"][0] and hi >= treatment["ci"][1]

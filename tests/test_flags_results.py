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

from flask_umetrics import (
    create_experiment,
    experiment_results,
    get_experiment,
    start_experiment,
    update_experiment,
)
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


def test_relative_test_sample_size_and_verdicts(make_app: AppFactory) -> None:
    """The relative lift's t-test, the planned sample (closed form) and the traffic it implies."""
    app = make_app()
    values = seed(app, random.Random(4), (240, 260), (0.2, 0.3))
    day = 86_400 * 1_000_000
    with app.app_context():
        experiment = get_experiment("exp")
        assert experiment is not None
        result = experiment_results(experiment, now_ts=T0 + 1_000_000 + 2 * day)
    control = [v[0] for v in values["control"]]
    treatment = [v[0] for v in values["b"]]
    p_c, p_t = sum(control) / 240, sum(treatment) / 260
    row = result["variants"][1]
    rel = (p_t - p_c) / p_c
    var_c, var_t = stats.tvar(control) / 240, stats.tvar(treatment) / 260
    rel_se = (var_t + var_c * (p_t / p_c) ** 2) ** 0.5 / p_c
    df = (var_c + var_t) ** 2 / (var_c**2 / 239 + var_t**2 / 259)
    q = stats.t.ppf(0.975, df)
    assert row["rel_lift"] == pytest.approx(rel, rel=1e-9)
    assert row["rel_p_value"] == pytest.approx(2 * stats.t.sf(abs(rel / rel_se), df), rel=1e-6)
    assert row["rel_ci"] == pytest.approx([rel - q * rel_se, rel + q * rel_se], rel=1e-9)
    assert result["one_sided"] is False

    # n = (z(0.975) + z(0.8))² (p(1-p) + p'(1-p')) / (0.05 p)², p' = 1.05 p
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    p2 = p_c * 1.05
    needed = -(-(z**2) * (p_c * (1 - p_c) + p2 * (1 - p2)) // (0.05 * p_c) ** 2)
    size = result["sample_size"]
    assert size["baseline"] == pytest.approx(p_c) and size["mde"] == 0.05
    assert size["per_variant"] == needed
    assert size["progress"] == pytest.approx(240 / needed)
    assert size["exposed_per_day"] == pytest.approx(500 / 2)  # 500 subjects over two days
    assert size["days_remaining"] == pytest.approx((needed - 240) / 125)
    [verdict] = result["verdicts"]
    assert verdict["variant"] == "b"
    expected_kind = "win" if row["rel_p_value"] < 0.05 else "inconclusive"
    assert verdict["kind"] == expected_kind
    assert "keep running" in verdict["text"] and "of the planned sample" in verdict["text"]


def test_one_sided_setting_is_stored_on_the_experiment_rule(make_app: AppFactory) -> None:
    app = make_app()
    seed(app, random.Random(5), (200, 200), (0.2, 0.3))
    with app.app_context():
        rule = {"type": "experiment", "one_sided": True, "mde": 0.5}
        update_experiment("exp", {"rules": [rule]})
        experiment = get_experiment("exp")
        assert experiment is not None
        assert experiment.experiment_rule.one_sided is True
        result = experiment_results(experiment)
        two_sided = experiment_results(experiment, one_sided=False)
    row, two = result["variants"][1], two_sided["variants"][1]
    assert result["one_sided"] is True and two_sided["one_sided"] is False
    assert row["rel_ci"][1] is None and row["ci"][1] is None  # open upper end
    assert row["rel_p_value"] == pytest.approx(two["rel_p_value"] / 2, rel=1e-9)
    assert result["sample_size"]["mde"] == 0.5
    assert result["sample_size"]["per_variant"] < two_sided["sample_size"]["per_variant"]

"""The results page's sentences (flags/verdict.py) and the planned sample behind "keep running"
(flags/sample_size.py), against closed-form references written out here."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flask_umetrics.errors import ValidationError
from flask_umetrics.flags.sample_size import plan, required_per_variant
from flask_umetrics.flags.verdict import percent, plan_text, verdict

Z_975 = 1.959963984540054  # z(1 - 0.05/2)
Z_95 = 1.6448536269514722  # z(1 - 0.05)
Z_80 = 0.8416212335729143  # z(0.8)
DAY = 86_400 * 1_000_000


def test_conversion_sample_size_is_the_two_proportion_formula() -> None:
    # 10% -> 10.5%: (1.96 + 0.84)² (0.09 + 0.105·0.895) / 0.005² = 57,759.6...
    expected = (Z_975 + Z_80) ** 2 * (0.1 * 0.9 + 0.105 * 0.895) / 0.005**2
    assert 57_759 < expected < 57_760
    assert required_per_variant(0.1, 0.3, 0.05, conversion=True) == math.ceil(expected)
    one_sided = (Z_95 + Z_80) ** 2 * (0.1 * 0.9 + 0.105 * 0.895) / 0.005**2
    assert required_per_variant(0.1, 0.3, 0.05, conversion=True, one_sided=True) == math.ceil(
        one_sided
    )


def test_mean_sample_size_uses_the_control_variance_twice() -> None:
    # baseline 10, sd 4, 10% relative: d = 1, n = 2·16·(z + z)² = 251.17...
    assert required_per_variant(10.0, 4.0, 0.1, conversion=False) == math.ceil(
        2 * 16 * (Z_975 + Z_80) ** 2
    )
    assert required_per_variant(-10.0, 4.0, 0.1, conversion=False) == 252  # |baseline|


@pytest.mark.parametrize(
    ("baseline", "stddev", "conversion"),
    [(0.0, 1.0, False), (5.0, 0.0, False), (0.0, 0.0, True), (0.98, 0.1, True), (1.0, 0.0, True)],
)
def test_sample_size_that_cannot_be_planned_is_none(
    baseline: float, stddev: float, conversion: bool
) -> None:
    assert required_per_variant(baseline, stddev, 0.05, conversion=conversion) is None


@pytest.mark.parametrize(("field", "kwargs"), [("mde", {"mde": 0}), ("alpha", {"alpha": 1.5})])
def test_sample_size_bad_input_names_the_field(field: str, kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"mde": 0.05, **kwargs}
    mde = arguments.pop("mde")
    with pytest.raises(ValidationError) as error:
        required_per_variant(0.1, 0.3, mde, conversion=True, **arguments)
    assert error.value.field == field


def test_plan_divides_what_is_missing_by_each_variants_share_of_the_traffic() -> None:
    # 1,000 subjects over 4 days = 250 a day; a 20/80 split fills control at 50 a day.
    result = plan(1000, [200, 800], [0.2, 0.8], first_exposure_ts=0, now_ts=4 * DAY)
    assert result.exposed_per_day == 250.0
    assert result.progress == 0.2
    assert result.days_remaining == pytest.approx(800 / 50)
    done = plan(100, [200, 800], [1, 4], first_exposure_ts=0, now_ts=4 * DAY)
    assert done.progress == 1.0 and done.days_remaining == 0.0
    unknown = plan(100, [0, 0], [1, 1], first_exposure_ts=None, now_ts=4 * DAY)
    assert unknown.exposed_per_day is None and unknown.days_remaining is None
    assert unknown.progress == 0.0


def row(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "annual-first",
        "exposures": 1200,
        "rel_lift": 0.33,
        "rel_ci": [0.02, 0.57],
        "rel_p_value": 0.031,
        "chance_to_win": 0.969,
    }
    return {**base, **values}


def test_significant_win_before_the_planned_sample_says_keep_running() -> None:
    said = verdict(row(), goal="plan_upgraded", alpha=0.05, progress=0.4, days_remaining=5.2)
    assert said.kind == "win"
    assert said.text == (
        "annual-first raises plan_upgraded by 33% (95% CI 2% to 57%); 96.9% chance to beat "
        "control; keep running: 40% of the planned sample, about 6 more days at current traffic"
    )


def test_a_far_away_plan_is_said_plainly() -> None:
    said = verdict(row(), goal="g", alpha=0.05, progress=0.0002, days_remaining=81_499.2)
    assert said.text.endswith(
        "keep running: under 1% of the planned sample, more than a year at current traffic"
    )
    said = verdict(row(), goal="g", alpha=0.05, progress=0.5, days_remaining=0.3)
    assert said.text.endswith(
        "keep running: 50% of the planned sample, about 1 more day at current traffic"
    )


def test_significant_win_at_the_planned_sample_says_ship() -> None:
    said = verdict(row(), goal="plan_upgraded", alpha=0.05, progress=1.0)
    assert said.kind == "win"
    assert said.text.endswith(
        "96.9% chance to beat control; significant: consider shipping annual-first"
    )


def test_significant_loss() -> None:
    said = verdict(
        row(rel_lift=-0.12, rel_ci=[-0.2, -0.04], rel_p_value=0.004, chance_to_win=0.002),
        goal="plan_upgraded",
        alpha=0.05,
        progress=1.0,
    )
    assert said.kind == "loss"
    assert said.text == (
        "annual-first lowers plan_upgraded by 12% (95% CI -20% to -4%); 0.2% chance to beat "
        "control; significant: consider stopping annual-first"
    )


def test_significant_loss_early_says_consider_stopping() -> None:
    said = verdict(
        row(rel_lift=-0.12, rel_ci=[-0.2, -0.04], rel_p_value=0.004, chance_to_win=0.002),
        goal="plan_upgraded",
        alpha=0.05,
        progress=0.2,
        days_remaining=3,
    )
    assert said.kind == "loss"
    assert said.text.endswith(
        "consider stopping annual-first: only 20% of the planned sample so far"
    )


def test_inconclusive() -> None:
    said = verdict(
        row(rel_lift=0.03, rel_ci=[-0.05, 0.11], rel_p_value=0.46, chance_to_win=0.77),
        goal="plan_upgraded",
        alpha=0.1,
        progress=1.0,
    )
    assert said.kind == "inconclusive"
    assert said.text == (
        "No clear difference: annual-first changes plan_upgraded by +3% (90% CI -5% to 11%); "
        "77.0% chance to beat control; planned sample reached: any effect is likely smaller "
        "than the one planned for"
    )


def test_one_sided_interval_is_a_lower_bound() -> None:
    said = verdict(row(rel_ci=[0.05, None], rel_p_value=0.01), goal="g", alpha=0.05, one_sided=True)
    assert said.kind == "win"
    assert "(95% one-sided CI 5% or more)" in said.text


def test_sequential_results_are_read_from_the_sequential_fields_and_need_no_plan() -> None:
    data = row(rel_sequential_ci=[-0.1, 0.7], rel_sequential_p_value=0.2)
    said = verdict(data, goal="g", alpha=0.05, sequential=True, progress=0.3)
    assert said.kind == "inconclusive" and "keep running: 30% of the planned sample" in said.text
    data = row(rel_sequential_ci=[0.01, 0.7], rel_sequential_p_value=0.04)
    said = verdict(data, goal="g", alpha=0.05, sequential=True, progress=0.3)
    assert said.kind == "win" and said.text.endswith("significant: consider shipping annual-first")


def test_not_enough_data() -> None:
    said = verdict(
        row(exposures=1, rel_ci=None, rel_p_value=None), goal="plan_upgraded", alpha=0.05
    )
    assert said.kind == "not_enough_data"
    assert said.text == (
        "Not enough data yet: annual-first has 1 exposed subject with a measurable plan_upgraded"
    )
    assert verdict(row(), goal=None, alpha=0.05).text == "No goal metric: add one to get a verdict"


def test_srm_warning_trumps_the_numbers() -> None:
    said = verdict(row(), goal="g", alpha=0.05, srm_p_value=0.00012)
    assert said.kind == "srm"
    assert said.text.startswith("Sample ratio mismatch (p = 0.00012): exposures do not follow")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.331, "33%"),
        (0.031, "3.1%"),
        (0.02, "2%"),
        (-0.004, "-0.4%"),
        (0.0, "0%"),
        (-0.0001, "0%"),
    ],
)
def test_percent(value: float, text: str) -> None:
    assert percent(value) == text


def test_plan_text() -> None:
    plan_data = {
        "baseline": 0.1,
        "mde": 0.05,
        "power": 0.8,
        "per_variant": 57_760,
        "progress": 0.4,
        "exposed_per_day": 4_000.0,
        "days_remaining": 17.3,
    }
    assert plan_text(plan_data, goal="buy", alpha=0.05) == (
        "Planned sample: 57,760 subjects per variant to detect a 5% change in buy (baseline 0.1, "
        "80% power, \u03b1 = 0.05); 40% reached; 4,000.0 subjects exposed per day, about 18 more "
        "days at current traffic."
    )
    assert plan_text(None, goal="buy", alpha=0.05) == (
        "No planned sample yet: the control has no baseline for buy"
    )
    assert plan_text(None, goal=None, alpha=0.05) == ""

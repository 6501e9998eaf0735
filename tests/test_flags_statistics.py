"""Experiment statistics (docs/flags-experiments.md, "Results"): Welch, relative lift, SRM, Holm,
sequential confidence sequences; checked against scipy on generated data and against the
published expectations of GrowthBook's gbstats 0.8.0.

gbstats cases are ported from ``packages/stats/tests/frequentist/test_tests.py`` of
growthbook/growthbook at c6b15529 ("Bump gbstats to 0.8.0"), whose ``gbstats/`` sources equal
the 0.8.0 wheel. Their inputs are sums and sums of squares; a ``SampleMeanStatistic`` has the
ddof=1 variance ``(ss - s²/n)/(n-1)``, so its square root is our ``VariantSummary.stddev``.
gbstats compares values rounded to 5 decimals, and so do these ports. Ported:

* ``TestTwoSidedTTest.test_two_sided_ttest_absolute``: our Welch test (lift, SE, p, CI).
* ``TestTwoSidedTTest.test_two_sided_ttest``: relative lift and its standard error only.
  gbstats' relative variance is the same delta method, but its relative CI and p-value use a
  Student t quantile with the Welch df on the relative scale; ours use the normal (z).
* ``TestSequentialTTest.test_sequential_test_runs`` and ``test_sequential_test_runs_prop``:
  gbstats ran them on the relative lift, so they check :func:`confidence_sequence` (scale-free)
  fed with our relative lift and SE; the ``_prop`` case feeds gbstats' proportion stddev
  √(p(1-p)) (ddof=0) as the summary's stddev, which is all that test's variance differs by.
* ``TestSequentialTTest.test_sequential_test_tuning_as_expected``: same ordering of widths, on
  our absolute sequential CI.

Not ported: ``test_two_sided_ttest_binom`` (relative t-scale p-value and CI, see above),
``test_two_sided_ttest_missing_variance`` (a negative variance from inconsistent sums, which a
stddev cannot express; our n < 2 / zero-variance cases are tested below),
``test_sequential_test_runs_ra`` (CUPED regression adjustment, which we do not do), and the
Bayesian engine tests (gbstats' Bayesian model differs from our normal-approximation chance to
win). gbstats 0.8.0 publishes no expected numbers for ``check_srm``; the SRM is checked against
``scipy.stats.chisquare`` instead.
"""

from __future__ import annotations

import math
import random
import statistics
import warnings
from collections.abc import Callable
from statistics import NormalDist

import pytest
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flask_umetrics.errors import ValidationError
from flask_umetrics.flags.statistics import (
    Comparison,
    VariantSummary,
    analyze,
    confidence_sequence,
    holm_bonferroni,
    srm_check,
    welch,
)

Generator = Callable[[random.Random], tuple[list[float], list[float]]]


def summarize(key: str, values: list[float]) -> VariantSummary:
    return VariantSummary(key, len(values), statistics.fmean(values), statistics.stdev(values))


def close(actual: float | None, expected: float) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def conversions(rate_c: float, n_c: int, rate_t: float, n_t: int) -> Generator:
    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        c = [1.0 if rng.random() < rate_c else 0.0 for _ in range(n_c)]
        t = [1.0 if rng.random() < rate_t else 0.0 for _ in range(n_t)]
        return c, t

    return make


def normal(mu_c: float, sd_c: float, n_c: int, mu_t: float, sd_t: float, n_t: int) -> Generator:
    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        return [rng.gauss(mu_c, sd_c) for _ in range(n_c)], [
            rng.gauss(mu_t, sd_t) for _ in range(n_t)
        ]

    return make


def revenue(n_c: int, n_t: int) -> Generator:
    """Skewed: most subjects spend nothing, the rest a log-normal amount."""

    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        def one(rate: float, sigma: float) -> float:
            return rng.lognormvariate(3.0, sigma) if rng.random() < rate else 0.0

        return [one(0.08, 1.2) for _ in range(n_c)], [one(0.10, 1.5) for _ in range(n_t)]

    return make


SCENARIOS: dict[str, Generator] = {
    "conversion-10%-vs-12%": conversions(0.10, 2000, 0.12, 1800),
    "conversion-2%-vs-3%": conversions(0.02, 600, 0.03, 900),
    "normal-small": normal(10.0, 3.0, 50, 10.5, 4.0, 80),
    "normal-unequal-n": normal(5.0, 1.0, 5, 5.2, 2.5, 500),
    "skewed-revenue": revenue(1500, 1400),
    "exponential": lambda rng: (
        [rng.expovariate(0.5) for _ in range(300)],
        [rng.expovariate(0.45) for _ in range(120)],
    ),
    "large-values": normal(1.0e6, 2.0e4, 400, 1.003e6, 2.5e4, 350),
}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_welch_equals_scipy_ttest_ind(scenario: str, seed: int) -> None:
    control, treatment = SCENARIOS[scenario](random.Random(f"{scenario}:{seed}"))
    alpha = 0.05 if seed % 2 else 0.1
    result = welch(summarize("c", control), summarize("t", treatment), alpha=alpha)
    expected = scipy.stats.ttest_ind(treatment, control, equal_var=False)
    ci = expected.confidence_interval(confidence_level=1 - alpha)

    assert close(result.abs_lift, statistics.fmean(treatment) - statistics.fmean(control))
    assert result.se is not None and result.abs_lift is not None
    assert close(result.abs_lift / result.se, float(expected.statistic))
    assert close(result.df, float(expected.df))
    assert close(result.p_value, float(expected.pvalue))
    assert result.ci is not None
    assert close(result.ci[0], float(ci.low))
    assert close(result.ci[1], float(ci.high))
    assert result.p_value_adjusted == result.p_value
    assert result.sequential_ci is None and result.sequential_p_value is None


def test_welch_matches_scipy_when_control_never_converts() -> None:
    control, treatment = [0.0] * 40, [0.0] * 30 + [1.0] * 10
    result = welch(summarize("c", control), summarize("t", treatment))
    expected = scipy.stats.ttest_ind(treatment, control, equal_var=False)
    assert close(result.p_value, float(expected.pvalue))
    assert close(result.df, 39.0)  # all variance in the treatment: df = nT - 1
    assert result.rel_lift is None and result.rel_se is None and result.chance_to_win is None


def test_relative_lift_delta_method_and_chance_to_win() -> None:
    control = VariantSummary("c", 400, 10.0, 2.0)
    treatment = VariantSummary("t", 300, 11.0, 3.0)
    result = welch(control, treatment, alpha=0.1)

    rel_se = math.sqrt(9.0 / (300 * 100.0) + 4.0 * 121.0 / (400 * 10_000.0))
    vc, vt = 4.0 / 400, 9.0 / 300
    df = (vc + vt) ** 2 / (vc * vc / 399 + vt * vt / 299)  # Welch, as for the absolute lift
    q = float(scipy.stats.t.ppf(0.95, df))
    assert close(result.rel_lift, 0.1)
    assert close(result.rel_se, rel_se)
    assert close(rel_se, math.sqrt(0.000421))
    assert close(result.df, df)
    assert result.rel_ci is not None
    assert close(result.rel_ci[0], 0.1 - q * rel_se)
    assert close(result.rel_ci[1], 0.1 + q * rel_se)
    assert close(result.rel_p_value, 2 * float(scipy.stats.t.sf(0.1 / rel_se, df)))
    assert close(result.chance_to_win, NormalDist().cdf(0.1 / rel_se))


def test_relative_lift_divides_by_the_magnitude_of_a_negative_control_mean() -> None:
    control = VariantSummary("c", 200, -10.0, 4.0)
    treatment = VariantSummary("t", 200, -9.0, 4.0)
    result = welch(control, treatment)
    rel_se = math.sqrt(16.0 / (200 * 100.0) + 16.0 * 81.0 / (200 * 10_000.0))
    assert close(result.rel_lift, 0.1)  # -10 -> -9 is an increase
    assert close(result.rel_se, rel_se)
    assert close(result.chance_to_win, NormalDist().cdf(0.1 / rel_se))
    assert result.chance_to_win is not None and result.chance_to_win > 0.5


# ---- gbstats 0.8.0 published cases ---------------------------------------------------------


def from_sums(key: str, total: float, sum_squares: float, n: int) -> VariantSummary:
    """A gbstats ``SampleMeanStatistic`` as our summary (ddof=1 variance)."""
    return VariantSummary(key, n, total / n, math.sqrt((sum_squares - total**2 / n) / (n - 1)))


def proportion(key: str, successes: int, n: int) -> VariantSummary:
    """A gbstats ``ProportionStatistic``: variance p(1-p) (ddof=0) as our stddev."""
    p = successes / n
    return VariantSummary(key, n, p, math.sqrt(p * (1 - p)))


def rounded(value: float | None) -> float:
    assert value is not None
    return round(value, 5)


def test_gbstats_two_sided_ttest_absolute() -> None:
    control = from_sums("a", 1396.87, 52377.9767, 3407)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    result = welch(control, treatment)
    assert rounded(result.abs_lift) == round(0.7 - 0.41, 5)
    assert rounded(result.se) == 0.12478
    assert rounded(result.p_value) == 0.02016
    assert result.ci is not None
    assert [rounded(result.ci[0]), rounded(result.ci[1])] == [0.04538, 0.53462]


def test_gbstats_two_sided_ttest_relative_lift_and_se() -> None:
    control = from_sums("a", 1396.87, 52377.9767, 3407)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    result = welch(control, treatment)
    assert rounded(result.rel_lift) == round((0.7 - 0.41) / 0.41, 5) == 0.70732
    assert rounded(result.rel_se) == 0.37879


def test_gbstats_two_sided_ttest_relative() -> None:
    """gbstats' relative t-test: p-value and CI from the same Welch t statistic."""
    control = from_sums("a", 1396.87, 52377.9767, 3407)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    result = welch(control, treatment)
    assert rounded(result.rel_p_value) == 0.06191
    assert result.rel_ci is not None
    assert [rounded(result.rel_ci[0]), rounded(result.rel_ci[1])] == [-0.03526, 1.44989]


def test_gbstats_two_sided_ttest_binom() -> None:
    result = welch(proportion("a", 14, 28), proportion("b", 16, 30))
    assert rounded(result.rel_lift) == 0.06667
    assert rounded(result.rel_se) == 0.2717
    assert rounded(result.rel_p_value) == 0.80707
    assert result.rel_ci is not None
    assert [rounded(result.rel_ci[0]), rounded(result.rel_ci[1])] == [-0.47767, 0.61101]


def test_gbstats_one_sided_ttest() -> None:
    """``OneSidedTreatmentGreaterTTest``, relative and absolute (gbstats' later test file)."""
    control = from_sums("a", 1396.87, 52377.9767, 3000)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    result = welch(control, treatment, one_sided=True)
    assert rounded(result.rel_lift) == rounded(0.5033610858562358)
    assert rounded(result.rel_se) == rounded(0.3334122146400735)
    assert rounded(result.rel_p_value) == rounded(0.06558262868467746)
    assert result.rel_ci is not None
    assert rounded(result.rel_ci[0]) == rounded(-0.045136675850396046)
    assert result.rel_ci[1] == math.inf
    assert rounded(result.abs_lift) == rounded(0.23437666666666668)
    assert rounded(result.se) == rounded(0.12983081254184736)
    assert rounded(result.p_value) == rounded(0.03554272489873023)
    assert result.ci is not None
    assert rounded(result.ci[0]) == rounded(0.020791480063255735)
    assert result.ci[1] == math.inf


def test_one_sided_p_value_is_half_the_two_sided_one_in_the_direction_of_the_effect() -> None:
    control = from_sums("a", 1396.87, 52377.9767, 3000)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    two, one = welch(control, treatment), welch(control, treatment, one_sided=True)
    assert two.rel_p_value is not None and close(one.rel_p_value, two.rel_p_value / 2)
    worse = welch(treatment, control, one_sided=True)  # the effect points the other way
    assert worse.rel_p_value is not None and worse.rel_p_value > 0.5


def test_gbstats_sequential_test_runs() -> None:
    control = from_sums("a", 1396.87, 52377.9767, 3000)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)
    result = welch(control, treatment)
    assert rounded(result.rel_lift) == 0.50336
    assert rounded(result.rel_se) == 0.33341
    assert result.rel_lift is not None and result.rel_se is not None
    sequence = confidence_sequence(result.rel_lift, result.rel_se, 3000 + 3461, tuning=1000)
    assert sequence is not None
    (low, high), p_value = sequence
    assert [rounded(low), rounded(high)] == [-0.55844, 1.56516]
    assert rounded(p_value) == 1


def test_gbstats_sequential_test_runs_prop() -> None:
    result = welch(proportion("a", 1396, 3000), proportion("b", 2422, 3461))
    assert rounded(result.rel_lift) == 0.50386
    assert rounded(result.rel_se) == 0.03386
    assert result.rel_lift is not None and result.rel_se is not None
    sequence = confidence_sequence(result.rel_lift, result.rel_se, 3000 + 3461)  # tuning 5000
    assert sequence is not None
    (low, high), p_value = sequence
    assert [rounded(low), rounded(high)] == [0.40098, 0.60675]
    assert rounded(p_value) == 0.0


def test_gbstats_sequential_tuning_as_expected() -> None:
    control = from_sums("a", 1396.87, 52377.9767, 3000)
    treatment = from_sums("b", 2422.7, 134698.29, 3461)

    def interval(tuning: float) -> tuple[float, float]:
        result = welch(control, treatment, sequential=True, sequential_tuning=tuning)
        assert result.sequential_ci is not None
        return result.sequential_ci

    below, near, above = interval(10), interval(6461), interval(10_000)
    assert below[0] < above[0] and below[1] > above[1]  # way underestimating is worse
    assert below[0] < near[0] and below[1] > near[1]
    assert above[0] < near[0] and above[1] > near[1]  # estimating well is best


def test_sequential_interval_formula() -> None:
    """Normal-mixture width and p-value, written out independently (alpha 0.05, tuning 5000)."""
    control = VariantSummary("c", 2000, 0.10, 0.30)
    treatment = VariantSummary("t", 2100, 0.13, 0.336)
    result = welch(control, treatment, sequential=True)
    assert result.se is not None and result.abs_lift is not None
    n = 4100
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000
    width = math.sqrt(result.se**2 * n) * math.sqrt(
        2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / 0.05) / (n * n * rho2)
    )
    e_value = math.exp(
        rho2 * (result.abs_lift**2 * n / result.se**2) / (2 * (n * rho2 + 1))
    ) / math.sqrt(n * rho2 + 1)
    assert result.sequential_ci is not None and result.ci is not None
    assert close(result.sequential_ci[0], 0.03 - width)
    assert close(result.sequential_ci[1], 0.03 + width)
    assert close(result.sequential_p_value, min(1.0, 1 / e_value))
    assert result.sequential_p_value is not None and result.p_value is not None
    assert result.sequential_p_value > result.p_value
    assert result.sequential_ci[1] - result.sequential_ci[0] > result.ci[1] - result.ci[0]


def test_sequential_interval_never_narrower_than_student_t() -> None:
    """With 3 control subjects (df = 2) the t interval is wider than the normal mixture's."""
    control = summarize("c", [1.0, 2.0, 4.0])
    treatment = VariantSummary("t", 20_000, 3.0, 0.0)
    result = welch(control, treatment, sequential=True)
    assert close(result.df, 2.0)
    assert result.se is not None and result.abs_lift is not None and result.ci is not None
    mixture = confidence_sequence(result.abs_lift, result.se, 20_003)
    assert mixture is not None
    assert mixture[0][1] - mixture[0][0] < result.ci[1] - result.ci[0]
    assert result.sequential_ci == result.ci
    assert result.sequential_p_value == max(mixture[1], result.p_value or 0.0)


# ---- SRM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_srm_equals_scipy_chisquare(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.randint(2, 5)
    weights = [rng.uniform(0.1, 3.0) for _ in range(k)]
    drift = [rng.uniform(0.9, 1.1) for _ in range(k)]
    counts = [int(rng.randint(50, 5000) * w * d) for w, d in zip(weights, drift, strict=True)]
    result = srm_check(counts, weights)

    total = sum(counts)
    f_exp = [total * w / sum(weights) for w in weights]
    expected = scipy.stats.chisquare(counts, f_exp=f_exp)
    assert result is not None
    assert close(result.chi2, float(expected.statistic))
    assert close(result.p_value, float(expected.pvalue))
    assert all(close(a, b) for a, b in zip(result.expected, f_exp, strict=True))
    assert result.flagged == (float(expected.pvalue) < 0.001)


def test_srm_flags_a_mismatch_and_not_a_fair_split() -> None:
    flagged = srm_check([1000, 1200], [0.5, 0.5])
    assert flagged is not None
    assert close(flagged.chi2, 2 * 100**2 / 1100)
    assert close(flagged.p_value, float(scipy.stats.chi2.sf(2 * 100**2 / 1100, 1)))
    assert flagged.flagged and flagged.p_value < 0.001
    assert flagged.expected == [1100.0, 1100.0]

    fair = srm_check([1010, 990], [1, 1])
    assert fair is not None and not fair.flagged
    assert close(fair.chi2, 0.2)
    assert srm_check([1010, 990], [1, 1], threshold=0.9) == fair.__class__(
        fair.chi2, fair.p_value, True, [1000.0, 1000.0]
    )


def test_srm_leaves_out_zero_weight_variants() -> None:
    result = srm_check([500, 7, 530], [0.5, 0.0, 0.5])
    expected = scipy.stats.chisquare([500, 530])
    assert result is not None
    assert close(result.chi2, float(expected.statistic))
    assert close(result.p_value, float(expected.pvalue))
    assert result.expected == [515.0, 0.0, 515.0]


def test_srm_without_exposures_or_with_one_weighted_variant_is_none() -> None:
    assert srm_check([0, 0], [0.5, 0.5]) is None
    assert srm_check([10], [1.0]) is None
    assert srm_check([10, 3], [1.0, 0.0]) is None


# ---- Holm-Bonferroni ----------------------------------------------------------------------


def test_holm_bonferroni_worked_example() -> None:
    adjusted = holm_bonferroni([0.01, 0.04, 0.03, None])
    assert adjusted[3] is None
    assert [round(p, 12) for p in adjusted[:3] if p is not None] == [0.03, 0.06, 0.06]
    assert holm_bonferroni([0.6, 0.7]) == [1.0, 1.0]
    assert holm_bonferroni([0.2]) == [0.2]
    assert holm_bonferroni([None, None]) == [None, None]
    assert holm_bonferroni([]) == []


def test_analyze_adjusts_all_treatments_and_keeps_control_first() -> None:
    rng = random.Random(7)
    raw = {
        key: [rng.gauss(10 + shift, 3) for _ in range(200)]
        for key, shift in [("control", 0.0), ("a", 0.5), ("b", 1.0), ("c", -0.2)]
    }
    variants = [summarize(key, values) for key, values in raw.items()]
    result = analyze(variants, [1, 1, 1, 1])

    assert [v.key for v in result.variants] == ["control", "a", "b", "c"]
    assert result.comparisons[0] is None
    comparisons = [c for c in result.comparisons[1:] if c is not None]
    assert len(comparisons) == 3
    raw_p = [c.p_value for c in comparisons]
    assert [c.p_value_adjusted for c in comparisons] == holm_bonferroni(raw_p)
    for comparison, key in zip(comparisons, ["a", "b", "c"], strict=True):
        expected = scipy.stats.ttest_ind(raw[key], raw["control"], equal_var=False)
        assert close(comparison.p_value, float(expected.pvalue))
    assert result.srm == srm_check([200, 200, 200, 200], [1, 1, 1, 1])
    assert result.srm is not None and result.srm.chi2 == 0.0 and result.srm.p_value == 1.0


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.one_of(st.none(), st.floats(0.0, 1.0)), max_size=12))
def test_holm_properties(p_values: list[float | None]) -> None:
    adjusted = holm_bonferroni(p_values)
    assert [a is None for a in adjusted] == [p is None for p in p_values]
    pairs = [(p, a) for p, a in zip(p_values, adjusted, strict=True) if p is not None]
    for p, a in pairs:
        assert a is not None and p <= a <= 1.0
    for p1, a1 in pairs:
        for p2, a2 in pairs:
            if p1 <= p2:
                assert a1 is not None and a2 is not None and a1 <= a2


@st.composite
def summaries(draw: st.DrawFn, key: str) -> VariantSummary:
    n = draw(st.one_of(st.integers(0, 3), st.integers(4, 50_000)))
    mean = draw(st.floats(-1e4, 1e4, allow_nan=False))
    stddev = draw(st.floats(0.0, 1e4)) if n >= 2 else 0.0
    return VariantSummary(key, n, mean, stddev)


def assert_clean(comparison: Comparison, *, one_sided: bool = False) -> None:
    """Finite or None everywhere; a one-sided interval's upper end is +inf."""
    for name, value in vars(comparison).items():
        if one_sided and name in ("ci", "rel_ci") and value is not None:
            assert value[1] == math.inf, (name, value)
            value = value[0]
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            assert v is None or math.isfinite(v), (name, value)


@settings(max_examples=150, deadline=None, database=None)
@given(
    control=summaries("c"),
    treatments=st.lists(st.integers(0, 10**6), min_size=1, max_size=3).flatmap(
        lambda keys: st.tuples(*(summaries(f"t{i}") for i in range(len(keys))))
    ),
    alpha=st.floats(0.001, 0.5),
    tuning=st.floats(1.0, 1e6),
    one_sided=st.booleans(),
)
def test_analysis_properties(
    control: VariantSummary,
    treatments: tuple[VariantSummary, ...],
    alpha: float,
    tuning: float,
    one_sided: bool,
) -> None:
    variants = [control, *treatments]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = analyze(
            variants,
            [1.0] * len(variants),
            alpha=alpha,
            sequential=True,
            sequential_tuning=tuning,
            one_sided=one_sided,
        )
    assert result.comparisons[0] is None
    for comparison in result.comparisons[1:]:
        assert comparison is not None
        assert_clean(comparison, one_sided=one_sided)
        assert (comparison.rel_p_value is None) == (comparison.rel_ci is None)
        assert (comparison.p_value is None) == (comparison.ci is None)
        if comparison.ci is not None:
            assert comparison.abs_lift is not None
            assert comparison.ci[0] <= comparison.abs_lift <= comparison.ci[1]
        if comparison.rel_ci is not None:
            assert comparison.rel_lift is not None
            assert comparison.rel_ci[0] <= comparison.rel_lift <= comparison.rel_ci[1]
        if comparison.chance_to_win is not None:
            assert 0.0 <= comparison.chance_to_win <= 1.0
        if comparison.p_value is not None:
            assert 0.0 <= comparison.p_value <= 1.0
            assert comparison.p_value_adjusted is not None
            assert comparison.p_value <= comparison.p_value_adjusted <= 1.0
        if comparison.sequential_ci is not None:
            assert comparison.ci is not None
            assert comparison.sequential_ci[0] <= comparison.ci[0] or one_sided
            assert comparison.sequential_ci[1] >= comparison.ci[1] or one_sided
            assert comparison.sequential_p_value is not None and comparison.p_value is not None
            assert comparison.sequential_p_value <= 1.0
            assert comparison.p_value <= comparison.sequential_p_value or one_sided
        else:
            assert comparison.sequential_p_value is None
    if sum(v.n for v in variants) == 0:
        assert result.srm is None
    else:
        assert result.srm is not None and 0.0 <= result.srm.p_value <= 1.0


# ---- the p-value and the interval never disagree ------------------------------------------


def decisive(estimate: float, se: float, df: float, alpha: float, one_sided: bool) -> bool:
    """Away from the rejection boundary by more than rounding (the boundary has measure 0)."""
    q = float(scipy.stats.t.ppf(1 - (alpha if one_sided else alpha / 2), df))
    statistic = estimate / se if one_sided else abs(estimate / se)
    return abs(statistic - q) > 1e-9 * max(1.0, q)


@settings(max_examples=300, deadline=None, database=None)
@given(
    control=summaries("c"),
    treatment=summaries("t"),
    alpha=st.floats(0.001, 0.5),
    one_sided=st.booleans(),
)
def test_p_value_below_alpha_iff_the_interval_excludes_zero(
    control: VariantSummary, treatment: VariantSummary, alpha: float, one_sided: bool
) -> None:
    result = welch(control, treatment, alpha=alpha, one_sided=one_sided)
    tests = [
        (result.abs_lift, result.se, result.p_value, result.ci),
        (result.rel_lift, result.rel_se, result.rel_p_value, result.rel_ci),
    ]
    for estimate, se, p_value, ci in tests:
        if p_value is None or ci is None:
            continue
        assert estimate is not None and se is not None and result.df is not None
        assume(decisive(estimate, se, result.df, alpha, one_sided))
        excludes_zero = ci[0] > 0 if one_sided else (ci[0] > 0 or ci[1] < 0)
        assert (p_value < alpha) == excludes_zero, (p_value, ci)


# ---- degenerate inputs --------------------------------------------------------------------

NONE_FIELDS = ("se", "df", "p_value", "ci", "rel_se", "rel_ci", "rel_p_value", "chance_to_win")


def test_empty_variant_gives_an_all_none_comparison() -> None:
    result = analyze([VariantSummary("c", 120, 0.1, 0.3), VariantSummary("t", 0, 0.0, 0.0)], [1, 1])
    comparison = result.comparisons[1]
    assert comparison is not None
    assert all(value is None for value in vars(comparison).values())
    assert result.srm is not None and result.srm.expected == [60.0, 60.0]


def test_single_subject_variants_give_lifts_only() -> None:
    result = welch(
        VariantSummary("c", 1, 4.0, 0.0), VariantSummary("t", 1, 5.0, 0.0), sequential=True
    )
    assert result.abs_lift == 1.0 and result.rel_lift == 0.25
    assert all(getattr(result, name) is None for name in NONE_FIELDS)
    assert result.sequential_ci is None and result.sequential_p_value is None

    one_sided = welch(VariantSummary("c", 1, 4.0, 0.0), VariantSummary("t", 500, 5.0, 2.0))
    assert one_sided.abs_lift == 1.0
    assert all(getattr(one_sided, name) is None for name in NONE_FIELDS)


def test_zero_variance_everywhere_gives_zero_se_and_no_inference() -> None:
    result = welch(
        VariantSummary("c", 50, 0.5, 0.0), VariantSummary("t", 40, 0.7, 0.0), sequential=True
    )
    assert close(result.abs_lift, 0.2) and close(result.rel_lift, 0.4)
    assert result.se == 0.0 and result.rel_se == 0.0
    assert result.df is None and result.p_value is None and result.ci is None
    assert result.rel_ci is None and result.chance_to_win is None
    assert result.p_value_adjusted is None
    assert result.sequential_ci is None and result.sequential_p_value is None


def test_zero_control_mean_leaves_relative_fields_none() -> None:
    control = summarize("c", [-1.0, 1.0, -2.0, 2.0])
    treatment = summarize("t", [0.0, 1.0, 2.0, 3.0, 4.0])
    result = welch(control, treatment)
    assert control.mean == 0.0
    assert result.rel_lift is None and result.rel_se is None
    assert result.rel_ci is None and result.chance_to_win is None
    expected = scipy.stats.ttest_ind(
        [0.0, 1.0, 2.0, 3.0, 4.0], [-1.0, 1.0, -2.0, 2.0], equal_var=False
    )
    assert close(result.p_value, float(expected.pvalue))


def test_overflowing_values_give_none_not_inf() -> None:
    huge = welch(VariantSummary("c", 10, -1e308, 1.0), VariantSummary("t", 10, 1e308, 1.0))
    assert huge.abs_lift is None
    assert all(value is None for value in vars(huge).values())
    assert_clean(huge)

    wide = welch(VariantSummary("c", 10, 1.0, 1e200), VariantSummary("t", 10, 2.0, 1e200))
    assert wide.abs_lift == 1.0 and wide.rel_lift == 1.0
    assert wide.se is None and wide.p_value is None and wide.ci is None
    assert wide.rel_se is None and wide.chance_to_win is None
    assert_clean(wide)

    tiny_control = welch(VariantSummary("c", 10, 1e-310, 1.0), VariantSummary("t", 10, 1.0, 1.0))
    assert tiny_control.rel_lift is None and tiny_control.rel_se is None
    assert tiny_control.p_value is not None
    assert_clean(tiny_control)


def test_no_exposures_at_all() -> None:
    result = analyze([VariantSummary("c", 0, 0.0, 0.0), VariantSummary("t", 0, 0.0, 0.0)], [1, 1])
    assert result.srm is None
    assert result.comparisons[0] is None
    assert result.comparisons[1] is not None
    assert all(value is None for value in vars(result.comparisons[1]).values())
    only_control = analyze([VariantSummary("c", 10, 1.0, 0.5)], [1.0])
    assert only_control.comparisons == [None] and only_control.srm is None


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: VariantSummary("c", -1, 0.0, 0.0), "n"),
        (lambda: VariantSummary("c", 2.5, 0.0, 0.0), "n"),  # type: ignore[arg-type]
        (lambda: VariantSummary("c", 3, math.nan, 0.0), "mean"),
        (lambda: VariantSummary("c", 3, 1.0, -0.1), "stddev"),
        (lambda: VariantSummary("c", 3, 1.0, math.inf), "stddev"),
        (
            lambda: welch(VariantSummary("c", 3, 1, 1), VariantSummary("t", 3, 1, 1), alpha=0),
            "alpha",
        ),
        (
            lambda: welch(VariantSummary("c", 3, 1, 1), VariantSummary("t", 3, 1, 1), alpha=1.5),
            "alpha",
        ),
        (
            lambda: welch(
                VariantSummary("c", 3, 1, 1), VariantSummary("t", 3, 1, 1), sequential_tuning=0
            ),
            "sequential_tuning",
        ),
        (lambda: analyze([], []), "variants"),
        (lambda: analyze([VariantSummary("c", 3, 1, 1)] * 2, [1, 1]), "variants"),
        (lambda: analyze([VariantSummary("c", 3, 1, 1)], [1, 1]), "weights"),
        (lambda: srm_check([1, 2], [1.0]), "weights"),
        (lambda: srm_check([1, 2], [1.0, -1.0]), "weights"),
        (lambda: srm_check([1, 2], [0.0, 0.0]), "weights"),
        (lambda: srm_check([1, 2], [1.0, math.nan]), "weights"),
        (lambda: srm_check([1, -2], [1.0, 1.0]), "counts"),
        (lambda: srm_check([1, 2], [1.0, 1.0], threshold=0), "threshold"),
        (lambda: holm_bonferroni([0.1, 1.5]), "p_values"),
        (lambda: holm_bonferroni([math.nan]), "p_values"),
        (lambda: confidence_sequence(0.1, 0.1, 10, alpha=0), "alpha"),
    ],
)
def test_bad_input_raises_validation_error_naming_the_field(
    make: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make()
    assert info.value.field == field


def test_an_interval_that_overflows_takes_its_p_value_with_it() -> None:
    """rel SE ~7e305 with df = 1: the 99.9% half-width overflows, so neither is reported."""
    result = welch(
        VariantSummary("c", 2, 1e-302, 0.0), VariantSummary("t", 2, 1e4, 1e4), alpha=0.001
    )
    assert result.rel_lift is not None and result.rel_se is not None and close(result.df, 1.0)
    assert result.rel_ci is None and result.rel_p_value is None
    assert result.ci is not None and result.p_value is not None  # the absolute test is fine
